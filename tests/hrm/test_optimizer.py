"""AdamATan2 against the spec's formula, its scale invariance, EMA and the schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hrm_jax.train.config import ScheduleConfig
from hrm_jax.train.optimizer import adam_atan2, ema_update, learning_rate_schedule


def reference(theta, grads, lr, b1=0.9, b2=0.95, wd=0.1):
  m = np.zeros_like(theta)
  v = np.zeros_like(theta)
  for t, g in enumerate(grads, start=1):
    m = b1 * m + (1 - b1) * g
    v = b2 * v + (1 - b2) * g * g
    theta = theta * (1 - lr * wd) - lr / (1 - b1**t) * np.arctan2(m, np.sqrt(v) / np.sqrt(1 - b2**t))
  return theta


def run(opt, theta, grads):
  params = {"w": jnp.asarray(theta)}
  state = opt.init(params)
  for g in grads:
    updates, state = opt.update({"w": jnp.asarray(g)}, state, params)
    params = optax.apply_updates(params, updates)
  return np.asarray(params["w"])


def test_matches_the_spec_formula():
  rng = np.random.RandomState(0)
  theta = rng.randn(5).astype(np.float32)
  grads = [rng.randn(5).astype(np.float32) for _ in range(6)]
  np.testing.assert_allclose(run(adam_atan2(0.01), theta, grads),
                             reference(theta.astype(np.float64), grads, 0.01), rtol=1e-5,
                             atol=1e-6)


def test_is_invariant_to_gradient_scale_and_has_no_epsilon():
  rng = np.random.RandomState(1)
  theta = rng.randn(4).astype(np.float32)
  grads = [rng.randn(4).astype(np.float32) * 1e-12 for _ in range(3)]  # far below any epsilon
  small = run(adam_atan2(0.01), theta, grads)
  large = run(adam_atan2(0.01), theta, [g * 1e15 for g in grads])
  np.testing.assert_allclose(small, large, rtol=1e-5)
  assert np.abs(small - theta * (1 - 0.001) ** 3).max() > 1e-3  # tiny gradients still move


def test_weight_decay_is_decoupled():
  theta = np.ones(3, np.float32)
  out = run(adam_atan2(0.1, weight_decay=0.5), theta, [np.zeros(3, np.float32)])
  np.testing.assert_allclose(out, theta * (1 - 0.05))  # atan2(0, 0) = 0: decay alone


def _authors_lr(k, peak, warmup, total, min_ratio):
  """The authors' update_lr, written out: update k = 1, 2, …"""
  if k < warmup:
    return peak * min(1.0, k / warmup)
  progress = (k - warmup) / (total - warmup)
  return peak * (min_ratio + max(0.0, (1 - min_ratio) * 0.5 * (1.0 + np.cos(np.pi * progress))))


def _authors_bp(k, total, ratio=0.2, low=2, high=5):
  """The authors' compute_train_extra_args (bp warm-up), written out."""
  warmup = total * ratio
  progress = min(1.0, k / warmup) if warmup > 0 else 1.0
  return low + int(progress * (high - low))


def test_learning_rate_follows_the_authors_formula():
  constant = learning_rate_schedule(1.0, 10, 100)
  cosine = learning_rate_schedule(1.0, 10, 110, kind="cosine", min_ratio=0.1)
  no_warmup = learning_rate_schedule(3e-5, 0, 50, kind="cosine", min_ratio=0.1)  # their SFT
  for k in range(1, 111):
    assert float(constant(k)) == pytest.approx(_authors_lr(k, 1.0, 10, 100, 1.0), rel=1e-6)
    assert float(cosine(k)) == pytest.approx(_authors_lr(k, 1.0, 10, 110, 0.1), rel=1e-5)
  for k in range(1, 51):
    assert float(no_warmup(k)) == pytest.approx(_authors_lr(k, 3e-5, 0, 50, 0.1), rel=1e-5)
  # The first update moves (lr = peak / warmup, not 0); cosine ends on its floor, not at 0.
  assert float(constant(1)) == pytest.approx(0.1)
  assert float(cosine(110)) == pytest.approx(0.1)
  with pytest.raises(ValueError, match="unknown learning-rate schedule"):
    learning_rate_schedule(1.0, 10, 100, kind="linear")


