import jax.numpy as jnp
import pytest
from flax import nnx

from hrm_jax.model import ModelConfig, build

TINY = ModelConfig(vocab_size=97, hidden_size=64, num_attention_heads=4, head_dim=16,
                   intermediate_size=128, num_layers_per_stack=2, max_position_embeddings=64)


@pytest.fixture(scope="module")
def tiny_config():
  return TINY


def make_model(config=TINY, seed=0):
  return build(config, rngs=nnx.Rngs(seed))


def tokens(batch=2, length=12, seed=0):
  import numpy as np  # pylint: disable=import-outside-toplevel
  return jnp.asarray(np.random.RandomState(seed).randint(1, TINY.vocab_size, (batch, length)))
