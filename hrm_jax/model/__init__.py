"""HRM-Text model and baselines (Flax NNX).

Shape suffixes, the one legend for hrm_jax: a name's suffix lists its axes, x_BTD = [B, T, D].
  B  batch rows                              D  hidden_size
  T  positions of a row (the queries)        N  attention heads
  t  new tokens of one cached call           K  head_dim
  S  key positions of a KV cache             V  vocab_size
  P  prompt positions (padded)               Y  blocks (layers) of a stack
  G  generated tokens per row                R  B·T tokens flattened (rows of a 2-D matmul)
  1  an axis of size 1 (broadcast)
H and L are never suffixes: they name the high- and low-level modules (z_H, L_module), whose
calls H_cycles and L_cycles count; in formulas M is a call of a stack (stack.py).

ARCHITECTURES is the one place where `ModelConfig.architecture` is dispatched. An entry is a
LanguageModel subclass, which builds the model and declares what ModelConfig answers about it
(num_calls, gradient_calls, num_stacks, takes_loop_init). A new architecture is a subclass
plus one entry here.
"""

from flax import nnx

from hrm_jax.model.attention import Segments, attention_mask
from hrm_jax.model.baselines import (AUTHORS_BASELINES, AUTHORS_BP_STEPS, Looped, Rins,
                                     Transformer, authors_baseline, matched_flops)
from hrm_jax.model.config import PRESETS, ModelConfig, preset
from hrm_jax.model.hrm import Buffer, HrmText, LanguageModel, Trm

ARCHITECTURES: dict[str, type[LanguageModel]] = {
    "hrm": HrmText,
    "trm": Trm,
    "ut": Looped,
    "transformer": Transformer,
    "rins": Rins,
}


def architecture(name: str) -> type[LanguageModel]:
  """The class registered as `name`."""
  if name not in ARCHITECTURES:
    raise ValueError(f"ModelConfig.architecture={name!r}; choose one of {tuple(ARCHITECTURES)}")
  return ARCHITECTURES[name]


def build(config: ModelConfig, *, rngs: nnx.Rngs) -> LanguageModel:
  """The model for `config.architecture`."""
  return architecture(config.architecture)(config, rngs=rngs)


__all__ = ["ARCHITECTURES", "AUTHORS_BASELINES", "AUTHORS_BP_STEPS", "Buffer", "HrmText",
           "LanguageModel", "Looped", "ModelConfig", "PRESETS", "Rins", "Segments",
           "Transformer", "Trm", "architecture", "attention_mask", "authors_baseline", "build",
           "matched_flops", "preset"]
