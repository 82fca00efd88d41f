"""Masks over packed rows and the gated multi-head attention of HRM-Text.

A packed row holds several samples. Per token: `segment_ids` (which sample; 0 is padding),
`positions` (restarting at 0 in every sample) and `prefix_lengths` (the length of its
sample's instruction). PrefixLM: instruction tokens see their whole instruction, response
tokens see the instruction and earlier response tokens, nothing crosses samples.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from hrm_jax.model.config import ModelConfig
from hrm_jax.model.linear import dense
from hrm_jax.model.rope import apply_rotary


@dataclasses.dataclass(frozen=True)
class Segments:
  """Packed-row layout of a batch, each field [B, T] int32."""
  segment_ids: jax.Array
  positions: jax.Array
  prefix_lengths: jax.Array

  @classmethod
  def single(cls, tokens_BT: jax.Array, prefix_length: int | jax.Array = 0) -> Segments:
    """One sample per row filling it: positions 0..T-1, a shared or per-row prefix length."""
    b, t = tokens_BT.shape
    prefix_B = jnp.broadcast_to(jnp.asarray(prefix_length, jnp.int32), (b,))
    return cls(jnp.ones((b, t), jnp.int32),
               jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t)),
               jnp.broadcast_to(prefix_B[:, None], (b, t)))


jax.tree_util.register_dataclass(Segments, data_fields=["segment_ids", "positions", "prefix_lengths"],
                                 meta_fields=[])


def attention_mask(segments: Segments, mode: str) -> jax.Array:
  """Boolean [B, 1, T, T]: query i may attend to key j."""
  seg, pos = segments.segment_ids, segments.positions
  same_sample = seg[:, :, None] == seg[:, None, :]
  if mode == "bidirectional":
    allowed = jnp.ones_like(same_sample)
  else:
    allowed = pos[:, None, :] <= pos[:, :, None]  # causal within a sample
    if mode == "prefix_lm":
      in_prefix = pos < segments.prefix_lengths
      allowed = allowed | (in_prefix[:, :, None] & in_prefix[:, None, :])
    elif mode != "causal":
      raise ValueError(f"unknown attention mode {mode!r}")
  return (same_sample & allowed)[:, None]


class GatedAttention(nnx.Module):
  """MHA with RoPE on q and k and a sigmoid output gate: o(σ(G x) ⊙ Attn(Q x, K x, V x))."""

  def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
    d, w = config.hidden_size, config.attention_width
    self.config = config
    self.q_proj = dense(config, d, w, rngs)
    self.k_proj = dense(config, d, w, rngs)
    self.v_proj = dense(config, d, w, rngs)
    self.gate_proj = dense(config, d, w, rngs)
    self.o_proj = dense(config, w, d, rngs)

  def _project(self, x_BTD, cos_BTH, sin_BTH):
    """q, k (rotated), v and the gate, each [B, T, heads, head_dim]."""
    c = self.config
    b, t, d = x_BTD.shape
    x_ND = x_BTD.reshape(b * t, d)  # 2-D projections: see mlp.py
    heads = lambda y: y.reshape(b, t, c.num_attention_heads, c.head_dim)
    return (apply_rotary(heads(self.q_proj(x_ND)), cos_BTH, sin_BTH),
            apply_rotary(heads(self.k_proj(x_ND)), cos_BTH, sin_BTH),
            heads(self.v_proj(x_ND)), heads(self.gate_proj(x_ND)))

  def _attend(self, q_BTNH, k_BSNH, v_BSNH, gate_BTNH, mask_B1TS):
    c = self.config
    b, t = q_BTNH.shape[:2]
    # Softmax runs in fp32 inside dot_product_attention whatever the compute dtype.
    out_BTNH = jax.nn.dot_product_attention(q_BTNH, k_BSNH, v_BSNH, mask=mask_B1TS,
                                            implementation=c.attention_impl)
    gated = jax.nn.sigmoid(gate_BTNH) * out_BTNH
    return self.o_proj(gated.reshape(b * t, c.attention_width)).reshape(b, t, c.hidden_size)

  def __call__(self, x_BTD: jax.Array, cos_BTH: jax.Array, sin_BTH: jax.Array,
               mask_B1TT: jax.Array) -> jax.Array:
    q_BTNH, k_BTNH, v_BTNH, gate_BTNH = self._project(x_BTD, cos_BTH, sin_BTH)
    return self._attend(q_BTNH, k_BTNH, v_BTNH, gate_BTNH, mask_B1TT)

  def cached(self, x_BtD, cos_BtH, sin_BtH, mask_B1tS, k_BSNH, v_BSNH, start_B):
    """Attention of t new tokens per row over a KV cache of S positions: their keys and
    values are written at [start_b, start_b + t) of row b first. Returns (out, k, v)."""
    q_BtNH, k_BtNH, v_BtNH, gate_BtNH = self._project(x_BtD, cos_BtH, sin_BtH)
    write = jax.vmap(lambda cache, new, start: jax.lax.dynamic_update_slice_in_dim(
        cache, new.astype(cache.dtype), start, axis=0))
    k_BSNH, v_BSNH = write(k_BSNH, k_BtNH, start_B), write(v_BSNH, v_BtNH, start_B)
    out = self._attend(q_BtNH, k_BSNH.astype(q_BtNH.dtype), v_BSNH.astype(q_BtNH.dtype),
                       gate_BtNH, mask_B1tS)
    return out, k_BSNH, v_BSNH
