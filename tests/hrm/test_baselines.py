"""The authors' baselines (hrm_jax/model/baselines.py): structure, the gradient window against
hand-written compositions of stack calls that follow the authors' code, FLOPs per token, the
training configs in experiments/hrm/baselines/; and matched_flops, our own sizing, unchanged."""

import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from conftest import TINY, make_model, tokens
from flax import nnx

from hrm_jax.model import (AUTHORS_BASELINES, AUTHORS_BP_STEPS, Buffer, ModelConfig, Segments,
                           attention_mask, authors_baseline, build, flops, matched_flops,
                           preset)
from hrm_jax.model.rope import rotary_tables
from hrm_jax.train.config import config_changes, load_config, model_config

EXPERIMENTS = pathlib.Path(__file__).resolve().parents[2] / "experiments" / "hrm"
# Small programs compiled once each: LLVM's expensive passes cost more than they save here.
FAST = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}

# name: (architecture, blocks per call in units of n = HRM's blocks per stack, calls per
# token, distinct stacks, starts from z_L_init)
STRUCTURE = {
    "hrm": ("hrm", 1, 8, 2, True),
    "transformer": ("transformer", 2, 1, 1, False),
    "ut": ("ut", 2, 4, 1, True),
    "trm": ("trm", 2, 4, 1, True),
    "trm_match_recurrence": ("trm", 1, 8, 1, True),
    "rins": ("rins", 1, 8, 2, True),
}


# --- the authors' compositions, written from their code with their constants ----------------
# `call(stack, z, u, grad)` is stack(z, u) (u None: no input injection), its output cut from
# the gradient when `grad` is False, as a call under the authors' torch.no_grad.

def transformer_reference(m, x, z_L_init, call):
  """transformer_wrapper.py: Transformer(x), one pass of all n_layers."""
  del z_L_init
  return call(m.stack, x, None, True)


def ut_reference(cycles, bp_cycles):
  """ut_nocarry.py: z = zL_init; `cycles` × z = L(z + x), the last `bp_cycles` with
  gradient."""

  def reference(m, x, z_L_init, call):
    z = z_L_init
    for i in range(cycles):
      z = call(m.stack, z, x, i >= cycles - bp_cycles)
    return z

  return reference


def trm_reference(h_cycles, l_cycles, h_bp, l_bp):
  """trm_nocarry.py: HRM's loop with the one block L_level in both roles; L call k with
  gradient iff k ≥ H·L − L_bp, H call i iff i ≥ H − H_bp."""

  def reference(m, x, z_L_init, call):
    z_H, z_L = x, z_L_init
    for i in range(h_cycles):
      for k in range(i * l_cycles, (i + 1) * l_cycles):
        z_L = call(m.L_module, z_L, z_H, k >= h_cycles * l_cycles - l_bp)
      z_H = call(m.L_module, z_H, z_L, i >= h_cycles - h_bp)
    return z_H

  return reference


def rins_reference(l_cycles, l_bp_cycles):
  """rins_nocarry.py: z_L = zL_init; `l_cycles` × z_L = L(z_L + x), the last `l_bp_cycles`
  with gradient; then H(z_L) with no input injection, with gradient."""

  def reference(m, x, z_L_init, call):
    z_L = z_L_init
    for i in range(l_cycles):
      z_L = call(m.L_module, z_L, x, i >= l_cycles - l_bp_cycles)
    return call(m.H_module, z_L, None, True)

  return reference


# At the authors' constants (config/arch/net/*.yaml) but RINS's: its gradient is compared on
# 3 L calls, the last 2 with gradient (bp_steps 3), at half the compile time of the authors'
# 7 and 4 (test_windows_are_the_authors_split checks that those give num_loops 7, bp 5).
REFERENCES = {
    "transformer": transformer_reference,
    "ut": ut_reference(4, 2),  # cycles 4, bp_cycles 2
    "trm": trm_reference(2, 1, 1, 1),  # H_cycles 2, L_cycles 1, H_bp_steps 1, L_bp_steps 1
    # trm_match_recurrence.yaml is trm_reference(2, 3, 2, 3): HrmText's code path as TRM's,
    # with HRM's cycles; its structure and bp split are checked, its computation is not.
    "rins": rins_reference(3, 2),
}
SMALLER = {"rins": ({"num_loops": 3}, 3)}  # (config changes, bp_steps)