def test_ema():
  ema = ema_update({"a": jnp.zeros(2)}, {"a": jnp.ones(2)}, 0.9)
  np.testing.assert_allclose(ema["a"], 0.1)
  kept = ema_update({"a": jnp.zeros(2), "b": jnp.zeros(2)}, {"a": jnp.ones(2), "b": jnp.ones(2)},
                    0.9, skip={"a": True, "b": False})
  np.testing.assert_allclose(kept["a"], 0.0)
  np.testing.assert_allclose(kept["b"], 0.1)


def test_bp_steps_staircase_follows_the_authors_formula():
  total = 1000  # warm-up over the first 200 updates
  schedule = ScheduleConfig(steps=total)
  assert [schedule.bp_steps(k) for k in range(1, total + 1)] == \
      [_authors_bp(k, total) for k in range(1, total + 1)]
  # Update k uses k: the window widens at update 67 (2 + floor(3 · 67/200) = 3), not 68.
  assert [schedule.bp_steps(k) for k in (66, 67, 133, 134, 199, 200)] == [2, 3, 3, 4, 4, 5]
  assert ScheduleConfig(steps=total, bp_schedule="fixed").bp_steps(1) == 5
  for kind in ("ramp", "jump"):
    with pytest.raises(ValueError, match="unknown bp_steps schedule"):
      ScheduleConfig(steps=total, bp_schedule=kind).bp_steps(1)


def test_a_skipped_parameter_keeps_weights_moments_and_its_own_step_count():
  """The authors' AdamATan2 skips a parameter whose gradient is None: no decay, no moments,
  and its bias correction starts when its gradients start."""
  rng = np.random.RandomState(2)
  theta = {"a": rng.randn(4).astype(np.float32), "b": rng.randn(4).astype(np.float32)}
  grads = [{k: rng.randn(4).astype(np.float32) for k in theta} for _ in range(5)]
  opt = adam_atan2(0.01)
  params, state = jax.tree.map(jnp.asarray, theta), None
  state = opt.init(params)
  for i, g in enumerate(grads):
    skip = {"a": i < 3, "b": False}  # "a" is outside the window for the first 3 updates
    updates, state = opt.update(jax.tree.map(jnp.asarray, g), state, params, skip=skip)
    params = optax.apply_updates(params, updates)
    if i == 2:
      np.testing.assert_array_equal(params["a"], theta["a"])  # no weight decay either
      assert int(state.counts["a"]) == 0 and not np.any(state.mu["a"])
  assert int(state.count) == 5 and int(state.counts["a"]) == 2 and int(state.counts["b"]) == 5
  # "a" moved as a fresh parameter updated by its two gradients; "b" by all five.
  np.testing.assert_allclose(params["a"], reference(theta["a"].astype(np.float64),
                                                    [g["a"] for g in grads[3:]], 0.01),
                             rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(params["b"], reference(theta["b"].astype(np.float64),
                                                    [g["b"] for g in grads], 0.01),
                             rtol=1e-5, atol=1e-6)


def test_the_first_update_uses_the_first_warm_up_rate_and_jits():
  opt = adam_atan2(learning_rate_schedule(1.0, 10, 100), weight_decay=0.0)
  params = {"w": jnp.ones(3)}
  state = opt.init(params)
  updates, state = jax.jit(opt.update)({"w": jnp.ones(3)}, state, params)
  assert int(state.count) == 1
  # Update 1 runs at lr(1) = peak / warm-up = 0.1 (not 0): m = 0.1, √v / √(1 − β2) = 1.
  np.testing.assert_allclose(updates["w"], -0.1 / 0.1 * np.arctan2(0.1, 1.0), rtol=1e-6)
