"""The attention paths against the dense reference (jax.nn.dot_product_attention's XLA path):
the memory-linear blockwise attention and the dense path with a hand-written backward; outputs
and gradients over packed rows (several samples, padding, prefixes of 0, part and all of a
sample), in the three mask modes, fp32 and bf16."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrm_jax.model.attention import Segments, attention_mask, ranks
from hrm_jax.model.blockwise import blockwise_attention
from hrm_jax.model.dense_attention import dense_attention

T = 37  # not a multiple of the block sizes below


def _packed_rows():
  """Two rows: [prefix 0, partial prefix, padding] and [whole-sample prefix, partial, tail]."""
  rows = [[(9, 0), (14, 5), (6, 6), (8, 3)],  # (length, prefix) of each sample; rest padding
          [(10, 10), (20, 7), (7, 1)]]
  seg, pos, pre = (np.zeros((2, T), np.int32) for _ in range(3))
  for r, samples in enumerate(rows):
    at = 0
    for s, (length, prefix) in enumerate(samples, 1):
      seg[r, at:at + length], pos[r, at:at + length] = s, np.arange(length)
      pre[r, at:at + length] = prefix
      at += length
  return Segments(jnp.asarray(seg), jnp.asarray(pos), jnp.asarray(pre))


def _qkv(dtype, heads=3, dim=8):
  keys = jax.random.split(jax.random.key(0), 4)
  make = lambda key: jax.random.normal(key, (2, T, heads, dim), jnp.float32).astype(dtype)
  return make(keys[0]), make(keys[1]), make(keys[2]), make(keys[3])


def _dense(q, k, v, segments, mode):
  return jax.nn.dot_product_attention(q, k, v, mask=attention_mask(segments, mode),
                                      implementation="xla")


def _blockwise(q, k, v, segments, mode, block):
  m = ranks(segments, mode)
  return blockwise_attention(q, k, v, m.segment_ids, m.rank_q, m.segment_ids, m.rank_k,
                             block=block)


def _assert_matches_dense(attention, segments, mode, q, k, v, cotangent):
  """`attention(q, k, v)`'s outputs and q, k, v gradients equal the dense path's at fp32
  rounding, on the real (non-padding) queries, whose outputs are the only ones used."""
  real = segments.segment_ids[:, :, None, None] > 0
  loss = lambda f: lambda q, k, v: jnp.sum(jnp.where(real, f(q, k, v) * cotangent, 0.0))
  dense = lambda q, k, v: _dense(q, k, v, segments, mode)
  np.testing.assert_allclose(np.where(real, attention(q, k, v), 0),
                             np.where(real, dense(q, k, v), 0), atol=1e-5, rtol=1e-5)
  for got, want in zip(jax.grad(loss(attention), (0, 1, 2))(q, k, v),
                       jax.grad(loss(dense), (0, 1, 2))(q, k, v)):
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("mode", ["prefix_lm", "causal", "bidirectional"])
@pytest.mark.parametrize("block", [8, 16, 64])
def test_outputs_and_gradients_match_dense_in_fp32(mode, block):
  segments = _packed_rows()
  _assert_matches_dense(lambda q, k, v: _blockwise(q, k, v, segments, mode, block), segments,
                        mode, *_qkv(jnp.float32))


def test_bf16_inputs_accumulate_in_fp32():
  segments = _packed_rows()
  q, k, v, cotangent = _qkv(jnp.bfloat16)
  real = segments.segment_ids[:, :, None, None] > 0
  ours = _blockwise(q, k, v, segments, "prefix_lm", 16)
  assert ours.dtype == jnp.bfloat16
  want = _dense(*(x.astype(jnp.float32) for x in (q, k, v)), segments, "prefix_lm")
  np.testing.assert_allclose(np.where(real, ours.astype(np.float32), 0), np.where(real, want, 0),
                             atol=2e-2, rtol=2e-2)
  grads = jax.grad(lambda q: jnp.sum(jnp.where(real, _blockwise(q, k, v, segments, "prefix_lm", 16)
                                               .astype(jnp.float32) * cotangent, 0)))(q)
  want_grads = jax.grad(lambda q: jnp.sum(jnp.where(
      real, _dense(q, k.astype(jnp.float32), v.astype(jnp.float32), segments, "prefix_lm")
      * cotangent.astype(jnp.float32), 0)))(q.astype(jnp.float32))
  assert grads.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(grads, np.float32), want_grads, atol=5e-2, rtol=5e-2)


@pytest.mark.parametrize("mode", ["prefix_lm", "causal", "bidirectional"])
def test_the_hand_written_backward_matches_autodiff_on_every_query(mode):
  """Padding queries and a query with no allowed key included: jax's path gives a fully
  masked query uniform weights and passes no gradient through its masked scores."""
  segments = _packed_rows()
  mask = attention_mask(segments, mode).at[1, 0, 5].set(False)  # row 1, query 5: sees nothing
  q, k, v, cotangent = _qkv(jnp.float32)
  reference = lambda q, k, v: jax.nn.dot_product_attention(q, k, v, mask=mask,
                                                           implementation="xla")
  ours = lambda q, k, v: dense_attention(q, k, v, mask)
  np.testing.assert_allclose(ours(q, k, v), reference(q, k, v), atol=1e-6, rtol=1e-6)
  loss = lambda f: lambda q, k, v: jnp.sum(f(q, k, v) * cotangent)
  for got, want in zip(jax.jit(jax.grad(loss(ours), (0, 1, 2)))(q, k, v),
                       jax.jit(jax.grad(loss(reference), (0, 1, 2)))(q, k, v)):
    np.testing.assert_allclose(got, want, atol=1e-5, rtol=1e-5)
  # bf16 in, bf16 out, as jax's path: probabilities rounded to bf16 for the value product.
  qb, kb, vb = (x.astype(jnp.bfloat16) for x in (q, k, v))
  out = ours(qb, kb, vb)
  assert out.dtype == jnp.bfloat16
  np.testing.assert_allclose(np.asarray(out, np.float32),
                             np.asarray(reference(qb, kb, vb), np.float32), atol=1e-2)
  grads = jax.grad(lambda q: jnp.sum(ours(q, kb, vb).astype(jnp.float32) * cotangent))(qb)
  assert grads.dtype == jnp.bfloat16
  want = jax.grad(loss(reference))(q, k, v)
  np.testing.assert_allclose(np.asarray(grads, np.float32), want, atol=5e-2, rtol=5e-2)


def test_ranks_reproduce_the_dense_masks():
  segments = _packed_rows()
  for mode in ("prefix_lm", "causal", "bidirectional"):
    m = ranks(segments, mode)
    seg, rank_q, rank_k = m.segment_ids, m.rank_q, m.rank_k
    from_ranks = (seg[:, :, None] == seg[:, None, :]) & (rank_k[:, None, :] <= rank_q[:, :, None])
    np.testing.assert_array_equal(from_ranks, attention_mask(segments, mode)[:, 0])


def test_the_blockwise_program_keeps_no_square_matrix():
  """The compiled gradient's temporaries grow linearly in T (dense: quadratically)."""
  def temp_bytes(t, f):
    shape = jax.ShapeDtypeStruct((1, t, 2, 16), jnp.float32)
    seg = jax.ShapeDtypeStruct((1, t), jnp.int32)
    g = jax.jit(jax.grad(lambda q, k, v, s: jnp.sum(f(q, k, v, s)), (0, 1, 2)))
    return g.lower(shape, shape, shape, seg).compile().memory_analysis().temp_size_in_bytes

  ours = lambda q, k, v, s: blockwise_attention(q, k, v, s, s, s, s, block=64)
  dense = lambda q, k, v, s: jax.nn.dot_product_attention(
      q, k, v, mask=(s[:, :, None] >= s[:, None, :])[:, None], implementation="xla")
  small, large = temp_bytes(512, ours), temp_bytes(2048, ours)
  assert large < 6 * small  # 4× the length: linear (dense would be ~16×)
  assert temp_bytes(2048, dense) > 8 * large