def _logits(m, z):
  return m.lm_head(z.reshape(-1, z.shape[-1])).reshape(*z.shape[:2], -1)


def _reference_loss(m, tok, reference, objective):
  c = m.config
  seg = Segments.single(tok)
  cos, sin = rotary_tables(seg.positions, c.head_dim, c.rope_theta)
  mask = attention_mask(seg, c.attention)
  x = m.embed_tokens(tok) * c.input_scale
  z_L_init = (jnp.broadcast_to(m.z_L_init[...], x.shape) if hasattr(m, "z_L_init")
              else jnp.zeros_like(x))

  def call(stack, z, u, grad):
    out = stack(z, u, cos, sin, mask)
    return out if grad else jax.lax.stop_gradient(out)

  return objective(_logits(m, reference(m, x, z_L_init, call)))


# The baselines whose window runs through Looped/Rins get their gradient compared (one
# compiled program each); TRM's window is HrmText's `gradient_calls` (its gradient is
# compared in test_model.py), checked against the authors' bp split below, and the
# transformer's one call always has gradient: for those the forward pass is compared.
GRADIENT_CHECKED = ("ut", "rins")


@pytest.mark.parametrize("name", [name for name in AUTHORS_BASELINES if name != "hrm"])
def test_structure_and_computation_follow_the_authors_code(name):
  config = authors_baseline(TINY, name)
  arch, depth, calls, stacks, from_z_L_init = STRUCTURE[name]
  model = make_model(config)
  n = TINY.num_layers_per_stack
  assert config.architecture == arch and model.num_cached_calls == calls == config.num_calls
  blocks = [getattr(model, a) for a in ("stack", "L_module", "H_module") if hasattr(model, a)]
  assert {s.num_layers for s in blocks} == {depth * n}
  assert len({id(s) for s in blocks}) == stacks  # TRM: H_module is L_module
  assert len(jax.tree.leaves(nnx.state(model, Buffer))) == from_z_L_init

  if name not in REFERENCES:
    return
  bp, reference = AUTHORS_BP_STEPS[name], REFERENCES[name]
  if name in SMALLER:
    changes, bp = SMALLER[name]
    model = make_model(config.replace(**changes))
  graphdef, params, rest = nnx.split(model, nnx.Param, ...)
  tok = tokens(2, 12)
  ours = lambda q: objective(nnx.merge(graphdef, q, rest)(tok, bp_steps=bp))
  theirs = lambda q: _reference_loss(nnx.merge(graphdef, q, rest), tok, reference, objective)
  if name not in GRADIENT_CHECKED:
    objective = lambda logits: logits
    both = jax.jit(lambda p: (ours(p), theirs(p))).lower(params).compile(compiler_options=FAST)
    got, want = both(params)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    return
  objective = lambda logits: jnp.sum(jnp.sin(logits))
  both = jax.jit(lambda p: (jax.value_and_grad(ours)(p), jax.value_and_grad(theirs)(p)))
  (loss, grads), (want_loss, want_grads) = both.lower(params).compile(
      compiler_options=FAST)(params)
  np.testing.assert_allclose(loss, want_loss, rtol=1e-5)
  grads, want_grads = nnx.to_pure_dict(grads), nnx.to_pure_dict(want_grads)
  # float32 rounding at each leaf's own scale: an entry near 0 is a sum of terms as large as
  # the leaf's largest (~30 here, whose spacing is ~2e-6), so a fixed atol would test luck.
  for got, want in zip(jax.tree.leaves(grads), jax.tree.leaves(want_grads)):
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-6 * float(np.abs(want).max()))
  for group, g in grads.items():  # every parameter group learns
    assert float(sum(jnp.sum(jnp.square(x)) for x in jax.tree.leaves(g))) > 0, group


