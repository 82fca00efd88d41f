"""Masks over packed rows and the gated multi-head attention of HRM-Text.

A packed row holds several samples. Per token: `segment_ids` (which sample; 0 is padding),
`positions` (restarting at 0 in every sample) and `prefix_lengths` (the length of its
sample's instruction). PrefixLM: instruction tokens see their whole instruction, response
tokens see the instruction and earlier response tokens, nothing crosses samples.

The same masks as ranks (`RankMask`, for the memory-linear path, blockwise.py): query i sees
key j iff they are in the same sample and rank_k[j] ≤ rank_q[i], where for PrefixLM
  rank_q = max(position, prefix_length − 1), rank_k = 0 inside the prefix, else position;
causal is rank = position on both sides, bidirectional rank 0.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from hrm_jax.model.blockwise import blockwise_attention
from hrm_jax.model.config import ModelConfig
from hrm_jax.model.dense_attention import dense_attention
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


@dataclasses.dataclass(frozen=True)
class RankMask:
  """A packed-row mask as per-token ranks, each [B, T] int32 (the module docstring)."""
  segment_ids: jax.Array
  rank_q: jax.Array
  rank_k: jax.Array


jax.tree_util.register_dataclass(RankMask, data_fields=["segment_ids", "rank_q", "rank_k"],
                                 meta_fields=[])


def ranks(segments: Segments, mode: str) -> RankMask:
  """The mask of `mode` as ranks; `attention_mask` gives the same mask as booleans."""
  pos = segments.positions
  if mode == "bidirectional":
    rank_q = rank_k = jnp.zeros_like(pos)
  elif mode == "causal":
    rank_q = rank_k = pos
  elif mode == "prefix_lm":
    prefix = segments.prefix_lengths
    rank_q, rank_k = jnp.maximum(pos, prefix - 1), jnp.where(pos < prefix, 0, pos)
  else:
    raise ValueError(f"unknown attention mode {mode!r}")
  return RankMask(segments.segment_ids, rank_q, rank_k)


RANK_IMPLS = ("blockwise", "pallas", "splash")  # the paths that take the mask as ranks
# attention_impl "auto" (and None) per backend: the fused kernels on GPU and TPU. On CPU, the
# dense path with the hand-written backward (the fastest there: bench/hrm_model_throughput.py
# --attention-impl xla dense blockwise).
AUTO_IMPL = {"gpu": "pallas", "tpu": "splash", "cpu": "dense"}
# The backends each kernel path runs on (elsewhere only in interpret mode, as the tests do).
BACKENDS = {"pallas": ("gpu", "Triton kernels on a GPU"), "splash": ("tpu", "TPU kernels")}


def attention_impl(config: ModelConfig, backend: str | None = None) -> str:
  """The path `config.attention_impl` means on `backend` (default: JAX's): "auto" resolved,
  and a clear error for a kernel that does not run there."""
  backend = backend or jax.default_backend()
  impl = config.attention_impl
  if impl in (None, "auto"):
    return AUTO_IMPL.get(backend, "blockwise")
  if impl in BACKENDS and BACKENDS[impl][0] != backend:
    raise ValueError(f"ModelConfig.attention_impl={impl!r} runs {BACKENDS[impl][1]}; this "
                     f"backend is {backend!r}: use 'auto', 'dense', 'blockwise' or 'xla'")
  return impl


def model_mask(segments: Segments, config: ModelConfig):
  """What the stacks hand to attention: ranks for the memory-linear paths, else the dense
  [B, 1, T, T] booleans."""
  if attention_impl(config) in RANK_IMPLS:
    return ranks(segments, config.attention)
  return attention_mask(segments, config.attention)


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

  def _project(self, x_BTD, cos_BTK, sin_BTK):
    """q, k (rotated), v and the gate, each [B, T, heads, head_dim]."""
    c = self.config
    b, t, d = x_BTD.shape
    x_RD = x_BTD.reshape(b * t, d)  # 2-D projections: see mlp.py
    heads = lambda y: y.reshape(b, t, c.num_attention_heads, c.head_dim)
    return (apply_rotary(heads(self.q_proj(x_RD)), cos_BTK, sin_BTK),
            apply_rotary(heads(self.k_proj(x_RD)), cos_BTK, sin_BTK),
            heads(self.v_proj(x_RD)), heads(self.gate_proj(x_RD)))

  def _attend(self, q_BTNK, k_BSNK, v_BSNK, gate_BTNK, mask_B1TS):
    c = self.config
    b, t = q_BTNK.shape[:2]
    impl = attention_impl(c)
    if isinstance(mask_B1TS, RankMask):  # softmax and accumulation in fp32 on every path
      m = mask_B1TS
      # The kernels are imported only where they run.
      # pylint: disable=import-outside-toplevel
      if impl == "pallas":
        from hrm_jax.model.pallas_gpu import pallas_attention as attend
      elif impl == "splash":
        from hrm_jax.model.splash_tpu import splash_attention as attend
      else:
        attend = blockwise_attention
      out_BTNK = attend(q_BTNK, k_BSNK, v_BSNK, m.segment_ids, m.rank_q, m.segment_ids,
                        m.rank_k)
    elif impl == "dense":  # also a cached decode step (one query over the cache)
      out_BTNK = dense_attention(q_BTNK, k_BSNK, v_BSNK, mask_B1TS)
    else:  # "xla", "cudnn", or a cached decode step of the rank paths
      out_BTNK = jax.nn.dot_product_attention(
          q_BTNK, k_BSNK, v_BSNK, mask=mask_B1TS,
          implementation="cudnn" if impl == "cudnn" else "xla")
    gated = jax.nn.sigmoid(gate_BTNK) * out_BTNK
    return self.o_proj(gated.reshape(b * t, c.attention_width)).reshape(b, t, c.hidden_size)

  def __call__(self, x_BTD: jax.Array, cos_BTK: jax.Array, sin_BTK: jax.Array,
               mask_B1TT: jax.Array) -> jax.Array:
    q_BTNK, k_BTNK, v_BTNK, gate_BTNK = self._project(x_BTD, cos_BTK, sin_BTK)
    return self._attend(q_BTNK, k_BTNK, v_BTNK, gate_BTNK, mask_B1TT)

  def cached(self, x_BtD, cos_BtK, sin_BtK, mask_B1tS, k_BSNK, v_BSNK, start_B):
    """Attention of t new tokens per row over a KV cache of S positions: their keys and
    values are written at [start_b, start_b + t) of row b first. Returns (out, k, v)."""
    q_BtNK, k_BtNK, v_BtNK, gate_BtNK = self._project(x_BtD, cos_BtK, sin_BtK)
    write = jax.vmap(lambda cache, new, start: jax.lax.dynamic_update_slice_in_dim(
        cache, new.astype(cache.dtype), start, axis=0))
    k_BSNK, v_BSNK = write(k_BSNK, k_BtNK, start_B), write(v_BSNK, v_BtNK, start_B)
    out = self._attend(q_BtNK, k_BSNK.astype(q_BtNK.dtype), v_BSNK.astype(q_BtNK.dtype),
                       gate_BtNK, mask_B1tS)
    return out, k_BSNK, v_BSNK