@pytest.mark.parametrize("impl", ["blockwise", "dense"])
def test_the_model_is_the_same_function_on_every_cpu_path(impl, architecture="hrm"):
  """Logits and parameter gradients at bp 2 agree between attention_impl xla and the other
  paths that run on CPU, and KV-cached greedy decoding writes the same tokens."""
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from hrm_jax import generate as generate_lib  # pylint: disable=import-outside-toplevel
  from hrm_jax.model import build  # pylint: disable=import-outside-toplevel
  from tests.hrm.conftest import BYTE_TINY  # pylint: disable=import-outside-toplevel
  config = BYTE_TINY.replace(architecture=architecture, num_layers_per_stack=1,
                             max_position_embeddings=T, num_loops=3)
  dense = build(config.replace(attention_impl="xla"), rngs=nnx.Rngs(1))
  ours = build(config.replace(attention_impl=impl), rngs=nnx.Rngs(1))
  segments = _packed_rows()
  tokens = jax.random.randint(jax.random.key(2), (2, T), 1, 500)

  def value_and_grad(model):
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    real = (segments.segment_ids > 0)[..., None]
    f = lambda p: jnp.sum(jnp.where(real, nnx.merge(graphdef, p, rest)(
        tokens, segments, bp_steps=2) ** 2, 0.0)) / 1e4
    return jax.jit(jax.value_and_grad(f))(params)

  (v_dense, g_dense), (v_ours, g_ours) = value_and_grad(dense), value_and_grad(ours)
  np.testing.assert_allclose(v_ours, v_dense, rtol=1e-5)
  for got, want in zip(jax.tree.leaves(g_ours), jax.tree.leaves(g_dense)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * float(np.abs(want).max()) + 1e-9)
  prompts = [[6, 13, 8, 70, 71, 72, 7], [6, 13, 8, 99, 7]]
  assert (generate_lib.generate(ours, prompts, max_new_tokens=5, stop_token=None)
          == generate_lib.generate(dense, prompts, max_new_tokens=5, stop_token=None))


