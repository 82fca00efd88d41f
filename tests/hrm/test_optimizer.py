"""AdamATan2 against the spec's formula, its scale invariance, EMA and the schedules."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from hrm_jax.train.optimizer import adam_atan2, bp_steps_at, ema_update, learning_rate_schedule


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


def test_schedule_and_ema():
  lr = learning_rate_schedule(1.0, 10, 100)
  assert float(lr(0)) == 0.0 and float(lr(5)) == pytest.approx(0.5) and float(lr(50)) == 1.0
  cos = learning_rate_schedule(1.0, 10, 110, kind="cosine")
  assert float(cos(10)) == pytest.approx(1.0) and float(cos(110)) == pytest.approx(0.0, abs=1e-6)
  ema = ema_update({"a": jnp.zeros(2)}, {"a": jnp.ones(2)}, 0.9)
  np.testing.assert_allclose(ema["a"], 0.1)
  with pytest.raises(ValueError, match="unknown learning-rate schedule"):
    learning_rate_schedule(1.0, 10, 100, kind="linear")


def test_bp_steps_staircase_and_jump():
  total = 1000  # warm-up over the first 200 steps
  assert [bp_steps_at(s, total) for s in (0, 66, 67, 133, 134, 199, 200, 900)] == \
      [2, 2, 3, 3, 4, 4, 5, 5]
  assert [bp_steps_at(s, total, "jump") for s in (0, 199, 200)] == [2, 2, 5]
  assert bp_steps_at(0, total, "fixed") == 5
  with pytest.raises(ValueError, match="unknown bp_steps schedule"):
    bp_steps_at(0, total, "ramp")


def test_jits():
  opt = adam_atan2(learning_rate_schedule(1e-3, 10, 100))
  params = {"w": jnp.ones(3)}
  state = opt.init(params)
  updates, state = jax.jit(opt.update)({"w": jnp.ones(3)}, state, params)
  assert int(state.count) == 1 and updates["w"].shape == (3,)
