import functools

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from hrm_jax.model import ModelConfig, Segments, build

TINY = ModelConfig(vocab_size=97, hidden_size=64, num_attention_heads=4, head_dim=16,
                   intermediate_size=128, num_layers_per_stack=2, max_position_embeddings=64)
# TINY with the byte tokenizer's vocabulary: generation tests with real prompts.
BYTE_TINY = TINY.replace(vocab_size=512)


@pytest.fixture(scope="module")
def tiny_config():
  return TINY


def make_model(config=TINY, seed=0):
  return build(config, rngs=nnx.Rngs(seed))


def tokens(batch=2, length=12, seed=0):
  import numpy as np  # pylint: disable=import-outside-toplevel
  return jnp.asarray(np.random.RandomState(seed).randint(1, TINY.vocab_size, (batch, length)))


# An un-jitted model call dispatches every primitive on its own and compiles each scan body
# anew (seconds per call on CPU); the tests call the model through one compiled program per
# (model structure, shapes, bp_steps) instead.

@functools.partial(jax.jit, static_argnames=("graphdef", "bp_steps"))
def _forward(graphdef, state, tokens_BT, segments, *, bp_steps):
  return nnx.merge(graphdef, state)(tokens_BT, segments, bp_steps=bp_steps)


def forward(model, tokens_BT, segments=None, *, bp_steps=None):
  """model(tokens_BT, segments, bp_steps=bp_steps), jitted."""
  graphdef, state = nnx.split(model)
  return _forward(graphdef, state, jnp.asarray(tokens_BT), segments, bp_steps=bp_steps)


def padded_logits(model, rows, prefix_lengths, width=None):
  """The full forward pass over each row (a list of token ids) with its PrefixLM prefix, as
    logits [len(rows), width, V]: all rows in one call, each padded to `width` (default the
    model's context) by padding tokens in a segment of their own (segment 0), which no token of
    the row attends to. One compiled program for any rows of the model."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  width = width or model.config.max_position_embeddings
  tok = np.zeros((len(rows), width), np.int32)
  seg = np.zeros((len(rows), width), np.int32)
  for i, row in enumerate(rows):
    tok[i, :len(row)] = row
    seg[i, :len(row)] = 1
  positions = np.broadcast_to(np.arange(width, dtype=np.int32), (len(rows), width))
  prefix = np.broadcast_to(np.asarray(prefix_lengths, np.int32)[:, None], (len(rows), width))
  return np.asarray(forward(model, tok, Segments(jnp.asarray(seg), jnp.asarray(positions),
                                                 jnp.asarray(prefix))))


@pytest.fixture(scope="module")
def persistent_compilation_cache(tmp_path_factory):
  """JAX's persistent compilation cache in a fresh directory while the module's tests run:
  in-process runs of `train` build a new jitted step each (one `Program` per call), so equal
  programs of successive runs compile once and are read back after. The settings are restored
  afterwards."""
  from jax.experimental.compilation_cache import compilation_cache  # pylint: disable=import-outside-toplevel
  settings = {"jax_compilation_cache_dir": str(tmp_path_factory.mktemp("jax_cache")),
              "jax_persistent_cache_min_compile_time_secs": 0,
              "jax_persistent_cache_min_entry_size_bytes": 0}
  saved = {name: getattr(jax.config, name) for name in settings}
  for name, value in settings.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()
  yield
  for name, value in saved.items():
    jax.config.update(name, value)
  compilation_cache.reset_cache()
