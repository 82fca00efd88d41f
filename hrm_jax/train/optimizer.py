"""AdamATan2, parameter EMA, learning-rate and bp_steps schedules (spec §2, §4).

AdamATan2 has no epsilon and is invariant to the scale of the gradients:
  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
  θ ← θ (1 − ηλ) − η / (1−β1^t) · atan2(m, √v / √(1−β2^t))
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax


class AdamATan2State(NamedTuple):
  count: jax.Array
  mu: optax.Updates
  nu: optax.Updates


def adam_atan2(learning_rate: float | optax.Schedule, b1: float = 0.9, b2: float = 0.95,
               weight_decay: float = 0.1) -> optax.GradientTransformation:
  """Updates to add to the parameters (decoupled weight decay on every parameter)."""
  if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
    raise ValueError(f"adam_atan2 needs 0 <= b1, b2 < 1, got b1={b1}, b2={b2}")

  def init(params):
    zeros = lambda: jax.tree.map(lambda p: jnp.zeros_like(p, jnp.float32), params)
    return AdamATan2State(jnp.zeros((), jnp.int32), zeros(), zeros())

  def update(grads, state, params=None):
    if params is None:
      raise ValueError("adam_atan2 needs params (for the decoupled weight decay)")
    count = state.count + 1
    t = count.astype(jnp.float32)
    lr = learning_rate(state.count) if callable(learning_rate) else learning_rate
    mu = jax.tree.map(lambda m, g: b1 * m + (1 - b1) * g.astype(jnp.float32), state.mu, grads)
    nu = jax.tree.map(lambda v, g: b2 * v + (1 - b2) * jnp.square(g.astype(jnp.float32)),
                      state.nu, grads)
    step_size = lr / (1 - b1**t)
    root_correction = jnp.sqrt(1 - b2**t)

    def delta(m, v, p):
      return (-step_size * jnp.arctan2(m, jnp.sqrt(v) / root_correction)
              - lr * weight_decay * p).astype(p.dtype)

    return jax.tree.map(delta, mu, nu, params), AdamATan2State(count, mu, nu)

  return optax.GradientTransformation(init, update)


def ema_update(ema, params, decay: float):
  """ema ← decay · ema + (1 − decay) · params (evaluation/export weights)."""
  return jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, ema, params)


def learning_rate_schedule(peak: float, warmup_steps: int, total_steps: int,
                           kind: str = "constant") -> optax.Schedule:
  """Linear warm-up to `peak`, then constant (the paper) or cosine to zero."""
  warmup = optax.linear_schedule(0.0, peak, max(warmup_steps, 1))
  if kind == "constant":
    after = optax.constant_schedule(peak)
  elif kind == "cosine":
    after = optax.cosine_decay_schedule(peak, max(total_steps - warmup_steps, 1))
  else:
    raise ValueError(f"unknown learning-rate schedule {kind!r}; choose 'constant' or 'cosine'")
  return optax.join_schedules([warmup, after], [warmup_steps])


def bp_steps_at(step: int, total_steps: int, kind: str = "staircase", *, start: int = 2,
                end: int = 5, warmup_fraction: float = 0.2) -> int:
  """The gradient window at `step` (a Python int: each value is its own compiled program).

  staircase: p = min(1, step / (0.2 T)); bp = 2 + floor(3p) → 2, 3, 4, 5 over the first 20 %.
  jump: 2 until 20 % of training, then 5 (the first public release). fixed: always `end`.
  """
  if kind == "fixed":
    return end
  warmup = warmup_fraction * total_steps
  if kind == "staircase":
    p = 1.0 if warmup <= 0 else min(1.0, step / warmup)
    return min(end, start + int((end - start) * p))
  if kind == "jump":
    return end if step >= warmup else start
  raise ValueError(f"unknown bp_steps schedule {kind!r}; choose staircase, jump or fixed")