@pytest.mark.parametrize("name,h_cycles,l_cycles,h_bp,l_bp", [
    ("trm", 2, 1, 1, 1), ("trm_match_recurrence", 2, 3, 2, 3)])
def test_trm_window_is_the_authors_bp_split(name, h_cycles, l_cycles, h_bp, l_bp):
  """trm_nocarry.py: L call k has gradient iff k ≥ H·L − L_bp, H call i iff i ≥ H − H_bp;
  HrmText runs the window `gradient_calls` gives at the fixed bp_steps."""
  config = authors_baseline(TINY, name)
  assert (config.H_cycles, config.L_cycles) == (h_cycles, l_cycles)
  flags = config.gradient_calls(AUTHORS_BP_STEPS[name])  # call order: L calls, H, L calls, H
  l_flags = tuple(f for k, f in enumerate(flags) if k % (l_cycles + 1) != l_cycles)
  h_flags = flags[l_cycles::l_cycles + 1]
  assert l_flags == tuple(k >= h_cycles * l_cycles - l_bp for k in range(h_cycles * l_cycles))
  assert h_flags == tuple(i >= h_cycles - h_bp for i in range(h_cycles))
  # In TRM the embedding x reaches L1 and H1 only through L0 and H0, outside the window.
  assert flags == (False, False, True, True) or name != "trm"


def test_loop_windows_are_the_authors_split():
  """ut.yaml: cycles 4, bp_cycles 2 (the last loops); rins.yaml: L_cycles 7, L_bp_cycles 4
  and the H call, which always has gradient: our last bp_steps calls."""
  ut, rins = authors_baseline(TINY, "ut"), authors_baseline(TINY, "rins")
  assert (ut.num_loops, AUTHORS_BP_STEPS["ut"]) == (4, 2)
  assert (rins.num_loops, AUTHORS_BP_STEPS["rins"]) == (7, 4 + 1)
  assert ut.gradient_calls(2) == (False, False, True, True)
  assert rins.gradient_calls(5) == (False,) * 3 + (True,) * 5  # 7 L loops, then H


def test_authors_configurations_at_size_B():
  b = preset("B")
  assert b.num_layers_per_stack == 6  # the authors' B: n_layers 12, halved between H and L
  blocks = {}
  for name in AUTHORS_BASELINES:
    config = authors_baseline(b, name)
    arch, depth, calls, stacks, from_z_L_init = STRUCTURE[name]
    assert (config.architecture, config.num_layers_per_stack, config.num_calls,
            config.num_stacks) == (arch, 6 * depth, calls, stacks)
    assert (config.loop_init == "z_L_init") == (from_z_L_init and arch in ("ut", "rins"))
    abstract = nnx.eval_shape(lambda c=config: build(c, rngs=nnx.Rngs(0)))
    count = sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param)))
    assert count == flops.parameter_count(config)
    blocks[name] = config.num_stacks * config.num_layers_per_stack
  # HRM's 12 blocks in every baseline but the recurrence-matched TRM (its 6, shared)
  assert blocks == {**{name: 12 for name in AUTHORS_BASELINES}, "trm_match_recurrence": 6}
  with pytest.raises(ValueError, match="unknown baseline"):
    authors_baseline(b, "lstm")
  with pytest.raises(ValueError, match="from an HRM config"):
    authors_baseline(authors_baseline(b, "ut"), "ut")


# Blocks run per token at size B: (forward, inside the authors' gradient window; HRM's at the
# end of its warm-up, bp 5).
BLOCK_CALLS_B = {"hrm": (48, 30), "transformer": (12, 12), "ut": (48, 24), "trm": (48, 24),
                 "trm_match_recurrence": (48, 30), "rins": (48, 30)}


