"""Baselines behind the HRM-Text interface, for the paper's matched-FLOPs comparison and its
critiques (spec §6): a plain transformer (one pass) and a Universal Transformer (one stack
looped with input injection). TRM-style (one stack shared by the H and L roles) is
`HrmText` with `architecture="trm"`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from hrm_jax.model.config import ModelConfig
from hrm_jax.model.hrm import HrmText, LanguageModel, run_cached
from hrm_jax.model.stack import Stack


class Looped(LanguageModel):
  """z ← S(z, x) `num_loops` times from z = 0; one loop is a plain transformer. The last
  `bp_steps` loops carry gradient."""

  def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
    super().__init__(config, rngs=rngs)
    self.stack = Stack(config, config.num_layers_per_stack, rngs=rngs)

  def core(self, x_BTD, cos_BTH, sin_BTH, mask_B1TT, bp_steps):
    loops = self.config.num_calls
    with_grad = loops if bp_steps is None else bp_steps
    if not 1 <= with_grad <= loops:
      raise ValueError(f"bp_steps must be in [1, {loops}], got {bp_steps}")

    def loop(z, frozen):
      return self.stack(z, x_BTD, cos_BTH, sin_BTH, mask_B1TT, frozen=frozen)

    z = jnp.zeros_like(x_BTD)
    for frozen, count in ((True, loops - with_grad), (False, with_grad)):
      if count:
        z = jax.lax.scan(lambda zz, _, f=frozen: (loop(zz, f), None), z, None, length=count,
                         unroll=self.config.scan_unroll or 1)[0]
    return z

  @property
  def num_cached_calls(self) -> int:
    return self.config.num_calls

  def cached_core(self, x_BtD, cos_BtH, sin_BtH, mask_B1tS, cache, start_B):
    z = jnp.zeros_like(x_BtD)
    for call in range(self.num_cached_calls):
      z, cache = run_cached(self.stack, z, x_BtD, cos_BtH, sin_BtH, mask_B1tS, cache, call,
                            start_B)
    return z, cache


def build(config: ModelConfig, *, rngs: nnx.Rngs) -> LanguageModel:
  """The model for `config.architecture`."""
  if config.architecture in ("hrm", "trm"):
    return HrmText(config, rngs=rngs)
  return Looped(config, rngs=rngs)


def matched_flops(config: ModelConfig, architecture: str) -> ModelConfig:
  """A baseline costing the same forward FLOPs per token as the HRM `config`: a transformer
  with num_calls × n layers, a UT looping the n-layer stack num_calls times, a TRM with the
  same cycles and one shared stack."""
  calls = config.replace(architecture="hrm").num_calls
  if architecture == "transformer":
    return config.replace(architecture="transformer",
                          num_layers_per_stack=config.num_layers_per_stack * calls)
  if architecture == "ut":
    return config.replace(architecture="ut", num_loops=calls)
  if architecture in ("trm", "hrm"):
    return config.replace(architecture=architecture)
  raise ValueError(f"unknown architecture {architecture!r}")
