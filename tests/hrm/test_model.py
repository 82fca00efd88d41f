"""HRM-Text model: masks, gradient window, shapes/dtypes, baselines, FLOPs."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY, forward, make_model, tokens
from flax import nnx

from hrm_jax.model import (ARCHITECTURES, Buffer, ModelConfig, Segments, attention_mask,
                           matched_flops)
from hrm_jax.model import flops


def packed_row():
  """Two samples in one row of 12: sample 1 (prefix 3, length 7), sample 2 (prefix 2,
  length 4), one padding token."""
  seg = jnp.array([[1] * 7 + [2] * 4 + [0]])
  pos = jnp.array([list(range(7)) + list(range(4)) + [0]])
  prefix = jnp.array([[3] * 7 + [2] * 4 + [0]])
  return Segments(seg, pos, prefix)


def test_prefix_lm_mask_matches_the_definition():
  s = packed_row()
  mask = np.asarray(attention_mask(s, "prefix_lm"))[0, 0]
  seg, pos, pre = (np.asarray(x)[0] for x in (s.segment_ids, s.positions, s.prefix_lengths))
  for i in range(12):
    for j in range(12):
      same = seg[i] == seg[j]
      expected = same and (pos[j] <= pos[i] or (pos[i] < pre[i] and pos[j] < pre[j]))
      assert mask[i, j] == expected, (i, j)
  causal = np.asarray(attention_mask(s, "causal"))[0, 0]
  assert not causal[0, 1] and mask[0, 1]  # instruction token sees a later instruction token
  assert np.asarray(attention_mask(s, "bidirectional"))[0, 0, 0, 6]
  assert not np.asarray(attention_mask(s, "bidirectional"))[0, 0, 0, 7]  # never across samples


@pytest.fixture(scope="module")
def model():
  return make_model()


def test_later_segment_and_later_response_do_not_change_earlier_outputs(model):
  s = packed_row()
  tok = tokens(1, 12)
  base = forward(model, tok, s)
  other_sample = forward(model, tok.at[0, 8].set(5), s)  # a token of sample 2
  np.testing.assert_array_equal(base[0, :7], other_sample[0, :7])
  assert not np.allclose(base[0, 7:11], other_sample[0, 7:11])
  later_response = forward(model, tok.at[0, 5].set(7), s)  # response position 5 of sample 1
  np.testing.assert_array_equal(base[0, :5], later_response[0, :5])
  assert not np.allclose(base[0, 5], later_response[0, 5])


def test_instruction_change_reaches_every_instruction_position(model):
  s = packed_row()
  tok = tokens(1, 12)
  base = forward(model, tok, s)
  changed = forward(model, tok.at[0, 2].set(3), s)  # the last instruction token of sample 1
  diff = np.abs(np.asarray(base - changed)).max(axis=-1)[0]
  assert (diff[:7] > 1e-6).all()  # all instruction and response positions of sample 1
  np.testing.assert_array_equal(diff[7:11], 0.0)


@pytest.mark.parametrize("bp,calls", [
    (2, {"L5", "H1"}), (3, {"H0", "L5", "H1"}), (4, {"H0", "L4", "L5", "H1"}),
    (5, {"H0", "L3", "L4", "L5", "H1"}), (8, {"L0", "L1", "L2", "L3", "L4", "L5", "H0", "H1"})])
def test_gradient_window_is_h_prioritized(bp, calls):
  config = TINY.replace(H_cycles=2, L_cycles=3)
  order = ["L0", "L1", "L2", "H0", "L3", "L4", "L5", "H1"]  # call order
  flags = config.gradient_calls(bp)
  assert len(flags) == config.num_calls == len(order)
  assert {name for name, f in zip(order, flags) if f} == calls


def test_gradient_window_rejects_out_of_range():
  config = TINY.replace(H_cycles=2, L_cycles=3)
  with pytest.raises(ValueError, match=r"bp_steps must be in \[2, 8\]"):
    config.gradient_calls(1)
  with pytest.raises(ValueError, match=r"bp_steps must be in \[2, 8\]"):
    config.gradient_calls(9)
  assert config.gradient_calls(None) == (True,) * 8


def test_config_facts_come_from_the_registered_class():
  """ModelConfig answers num_calls, gradient_calls and num_stacks by asking the class
  registered for its architecture: a registered class is all a new architecture needs."""

  class Twice(ARCHITECTURES["transformer"]):
    @classmethod
    def num_calls(cls, config):
      return 2

  ARCHITECTURES["twice"] = Twice
  try:
    config = TINY.replace(architecture="twice", loop_init="z_L_init")
    assert (config.num_calls, config.num_stacks) == (2, 1)
    assert config.gradient_calls(1) == (False, True)
    assert flops.forward_flops(config, 64) == pytest.approx(
        2 * flops.forward_flops(TINY.replace(architecture="transformer"), 64)
        - 2 * TINY.hidden_size * TINY.vocab_size)
  finally:
    del ARCHITECTURES["twice"]
  with pytest.raises(ValueError, match="choose one of"):
    ModelConfig(architecture="twice")


class _GradPrograms:
  """The gradient of sum(sin(logits)) over the parameters at each bp_steps, each compiled once
  per module and shared by the gradient-window tests and the peak-memory test."""

  def __init__(self, model):
    self.graphdef, self.params, self.rest = nnx.split(model, nnx.Param, ...)
    self.tokens = tokens(4, 64)
    self._compiled = {}

  def objective(self, logits):
    return jnp.sum(jnp.sin(logits))

  def compiled(self, bp):
    if bp not in self._compiled:
      loss = lambda p: self.objective(nnx.merge(self.graphdef, p, self.rest)(self.tokens,
                                                                             bp_steps=bp))
      self._compiled[bp] = jax.jit(jax.grad(loss)).lower(self.params).compile()
    return self._compiled[bp]

  def grads(self, bp):
    return nnx.to_pure_dict(self.compiled(bp)(self.params))


@pytest.fixture(scope="module")
def grad_programs(model):
  return _GradPrograms(model)


def _norm(tree):
  return float(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(tree)))


def test_embedding_gets_no_gradient_at_bp_2_and_some_at_bp_3(grad_programs):
  g2, g3 = grad_programs.grads(2), grad_programs.grads(3)
  assert _norm(g2["embed_tokens"]) == 0.0
  assert _norm(g3["embed_tokens"]) > 0.0
  # What the model declares, for the optimizer to skip (train/step.py skip_mask).
  model = nnx.merge(grad_programs.graphdef, grad_programs.params, grad_programs.rest)
  assert model.gradient_free(2) == {"embed_tokens"}
  assert model.gradient_free(3) == model.gradient_free(None) == frozenset()
  for g in (g2, g3):
    assert _norm(g["L_module"]) > 0 and _norm(g["H_module"]) > 0 and _norm(g["lm_head"]) > 0


def test_bp_2_gradient_of_h_comes_from_the_last_h_call_only(grad_programs):
  """At bp 2 only L5 and H1 carry gradient: the H stack's gradient equals that of
  head(H(z_H, z_L)) with z_H (after H0) and z_L (after L5) held constant."""
  from hrm_jax.model.rope import rotary_tables  # pylint: disable=import-outside-toplevel
  graphdef, params, rest = grad_programs.graphdef, grad_programs.params, grad_programs.rest
  tok = grad_programs.tokens
  seg = Segments.single(tok)
  objective = grad_programs.objective
  got = grad_programs.grads(2)

  @jax.jit  # one program rather than every primitive dispatched on its own
  def reference(params):
    cos, sin = rotary_tables(seg.positions, TINY.head_dim, TINY.rope_theta)
    mask = attention_mask(seg, TINY.attention)
    m = nnx.merge(graphdef, params, rest)
    z_H = m.embed_tokens(tok) * TINY.input_scale
    z_L = jnp.broadcast_to(m.z_L_init[...], z_H.shape)
    for i in range(2):
      for _ in range(3):
        z_L = m.L_module(z_L, z_H, cos, sin, mask)
      if i == 0:
        z_H = m.H_module(z_H, z_L, cos, sin, mask)
    z_H, z_L = jax.lax.stop_gradient((z_H, z_L))

    def last_call(p):
      mm = nnx.merge(graphdef, p, rest)
      return objective(mm.lm_head(mm.H_module(z_H, z_L, cos, sin, mask)))

    return jax.grad(last_call)(params)

  want = reference(params)
  chex.assert_trees_all_close(got["H_module"],
                              nnx.to_pure_dict(want)["H_module"], rtol=1e-4, atol=1e-5)
  chex.assert_trees_all_close(got["lm_head"],
                              nnx.to_pure_dict(want)["lm_head"], rtol=1e-4, atol=1e-5)


def test_z_L_init_is_a_fixed_buffer_not_a_parameter(model):
  params = nnx.to_pure_dict(nnx.state(model, nnx.Param))
  assert "z_L_init" not in params
  buffer = nnx.state(model, Buffer)["z_L_init"][...]
  assert buffer.shape == (TINY.hidden_size,) and 0.5 < float(jnp.std(buffer)) < 1.5


def test_peak_memory_grows_with_bp_steps(grad_programs):
  temp = []
  for bp in (2, 3, 5, 8):  # the gradient of [4, 64] tokens' logits
    temp.append(grad_programs.compiled(bp).memory_analysis().temp_size_in_bytes)
  assert temp == sorted(temp) and temp[-1] > 1.5 * temp[0], temp


class ShapesTest(chex.TestCase):

  @chex.variants(with_jit=True, without_jit=True)
  def test_logits_shape_and_dtype(self):
    for dtype in ("float32", "bfloat16"):
      model = make_model(TINY.replace(compute_dtype=dtype))
      graphdef, state = nnx.split(model)
      fn = self.variant(lambda s, t, gd=graphdef: nnx.merge(gd, s)(t))
      logits = fn(state, tokens(3, 10))
      chex.assert_shape(logits, (3, 10, TINY.vocab_size))
      chex.assert_type(logits, jnp.float32)
      chex.assert_tree_all_finite(logits)


def test_bad_inputs_name_the_problem(model):
  with pytest.raises(ValueError, match="tokens must be"):
    model(jnp.zeros((5,), jnp.int32))
  with pytest.raises(ValueError, match="exceeds max_position_embeddings"):
    model(jnp.zeros((1, 65), jnp.int32))
  s = Segments.single(jnp.zeros((1, 4), jnp.int32))
  with pytest.raises(ValueError, match=r"segments\.\w+ has shape \(1, 4\), tokens \(1, 5\)"):
    model(jnp.zeros((1, 5), jnp.int32), s)
  with pytest.raises(ValueError, match="architecture"):
    TINY.replace(architecture="rnn")


@pytest.mark.parametrize("arch", ["transformer", "ut", "trm"])
def test_baselines_share_the_interface_and_match_flops(arch):
  config = matched_flops(TINY, arch)
  model = make_model(config)
  logits = forward(model, tokens(), bp_steps=None)
  assert logits.shape == (2, 12, TINY.vocab_size)
  assert flops.forward_flops(config, 512) == pytest.approx(flops.forward_flops(TINY, 512))
  count = sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
  assert count == flops.parameter_count(config)
  if arch == "trm":  # one stack plays both roles
    assert model.H_module is model.L_module


def test_parameter_count_and_flops():
  count = sum(x.size for x in jax.tree.leaves(nnx.state(make_model(), nnx.Param)))
  assert count == flops.parameter_count(TINY)
  from hrm_jax.model import preset  # pylint: disable=import-outside-toplevel
  assert 1.17e9 < flops.parameter_count(preset("XL")) < 1.19e9  # the released 1B
  # training costs forward + 2× forward over the window: bp 8 is 3× forward
  assert flops.train_flops(TINY, 64, 8) == pytest.approx(3 * flops.forward_flops(TINY, 64))
  assert flops.train_flops(TINY, 64, 2) < flops.train_flops(TINY, 64, 5)


def test_unrolled_scans_compute_the_same_model():
  config = TINY.replace(H_cycles=3, L_cycles=2)
  scanned, unrolled = make_model(config), make_model(config.replace(scan_unroll=True))
  t = tokens()
  for bp in (2, 5, None):
    np.testing.assert_allclose(forward(unrolled, t, bp_steps=bp), forward(scanned, t, bp_steps=bp),
                               atol=1e-5)
  ut = config.replace(architecture="ut", num_loops=3)
  np.testing.assert_allclose(forward(make_model(ut.replace(scan_unroll=True)), t),
                             forward(make_model(ut), t), atol=1e-5)
