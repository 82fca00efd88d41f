"""AdamATan2, parameter EMA and the learning-rate schedule (spec §2, §4), with the semantics
of the authors' training code. The bp_steps schedule is ScheduleConfig.bp_steps (config.py).

AdamATan2 has no epsilon and is invariant to the scale of the gradients:
  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²
  θ ← θ (1 − ηλ) − η / (1−β1^t) · atan2(m, √v / √(1−β2^t))
t counts the updates of each parameter. A parameter that gets no gradient in a step (the
token embedding while the gradient window does not reach the first H call) is skipped
entirely, as the authors' optimizer skips a parameter whose `.grad` is None: no weight decay,
no moment or EMA update, and its own t does not advance. Which parameters those are is static
per bp_steps program (`skip`), so skipping costs nothing at run time.

Schedules take the update number k = 1, 2, … (the authors increment their step before using
it): update k uses the learning rate lr(k) and the gradient window bp_steps(k).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax


class AdamATan2State(NamedTuple):
  count: jax.Array  # int32 scalar: updates taken (the learning-rate schedule's clock)
  counts: optax.Updates  # int32 scalar per parameter: its own updates (bias correction)
  mu: optax.Updates
  nu: optax.Updates


def adam_atan2(learning_rate: float | optax.Schedule, b1: float = 0.9, b2: float = 0.95,
               weight_decay: float = 0.1) -> optax.GradientTransformationExtraArgs:
  """Updates to add to the parameters (decoupled weight decay on every updated parameter).

  `update(grads, state, params, skip=mask)`: `mask` is a pytree of Python bools matching
  params (or None): True leaves get a zero update and keep their state. A schedule is called
  with the update number k (1 for the first update)."""
  if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
    raise ValueError(f"adam_atan2 needs 0 <= b1, b2 < 1, got b1={b1}, b2={b2}")

  def init(params):
    zeros = lambda: jax.tree.map(lambda p: jnp.zeros_like(p, jnp.float32), params)
    return AdamATan2State(jnp.zeros((), jnp.int32),
                          jax.tree.map(lambda _: jnp.zeros((), jnp.int32), params), zeros(),
                          zeros())

  def update(grads, state, params=None, *, skip=None, **unused):
    del unused
    if params is None:
      raise ValueError("adam_atan2 needs params (for the decoupled weight decay)")
    count = state.count + 1
    lr = learning_rate(count) if callable(learning_rate) else learning_rate
    skip = jax.tree.map(lambda _: False, params) if skip is None else skip

    def one(g, m, v, n, p, skipped):
      if skipped:
        return jnp.zeros_like(p), m, v, n
      m = b1 * m + (1 - b1) * g.astype(jnp.float32)
      v = b2 * v + (1 - b2) * jnp.square(g.astype(jnp.float32))
      n = n + 1
      t = n.astype(jnp.float32)
      step_size = lr / (1 - b1**t)
      denominator = jnp.sqrt(v) / jnp.sqrt(1 - b2**t)
      delta = -step_size * jnp.arctan2(m, denominator) - lr * weight_decay * p
      return delta.astype(p.dtype), m, v, n

    leaves, treedef = jax.tree.flatten(params)
    flat = lambda tree: treedef.flatten_up_to(tree)
    out = [one(*args) for args in zip(flat(grads), flat(state.mu), flat(state.nu),
                                      flat(state.counts), leaves, flat(skip))]
    delta, mu, nu, counts = (treedef.unflatten(column) for column in zip(*out))
    return delta, AdamATan2State(count, counts, mu, nu)

  return optax.GradientTransformationExtraArgs(init, update)


def ema_update(ema, params, decay: float, skip: Any = None):
  """ema ← decay · ema + (1 − decay) · params (evaluation/export weights); `skip` leaves (a
  pytree of Python bools, as for adam_atan2) keep their EMA, as their parameters did not move."""
  if skip is None:
    return jax.tree.map(lambda e, p: decay * e + (1 - decay) * p, ema, params)
  return jax.tree.map(lambda e, p, s: e if s else decay * e + (1 - decay) * p, ema, params,
                      skip)


SCHEDULES = ("constant", "cosine")


def learning_rate_schedule(peak: float, warmup_steps: int, total_steps: int,
                           kind: str = "constant", min_ratio: float = 0.1) -> optax.Schedule:
  """lr(k) for update k = 1, 2, …, the authors' formula: peak · k / warmup while k < warmup;
  then constant (the paper's pre-training), or cosine from peak at k = warmup down to
  min_ratio · peak at k = total_steps (their fine-tuning: min_ratio 0.1).

  The authors express both as one cosine with lr_min_ratio (1.0: constant)."""
  if kind not in SCHEDULES:
    raise ValueError(f"unknown learning-rate schedule {kind!r}; choose one of {SCHEDULES}")
  floor = 1.0 if kind == "constant" else min_ratio
  decay_steps = max(total_steps - warmup_steps, 1)

  def schedule(k):
    k = jnp.asarray(k, jnp.float32)
    warming = peak * k / max(warmup_steps, 1)
    progress = jnp.clip((k - warmup_steps) / decay_steps, 0.0, 1.0)
    after = peak * (floor + (1 - floor) * 0.5 * (1 + jnp.cos(math.pi * progress)))
    return jnp.where(k < warmup_steps, warming, after)

  return schedule
