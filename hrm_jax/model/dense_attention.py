"""Dense attention over a boolean mask with a hand-written backward: the CPU training path.

The same function as `jax.nn.dot_product_attention(..., implementation="xla")` (fp32 scores
and softmax, probabilities cast to the inputs' dtype for the value product, a fully masked
query spreading its weight evenly as jax's large-negative fill does), laid out [B, N, T, K] so
that every product is one batched matmul. The backward (`jax.custom_vjp`) keeps the
probabilities and computes dV = Pᵀ dO, dS = P ⊙ (dO Vᵀ − rowsum(dO ⊙ O)), dQ = dS K,
dK = dSᵀ Q: on XLA-CPU the autodiff of jax's path took 2.5× as long for the same gradients
(bench/hrm_model_throughput.py --attention-impl xla dense).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

# jax.nn.dot_product_attention's fill for masked scores: finite, so a fully masked row is
# uniform rather than NaN.
MASKED = -0.7 * float(jnp.finfo(jnp.float32).max)


def _heads_first(x_BTNK):
  return jnp.swapaxes(x_BTNK, 1, 2)


def _probabilities(q_BNTK, k_BNSK, mask_B1TS):
  """Softmax of the masked, scaled scores: [B, N, T, S] fp32."""
  scores = jnp.einsum("bntk,bnsk->bnts", q_BNTK, k_BNSK, preferred_element_type=jnp.float32)
  scores = jnp.where(mask_B1TS, scores * (1.0 / math.sqrt(q_BNTK.shape[-1])), MASKED)
  return jax.nn.softmax(scores, axis=-1)


def _forward(q_BTNK, k_BSNK, v_BSNK, mask_B1TS):
  q, k, v = _heads_first(q_BTNK), _heads_first(k_BSNK), _heads_first(v_BSNK)
  p_BNTS = _probabilities(q, k, mask_B1TS)
  o_BNTK = jnp.einsum("bnts,bnsk->bntk", p_BNTS.astype(v.dtype), v)
  return _heads_first(o_BNTK), (q, k, v, mask_B1TS, p_BNTS, o_BNTK)


@jax.custom_vjp
def dense_attention(q_BTNK, k_BSNK, v_BSNK, mask_B1TS):
  """Softmax(Q Kᵀ / √K over the allowed keys) V: [B, T, N, K] in q's dtype. `mask_B1TS`:
  booleans, True where query t may attend key s (broadcast over heads)."""
  return _forward(q_BTNK, k_BSNK, v_BSNK, mask_B1TS)[0]


def _backward(residuals, do_BTNK):
  q, k, v, mask_B1TS, p_BNTS, o_BNTK = residuals
  f32 = lambda x: x.astype(jnp.float32)
  do_BNTK = f32(_heads_first(do_BTNK))
  dv = jnp.einsum("bnts,bntk->bnsk", p_BNTS, do_BNTK)
  dp_BNTS = jnp.einsum("bntk,bnsk->bnts", do_BNTK, f32(v))
  delta_BNT1 = jnp.sum(do_BNTK * f32(o_BNTK), -1, keepdims=True)
  # Masked scores are constants: a fully masked row's uniform weights pass no gradient to q, k.
  ds_BNTS = jnp.where(mask_B1TS, p_BNTS * (dp_BNTS - delta_BNT1), 0.0) * (
      1.0 / math.sqrt(q.shape[-1]))
  dq = jnp.einsum("bnts,bnsk->bntk", ds_BNTS, f32(k))
  dk = jnp.einsum("bnts,bntk->bnsk", ds_BNTS, f32(q))
  grads = tuple(_heads_first(g).astype(x.dtype) for g, x in ((dq, q), (dk, k), (dv, v)))
  return (*grads, None)


dense_attention.defvjp(_forward, _backward)
