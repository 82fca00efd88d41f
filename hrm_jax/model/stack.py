"""Pre-norm blocks and the MagicNorm stack: M(z, u) = RMS(Block_n ∘ … ∘ Block_1(z + u)).
u = None is a call without input injection, M(z) = RMS(Block_n ∘ … ∘ Block_1(z)).

The n blocks of a stack live as one set of parameters with a leading layer axis and run
through `lax.scan`, so program size and compile time do not grow with depth.
"""

from __future__ import annotations

import jax
from flax import nnx

from hrm_jax.model.attention import GatedAttention
from hrm_jax.model.config import ModelConfig
from hrm_jax.model.mlp import SwiGLU
from hrm_jax.model.norms import rms_norm

_REMAT = {
    "full": jax.checkpoint_policies.nothing_saveable,
    "dots": jax.checkpoint_policies.dots_saveable,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}


class Block(nnx.Module):
  """h ← h + Attn(RMS(h)); h ← h + SwiGLU(RMS(h))."""

  def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
    self.eps = config.rms_norm_eps
    self.self_attn = GatedAttention(config, rngs=rngs)
    self.mlp = SwiGLU(config, rngs=rngs)

  def __call__(self, h_BTD, cos_BTK, sin_BTK, mask_B1TT):
    h_BTD = h_BTD + self.self_attn(rms_norm(h_BTD, self.eps), cos_BTK, sin_BTK, mask_B1TT)
    return h_BTD + self.mlp(rms_norm(h_BTD, self.eps))

  def cached(self, h_BtD, cos_BtK, sin_BtK, mask_B1tS, k_BSNK, v_BSNK, start_B):
    attn, k_BSNK, v_BSNK = self.self_attn.cached(rms_norm(h_BtD, self.eps), cos_BtK, sin_BtK,
                                                 mask_B1tS, k_BSNK, v_BSNK, start_B)
    h_BtD = h_BtD + attn
    return h_BtD + self.mlp(rms_norm(h_BtD, self.eps)), k_BSNK, v_BSNK


class Stack(nnx.Module):
  """n blocks (stacked parameters, scanned) followed by the exit RMSNorm."""

  def __init__(self, config: ModelConfig, num_layers: int, *, rngs: nnx.Rngs):
    self.config, self.num_layers = config, num_layers

    @nnx.split_rngs(splits=num_layers)
    @nnx.vmap(in_axes=(0,), out_axes=0)
    def create(rngs):
      return Block(config, rngs=rngs)

    self.layers = create(rngs)

  def __call__(self, z_BTD, u_BTD, cos_BTK, sin_BTK, mask_B1TT, *, frozen: bool = False):
    """M(z, u). `frozen`: outside the gradient window, so neither parameters nor inputs
    carry gradient and autodiff keeps no activations for this call."""
    graphdef, params = nnx.split(self.layers)
    h_BTD = z_BTD if u_BTD is None else z_BTD + u_BTD
    if frozen:
      params, h_BTD = jax.lax.stop_gradient((params, h_BTD))

    def layer(h, layer_params):
      return nnx.merge(graphdef, layer_params)(h, cos_BTK, sin_BTK, mask_B1TT), None

    if self.config.remat != "none" and not frozen:
      layer = jax.checkpoint(layer, policy=_REMAT[self.config.remat])
    h_BTD, _ = jax.lax.scan(layer, h_BTD, params, unroll=self.config.scan_unroll or 1)
    return rms_norm(h_BTD, self.config.rms_norm_eps)

  def cached(self, z_BtD, u_BtD, cos_BtK, sin_BtK, mask_B1tS, k_YBSNK, v_YBSNK, start_B):
    """M(z, u) for t new tokens per row against this call's KV cache (one [B, S, N, K] per
    layer), inference only. Returns (output, k, v) with the new tokens written."""
    graphdef, params = nnx.split(self.layers)

    def layer(h, xs):
      layer_params, k, v = xs
      h, k, v = nnx.merge(graphdef, layer_params).cached(h, cos_BtK, sin_BtK, mask_B1tS, k, v,
                                                         start_B)
      return h, (k, v)

    h_BtD = z_BtD if u_BtD is None else z_BtD + u_BtD
    h_BtD, (k_YBSNK, v_YBSNK) = jax.lax.scan(layer, h_BtD, (params, k_YBSNK, v_YBSNK))
    return rms_norm(h_BtD, self.config.rms_norm_eps), k_YBSNK, v_YBSNK
