"""Memory-linear attention over packed rows in pure JAX: online softmax over key blocks, and a
backward (`jax.custom_vjp`) that recomputes each block's probabilities from the saved
log-sum-exp instead of keeping the [T, S] matrices. The portable path and the reference the
fused kernels are tested against.

Masks as ranks (attention.py's `ranks`): query i sees key j iff same segment and
rank_k[j] ≤ rank_q[i]. So one code path serves PrefixLM, causal and bidirectional from
per-token (segment, rank_q, rank_k), and [B, T, S] booleans exist only per key block.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp


NO_SEGMENT = -1  # the segment id of padded key slots: no query has it
BLOCK = 128  # keys per block: [T, BLOCK] scores per head live at a time


def _blocks(x, block: int, fill):
  """[B, S, ...] → [S / block, B, block, ...], S padded up to a multiple of block."""
  s = x.shape[1]
  pad = -s % block
  if pad:
    x = jnp.pad(x, [(0, 0), (0, pad)] + [(0, 0)] * (x.ndim - 2), constant_values=fill)
  return jnp.swapaxes(x.reshape(x.shape[0], -1, block, *x.shape[2:]), 0, 1)


def _allowed(seg_q_BT, rank_q_BT, seg_k_BS, rank_k_BS):
  """[B, 1, T, S] booleans of one key block."""
  same = seg_q_BT[:, :, None] == seg_k_BS[:, None, :]
  return (same & (rank_k_BS[:, None, :] <= rank_q_BT[:, :, None]))[:, None]


def _scores(q_BTNK, k_BSNK, scale):
  return jnp.einsum("btnk,bsnk->bnts", q_BTNK, k_BSNK,
                    preferred_element_type=jnp.float32) * scale


def _forward(q, k, v, seg_q, rank_q, seg_k, rank_k, block):
  """(out [B, T, N, K] in q's dtype, lse [B, N, T] fp32)."""
  b, t, n, d = q.shape
  scale = 1.0 / math.sqrt(d)
  keys = (_blocks(k, block, 0), _blocks(v, block, 0), _blocks(seg_k, block, NO_SEGMENT),
          _blocks(rank_k, block, 0))

  def step(carry, xs):
    m, l, o = carry  # running max, normalizer [B, N, T]; output [B, N, T, K] fp32
    k_j, v_j, seg_j, rank_j = xs
    allowed = _allowed(seg_q, rank_q, seg_j, rank_j)
    s = jnp.where(allowed, _scores(q, k_j, scale), -jnp.inf)
    m_new = jnp.maximum(m, jnp.max(s, -1))
    m_safe = jnp.where(jnp.isneginf(m_new), 0.0, m_new)  # no allowed key yet: nothing to scale
    p = jnp.where(allowed, jnp.exp(s - m_safe[..., None]), 0.0)
    correction = jnp.exp(m - m_safe)
    l = l * correction + jnp.sum(p, -1)
    o = o * correction[..., None] + jnp.einsum("bnts,bsnk->bntk", p.astype(v.dtype), v_j,
                                               preferred_element_type=jnp.float32)
    return (m_new, l, o), None

  init = (jnp.full((b, n, t), -jnp.inf, jnp.float32), jnp.zeros((b, n, t), jnp.float32),
          jnp.zeros((b, n, t, d), jnp.float32))
  (m, l, o), _ = jax.lax.scan(step, init, keys)
  safe_l = jnp.where(l > 0, l, 1.0)
  out = jnp.swapaxes(o / safe_l[..., None], 1, 2).astype(q.dtype)
  lse = jnp.where(l > 0, m + jnp.log(safe_l), jnp.inf)  # inf: the row's p is 0 everywhere
  return out, lse


@functools.partial(jax.custom_vjp, nondiff_argnums=(7,))
def _attention(q, k, v, seg_q, rank_q, seg_k, rank_k, block):
  return _forward(q, k, v, seg_q, rank_q, seg_k, rank_k, block)[0]


def _attention_fwd(q, k, v, seg_q, rank_q, seg_k, rank_k, block):
  out, lse = _forward(q, k, v, seg_q, rank_q, seg_k, rank_k, block)
  return out, (q, k, v, seg_q, rank_q, seg_k, rank_k, out, lse)


def _attention_bwd(block, residuals, d_out):
  q, k, v, seg_q, rank_q, seg_k, rank_k, out, lse = residuals
  s_len, d = k.shape[1], q.shape[-1]
  scale = 1.0 / math.sqrt(d)
  d_out_BNTK = jnp.swapaxes(d_out, 1, 2).astype(jnp.float32)
  # D = rowsum(dO ∘ O): the softmax's own term of dS.
  delta = jnp.einsum("btnk,btnk->bnt", d_out.astype(jnp.float32), out.astype(jnp.float32))
  keys = (_blocks(k, block, 0), _blocks(v, block, 0), _blocks(seg_k, block, NO_SEGMENT),
          _blocks(rank_k, block, 0))

  def step(dq, xs):
    k_j, v_j, seg_j, rank_j = xs
    allowed = _allowed(seg_q, rank_q, seg_j, rank_j)
    p = jnp.where(allowed, jnp.exp(_scores(q, k_j, scale) - lse[..., None]), 0.0)
    dv_j = jnp.einsum("bnts,bntk->bsnk", p, d_out_BNTK)
    dp = jnp.einsum("bntk,bsnk->bnts", d_out_BNTK, v_j.astype(jnp.float32))
    ds = p * (dp - delta[..., None]) * scale
    dq = dq + jnp.einsum("bnts,bsnk->btnk", ds, k_j.astype(jnp.float32))
    dk_j = jnp.einsum("bnts,btnk->bsnk", ds, q.astype(jnp.float32))
    return dq, (dk_j, dv_j)

  dq, (dk, dv) = jax.lax.scan(step, jnp.zeros(q.shape, jnp.float32), keys)
  unblock = lambda x: jnp.swapaxes(x, 0, 1).reshape(x.shape[1], -1, *x.shape[3:])[:, :s_len]
  return (dq.astype(q.dtype), unblock(dk).astype(k.dtype), unblock(dv).astype(v.dtype),
          None, None, None, None)


_attention.defvjp(_attention_fwd, _attention_bwd)


def blockwise_attention(q_BTNK, k_BSNK, v_BSNK, seg_q_BT, rank_q_BT, seg_k_BS, rank_k_BS, *,
                        block: int = BLOCK):
  """softmax(q kᵀ / √K + mask) v with the rank mask of the module docstring, key block by key
  block: memory O(T · block) per head instead of O(T · S). Query i attends key j iff
  seg_q[i] == seg_k[j] and rank_k[j] ≤ rank_q[i]; a query with no such key gets zeros."""
  if q_BTNK.ndim != 4 or k_BSNK.shape != v_BSNK.shape:
    raise ValueError(f"q must be [B, T, N, K] and k, v alike [B, S, N, K]; got "
                     f"{q_BTNK.shape}, {k_BSNK.shape}, {v_BSNK.shape}")
  block = max(1, min(block, k_BSNK.shape[1]))
  return _attention(q_BTNK, k_BSNK, v_BSNK, seg_q_BT, rank_q_BT, seg_k_BS, rank_k_BS, block)