@pytest.mark.parametrize("mode", ["prefix_lm", "causal", "bidirectional"])
def test_the_pallas_gpu_kernels_in_interpret_mode_match_dense(mode):
  """The fused GPU kernels (forward, dQ, dK/dV) run by Pallas' interpreter on CPU: outputs
  and gradients as the dense path, with blocks that skip whole tiles of other samples."""
  from hrm_jax.model.pallas_gpu import pallas_attention  # pylint: disable=import-outside-toplevel
  segments = _packed_rows()
  m = ranks(segments, mode)
  ours = lambda q, k, v: pallas_attention(q, k, v, m.segment_ids, m.rank_q, m.segment_ids,
                                          m.rank_k, block_q=16, block_k=16, interpret=True)
  _assert_matches_dense(ours, segments, mode, *_qkv(jnp.float32, heads=2, dim=16))


def test_a_kernel_off_its_backend_names_the_alternatives_and_auto_resolves():
  from flax import nnx  # pylint: disable=import-outside-toplevel
  from hrm_jax.model import build  # pylint: disable=import-outside-toplevel
  from hrm_jax.model.attention import attention_impl  # pylint: disable=import-outside-toplevel
  from tests.hrm.conftest import TINY  # pylint: disable=import-outside-toplevel
  for impl, what in (("pallas", "Triton kernels on a GPU"), ("splash", "TPU kernels")):
    model = build(TINY.replace(attention_impl=impl, num_layers_per_stack=1), rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=f"runs {what}; this backend is 'cpu': use 'auto', "
                       "'dense', 'blockwise' or 'xla'"):
      model(jnp.ones((1, 8), jnp.int32))
  auto = TINY.replace(attention_impl="auto")
  assert [attention_impl(auto, b) for b in ("gpu", "tpu", "cpu", "other")] == [
      "pallas", "splash", "dense", "blockwise"]
  assert attention_impl(TINY.replace(attention_impl=None), "tpu") == "splash"
  assert attention_impl(TINY.replace(attention_impl="splash"), "tpu") == "splash"


@pytest.mark.parametrize("mode", ["prefix_lm", pytest.param("causal", marks=pytest.mark.slow),
                                  pytest.param("bidirectional", marks=pytest.mark.slow)])
def test_the_splash_tpu_passes_in_interpret_mode_match_dense(mode):
  """Splash attention's TPU kernels run by Pallas' interpreter on CPU, in the two passes
  (prefix queries: full mask; the rest: causal) that serve the rank mask: outputs and
  gradients as the dense path, lengths padded to splash's blocks."""
  from hrm_jax.model.splash_tpu import splash_attention  # pylint: disable=import-outside-toplevel
  segments = _packed_rows()
  m = ranks(segments, mode)
  ours = lambda q, k, v: splash_attention(q, k, v, m.segment_ids, m.rank_q, m.segment_ids,
                                          m.rank_k, interpret=True)
  _assert_matches_dense(ours, segments, mode, *_qkv(jnp.float32, heads=2, dim=16))
