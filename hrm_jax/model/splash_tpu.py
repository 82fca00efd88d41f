"""Fused, memory-linear attention over packed rows on TPU: jax's splash attention (Pallas TPU
kernels, forward and backward) in two passes, as the authors run FlashAttention-3 varlen.

Why two passes: splash masks are static (numpy masks compiled into block-sparsity tables);
only segment ids are dynamic. The rank mask of attention.py has per-token, data-dependent
prefix lengths, which no static mask expresses. But on a packed row (samples contiguous,
positions increasing along the row; self-attention, so queries and keys are the same tokens)
the rank mask splits into two masks splash can take:
  - a query inside its sample's prefix (rank_k = 0 at its own index) sees exactly the prefix
    keys of its sample: a full mask, with segment ids that put every non-prefix token in a
    segment of its own;
  - any other query at position p sees every key of its sample at position ≤ p (the prefix
    lies before it): a causal mask over the row, with the sample ids as segments.
Each query keeps the pass it belongs to. Causal (rank = position) makes only position-0 tokens
"prefix" and bidirectional (rank 0) makes all of them, so the same two passes serve all three
modes. The cost: splash cannot skip tiles by dynamic segment ids, so the full pass computes
every tile: 1.5× the FLOPs of one full pass, against the GPU kernel's tile skipping
(pallas_gpu.py). What this buys over the dense path is memory: nothing [T, T] is kept.

Off TPU the kernels run in Pallas' interpret mode (`interpret=True`), as the tests run them.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

BLOCK = 128  # splash's block sizes: lengths are padded to a multiple


@functools.lru_cache(maxsize=None)
def _kernel(kind: str, length: int, heads: int, block: int, interpret: bool):
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_kernel as sk  # pylint: disable=import-outside-toplevel
  from jax.experimental.pallas.ops.tpu.splash_attention import splash_attention_mask as sm  # pylint: disable=import-outside-toplevel
  shape = (length, length)
  one = sm.FullMask(shape) if kind == "full" else sm.CausalMask(shape)
  sizes = sk.BlockSizes(block_q=block, block_kv=block, block_kv_compute=block,
                        block_q_dkv=block, block_kv_dkv=block, block_kv_dkv_compute=block,
                        block_q_dq=block, block_kv_dq=block)
  kernel = sk.make_splash_mha_single_device(sm.MultiHeadMask([one] * heads), block_sizes=sizes,
                                            interpret=interpret)
  return kernel, sk.SegmentIds


def splash_attention(q_BTNK, k_BSNK, v_BSNK, seg_q_BT, rank_q_BT, seg_k_BS, rank_k_BS, *,
                     block: int = BLOCK, interpret: bool = False):
  """blockwise.blockwise_attention's function (self-attention over packed rows) by splash
  attention in two passes (the module docstring). Inputs in any float dtype; splash computes
  scores and softmax in fp32 and returns q's dtype."""
  del rank_q_BT  # implied by the packed-row layout (see the module docstring)
  b, t, n, d = q_BTNK.shape
  if k_BSNK.shape[1] != t or seg_q_BT.shape != seg_k_BS.shape:
    raise ValueError("splash attention here is self-attention over one packed row: queries "
                     f"and keys must be the same {t} tokens, got {k_BSNK.shape[1]} keys")
  length = -(-t // block) * block
  pad = length - t
  index = jnp.arange(length, dtype=jnp.int32)
  own = -(index + 1)  # a segment id of its own per token: matches only itself
  real = jnp.broadcast_to(index < t, (b, length))
  seg = jnp.where(real, jnp.pad(seg_k_BS, [(0, 0), (0, pad)]), own)
  in_prefix = real & (jnp.pad(rank_k_BS, [(0, 0), (0, pad)], constant_values=1) == 0)
  seg_prefix = jnp.where(in_prefix, seg, own)

  def heads_first(x):  # [B, T, N, K] → [B, N, T', K], scaled, padded
    return jnp.swapaxes(jnp.pad(x, [(0, 0), (0, pad), (0, 0), (0, 0)]), 1, 2)
  q = heads_first(q_BTNK * np.asarray(1.0 / math.sqrt(d), q_BTNK.dtype))
  k, v = heads_first(k_BSNK), heads_first(v_BSNK)

  def one_pass(kind, segments):
    kernel, segment_ids = _kernel(kind, length, n, block, interpret)
    return jax.vmap(lambda q, k, v, s: kernel(q, k, v, segment_ids=segment_ids(s, s)))(
        q, k, v, segments)
  out = jnp.where(in_prefix[:, None, :, None], one_pass("full", seg_prefix),
                  one_pass("causal", seg))
  return jnp.swapaxes(out, 1, 2)[:, :t]
