"""Fused attention over packed rows for GPUs: Pallas kernels (Triton lowering), forward and
backward, with the rank mask of attention.py (segment ids and per-token query/key ranks) and
tile skipping. bf16 or fp32 inputs; scores, softmax and accumulators in fp32.

Grid: one program per (query block, row, head) in the forward and the dQ kernel, per (key
block, row, head) in the dK/dV kernel, so no program writes what another writes (no atomics).
A key block is skipped when no pair of the two blocks can be allowed: all its keys rank above
every query of the block (the upper triangle of causal and PrefixLM masks), or its segment-id
range does not meet the queries' (other samples of the packed row).

Off GPU the kernels run in Pallas' interpret mode (`interpret=True`): how the tests check them
on CPU against blockwise.py.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
from jax import lax
from jax.experimental import pallas as pl

QUERY_PAD, KEY_PAD = -2, -1  # segment ids of padded slots: they match nothing real or each other


def _pad(x, multiple: int, fill):
  pad = -x.shape[1] % multiple
  return x if not pad else jnp.pad(
      x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2), constant_values=fill)


def _may_meet(seg_q, rank_q, seg_k, rank_k):
  """Whether any (query, key) pair of the two blocks could be allowed (conservative)."""
  below = jnp.min(rank_k) <= jnp.max(rank_q)
  overlap = (jnp.min(seg_k) <= jnp.max(seg_q)) & (jnp.max(seg_k) >= jnp.min(seg_q))
  return below & overlap


def _mask(seg_q, rank_q, seg_k, rank_k):
  return (seg_q[:, None] == seg_k[None, :]) & (rank_k[None, :] <= rank_q[:, None])


def _scores(q, k, scale):
  return pl.dot(q, k, trans_b=True).astype(jnp.float32) * scale


def _forward_kernel(q_ref, k_ref, v_ref, segq_ref, rankq_ref, segk_ref, rankk_ref, o_ref,
                    lse_ref, *, scale: float, block_k: int):
  q, seg_q, rank_q = q_ref[...], segq_ref[...], rankq_ref[...]
  block_q, dim = q.shape

  def body(j, carry):
    def attend(carry):
      o, m, l = carry
      keys = pl.ds(j * block_k, block_k)
      seg_k, rank_k = segk_ref[keys], rankk_ref[keys]
      allowed = _mask(seg_q, rank_q, seg_k, rank_k)
      s = jnp.where(allowed, _scores(q, k_ref[keys, :], scale), -jnp.inf)
      m_new = jnp.maximum(m, jnp.max(s, axis=1))
      m_safe = jnp.where(m_new == -jnp.inf, 0.0, m_new)
      p = jnp.where(allowed, jnp.exp(s - m_safe[:, None]), 0.0)
      correction = jnp.exp(m - m_safe)
      v = v_ref[keys, :]
      o = o * correction[:, None] + pl.dot(p.astype(v.dtype), v).astype(jnp.float32)
      return o, m_new, l * correction + jnp.sum(p, axis=1)

    keys = pl.ds(j * block_k, block_k)
    meet = _may_meet(seg_q, rank_q, segk_ref[keys], rankk_ref[keys])
    return lax.cond(meet, attend, lambda c: c, carry)

  init = (jnp.zeros((block_q, dim), jnp.float32), jnp.full((block_q,), -jnp.inf, jnp.float32),
          jnp.zeros((block_q,), jnp.float32))
  o, m, l = lax.fori_loop(0, k_ref.shape[0] // block_k, body, init)
  safe_l = jnp.where(l > 0, l, 1.0)
  o_ref[...] = (o / safe_l[:, None]).astype(o_ref.dtype)
  lse_ref[...] = jnp.where(l > 0, m + jnp.log(safe_l), jnp.inf)


def _dq_kernel(q_ref, k_ref, v_ref, segq_ref, rankq_ref, segk_ref, rankk_ref, do_ref, lse_ref,
               delta_ref, dq_ref, *, scale: float, block_k: int):
  q, seg_q, rank_q = q_ref[...], segq_ref[...], rankq_ref[...]
  do, lse, delta = do_ref[...], lse_ref[...], delta_ref[...]

  def body(j, dq):
    def accumulate(dq):
      keys = pl.ds(j * block_k, block_k)
      allowed = _mask(seg_q, rank_q, segk_ref[keys], rankk_ref[keys])
      k, v = k_ref[keys, :], v_ref[keys, :]
      p = jnp.where(allowed, jnp.exp(_scores(q, k, scale) - lse[:, None]), 0.0)
      dp = pl.dot(do, v, trans_b=True).astype(jnp.float32)
      ds = p * (dp - delta[:, None]) * scale
      return dq + pl.dot(ds.astype(k.dtype), k).astype(jnp.float32)

    keys = pl.ds(j * block_k, block_k)
    meet = _may_meet(seg_q, rank_q, segk_ref[keys], rankk_ref[keys])
    return lax.cond(meet, accumulate, lambda d: d, dq)

  dq = lax.fori_loop(0, k_ref.shape[0] // block_k, body, jnp.zeros(q.shape, jnp.float32))
  dq_ref[...] = dq.astype(dq_ref.dtype)


def _dkv_kernel(q_ref, k_ref, v_ref, segq_ref, rankq_ref, segk_ref, rankk_ref, do_ref, lse_ref,
                delta_ref, dk_ref, dv_ref, *, scale: float, block_q: int):
  k, v, seg_k, rank_k = k_ref[...], v_ref[...], segk_ref[...], rankk_ref[...]

  def body(i, carry):
    def accumulate(carry):
      dk, dv = carry
      queries = pl.ds(i * block_q, block_q)
      q, do = q_ref[queries, :], do_ref[queries, :]
      lse, delta = lse_ref[queries], delta_ref[queries]
      allowed = _mask(segq_ref[queries], rankq_ref[queries], seg_k, rank_k)
      p = jnp.where(allowed, jnp.exp(_scores(q, k, scale) - lse[:, None]), 0.0)
      dv = dv + pl.dot(p.astype(do.dtype), do, trans_a=True).astype(jnp.float32)
      dp = pl.dot(do, v, trans_b=True).astype(jnp.float32)
      ds = p * (dp - delta[:, None]) * scale
      return dk + pl.dot(ds.astype(q.dtype), q, trans_a=True).astype(jnp.float32), dv

    queries = pl.ds(i * block_q, block_q)
    meet = _may_meet(segq_ref[queries], rankq_ref[queries], seg_k, rank_k)
    return lax.cond(meet, accumulate, lambda c: c, carry)

  zeros = jnp.zeros(k.shape, jnp.float32)
  dk, dv = lax.fori_loop(0, q_ref.shape[0] // block_q, body, (zeros, zeros))
  dk_ref[...], dv_ref[...] = dk.astype(dk_ref.dtype), dv.astype(dv_ref.dtype)


def _specs(block: int, length: int, dim: int):
  """BlockSpecs over [B, T, N, K] and [B, T] (grid: block index, row, head): one block, or
  the whole length."""
  tile = lambda size, whole: pl.BlockSpec(
      (None, size, None, dim), (lambda i, b, n: (b, 0, n, 0)) if whole else
      (lambda i, b, n: (b, i, n, 0)))
  line = lambda size, whole: pl.BlockSpec(
      (None, size), (lambda i, b, n: (b, 0)) if whole else (lambda i, b, n: (b, i)))
  per_head = lambda size, whole: pl.BlockSpec(
      (None, None, size), (lambda i, b, n: (b, n, 0)) if whole else (lambda i, b, n: (b, n, i)))
  return tile, line, per_head


def _call_forward(q, k, v, seg_q, rank_q, seg_k, rank_k, block_q, block_k, interpret):
  b, t, n, d = q.shape
  tile, line, per_head = _specs(block_q, t, d)
  return pl.pallas_call(
      functools.partial(_forward_kernel, scale=1.0 / math.sqrt(d), block_k=block_k),
      grid=(t // block_q, b, n),
      in_specs=[tile(block_q, False), tile(k.shape[1], True), tile(k.shape[1], True),
                line(block_q, False), line(block_q, False), line(k.shape[1], True),
                line(k.shape[1], True)],
      out_specs=[tile(block_q, False), per_head(block_q, False)],
      out_shape=[jax.ShapeDtypeStruct(q.shape, q.dtype),
                 jax.ShapeDtypeStruct((b, n, t), jnp.float32)],
      interpret=interpret, name="packed_attention_forward",
  )(q, k, v, seg_q, rank_q, seg_k, rank_k)


@functools.partial(jax.custom_vjp, nondiff_argnums=(7, 8, 9))
def _attention(q, k, v, seg_q, rank_q, seg_k, rank_k, block_q, block_k, interpret):
  return _call_forward(q, k, v, seg_q, rank_q, seg_k, rank_k, block_q, block_k, interpret)[0]


def _attention_fwd(q, k, v, seg_q, rank_q, seg_k, rank_k, block_q, block_k, interpret):
  out, lse = _call_forward(q, k, v, seg_q, rank_q, seg_k, rank_k, block_q, block_k, interpret)
  return out, (q, k, v, seg_q, rank_q, seg_k, rank_k, out, lse)


def _attention_bwd(block_q, block_k, interpret, residuals, d_out):
  q, k, v, seg_q, rank_q, seg_k, rank_k, out, lse = residuals
  b, t, n, d = q.shape
  s_len, scale = k.shape[1], 1.0 / math.sqrt(d)
  delta = jnp.einsum("btnk,btnk->bnt", out.astype(jnp.float32), d_out.astype(jnp.float32))
  d_out = d_out.astype(q.dtype)
  tile, line, per_head = _specs(block_q, t, d)
  args = (q, k, v, seg_q, rank_q, seg_k, rank_k, d_out, lse, delta)
  dq = pl.pallas_call(
      functools.partial(_dq_kernel, scale=scale, block_k=block_k),
      grid=(t // block_q, b, n),
      in_specs=[tile(block_q, False), tile(s_len, True), tile(s_len, True),
                line(block_q, False), line(block_q, False), line(s_len, True),
                line(s_len, True), tile(block_q, False), per_head(block_q, False),
                per_head(block_q, False)],
      out_specs=tile(block_q, False), out_shape=jax.ShapeDtypeStruct(q.shape, q.dtype),
      interpret=interpret, name="packed_attention_dq",
  )(*args)
  dk, dv = pl.pallas_call(
      functools.partial(_dkv_kernel, scale=scale, block_q=block_q),
      grid=(s_len // block_k, b, n),
      in_specs=[tile(t, True), tile(block_k, False), tile(block_k, False),
                line(t, True), line(t, True), line(block_k, False), line(block_k, False),
                tile(t, True), per_head(t, True), per_head(t, True)],
      out_specs=[tile(block_k, False), tile(block_k, False)],
      out_shape=[jax.ShapeDtypeStruct(k.shape, k.dtype), jax.ShapeDtypeStruct(v.shape, v.dtype)],
      interpret=interpret, name="packed_attention_dkv",
  )(*args)
  return dq, dk, dv, None, None, None, None


_attention.defvjp(_attention_fwd, _attention_bwd)


def pallas_attention(q_BTNK, k_BSNK, v_BSNK, seg_q_BT, rank_q_BT, seg_k_BS, rank_k_BS, *,
                     block_q: int = 64, block_k: int = 64, interpret: bool = False):
  """blockwise.blockwise_attention's function as fused GPU kernels. Lengths are padded to
  the blocks (padded slots match nothing); head_dim must be a power of two ≥ 16 (Triton's
  dot tiles)."""
  d = q_BTNK.shape[-1]
  if d < 16 or d & (d - 1):
    raise ValueError(f"the Pallas attention kernel needs head_dim a power of two >= 16, got {d}; "
                     "use attention_impl='blockwise'")
  t = q_BTNK.shape[1]
  block_q = min(block_q, pl.next_power_of_2(t))
  block_k = min(block_k, pl.next_power_of_2(k_BSNK.shape[1]))
  q = _pad(q_BTNK, block_q, 0)
  k, v = _pad(k_BSNK, block_k, 0), _pad(v_BSNK, block_k, 0)
  out = _attention(q, k, v, _pad(seg_q_BT, block_q, QUERY_PAD), _pad(rank_q_BT, block_q, 0),
                   _pad(seg_k_BS, block_k, KEY_PAD), _pad(rank_k_BS, block_k, 0), block_q,
                   block_k, interpret)
  return out[:, :t]