def test_flops_per_token_count_blocks_and_the_gradient_window():
  b, seq = preset("B"), 4096
  block = flops.layer_matmul_flops(b) + 4 * b.attention_width * (seq + 1) / 2
  head = 2 * b.hidden_size * b.vocab_size
  for name, (forward_blocks, window_blocks) in BLOCK_CALLS_B.items():
    config = authors_baseline(b, name)
    bp = AUTHORS_BP_STEPS[name] or 5
    assert flops.forward_flops(config, seq) == pytest.approx(forward_blocks * block + head)
    assert flops.train_flops(config, seq, bp) == pytest.approx(
        forward_blocks * block + head + 2 * (window_blocks * block + head)), name
  # a window reaches only calls that exist; a scheduled one is clamped to them (config.window)
  with pytest.raises(ValueError, match="bp_steps must be in"):
    flops.train_flops(authors_baseline(b, "transformer"), seq, 2)
  assert authors_baseline(b, "transformer").window(5) == 1
  assert (b.window(5), b.window(9)) == (5, 8)
  with pytest.raises(ValueError, match="bp_steps must be in"):
    flops.train_flops(authors_baseline(b, "rins"), seq, 9)


@pytest.mark.parametrize("name", AUTHORS_BASELINES)
def test_training_configs_load_and_build(name):
  hrm = load_config([str(EXPERIMENTS / "B.yaml")])
  path = EXPERIMENTS / ("B.yaml" if name == "hrm" else f"baselines/{name}.yaml")
  config = load_config([str(path)])
  model = model_config(config)
  assert model == authors_baseline(model_config(hrm), name)
  assert all(key.startswith(("model.", "schedule.bp_")) or key == "log.dir"
             for key in config_changes(hrm, config))
  s = config.schedule
  window = [model.window(s.bp_steps(k)) for k in (1, s.steps // 10, s.steps)]
  assert window == ([2, 3, 5] if name == "hrm" else [AUTHORS_BP_STEPS[name]] * 3)
  abstract = nnx.eval_shape(lambda: build(model, rngs=nnx.Rngs(config.seed)))
  assert sum(x.size for x in jax.tree.leaves(nnx.state(abstract, nnx.Param))) == \
      flops.parameter_count(model)


def test_every_baseline_config_file_is_an_authors_baseline():
  names = {p.stem for p in (EXPERIMENTS / "baselines").glob("*.yaml")}
  assert names == set(AUTHORS_BASELINES) - {"hrm"}  # HRM's own is experiments/hrm/B.yaml


def test_matched_flops_is_our_own_sizing_and_unchanged():
  assert matched_flops(TINY, "transformer") == TINY.replace(architecture="transformer",
                                                            num_layers_per_stack=16)
  assert matched_flops(TINY, "ut") == TINY.replace(architecture="ut", num_loops=8)
  assert matched_flops(TINY, "ut").loop_init == "zeros"
  assert matched_flops(TINY, "trm") == TINY.replace(architecture="trm")
  for arch in ("transformer", "ut", "trm"):
    config = matched_flops(TINY, arch)
    assert flops.forward_flops(config, 512) == pytest.approx(flops.forward_flops(TINY, 512))
    assert config != authors_baseline(TINY, arch)
  # the UT's loops start from zeros, no z_L_init, all with gradient by default
  model = make_model(matched_flops(TINY, "ut").replace(num_loops=3))
  assert not hasattr(model, "z_L_init")
  graphdef, state = nnx.split(model)
  tok = tokens(2, 12)

  def both(s):
    m = nnx.merge(graphdef, s)
    loops = lambda mm, x, z, call: call(mm.stack, call(mm.stack, call(mm.stack, z, x, True), x,
                                                       True), x, True)
    return m(tok), _reference_loss(m, tok, loops, lambda logits: logits)

  got, want = jax.jit(both).lower(state).compile(compiler_options=FAST)(state)
  np.testing.assert_allclose(got, want, atol=1e-5)


def test_loop_init_and_rins_window_are_checked():
  with pytest.raises(ValueError, match="loop_init"):
    TINY.replace(loop_init="ones")
  with pytest.raises(ValueError, match="'hrm' takes no loop_init"):
    ModelConfig(loop_init="z_L_init")
  rins = make_model(authors_baseline(TINY, "rins"))
  assert rins.gradient_free(5) == frozenset() and rins.gradient_free(None) == frozenset()
  assert rins.gradient_free(1) == {"embed_tokens", "L_module"}  # the H call alone
