"""The environment-only step rate: a batched environment stepped with random actions in one
jitted scan. It is the ceiling of any trainer on that environment (benchmarks, preflight)."""

from __future__ import annotations

import time

import jax

from reflex_jax.envs.base import Env


def step_rate(env: Env, num_envs: int, steps: int) -> float:
  """Env steps per second of `env` (batched over `num_envs`) for `steps` scan steps,
  compilation excluded."""

  @jax.jit
  def rollout(state, key):
    def body(s, k):
      action = jax.random.uniform(k, (num_envs, env.action_size), minval=-1.0, maxval=1.0)
      s = env.step(s, action)
      return s, s.reward
    state, rewards = jax.lax.scan(body, state, jax.random.split(key, steps))
    return state, rewards.sum()

  # Committed to a device like the rollout's own outputs, so the timed call reuses the
  # warm-up's program instead of compiling a second one.
  state = jax.device_put(jax.jit(env.reset)(jax.random.key(0)), jax.devices()[0])
  state, _ = jax.block_until_ready(rollout(state, jax.random.key(1)))
  t0 = time.perf_counter()
  jax.block_until_ready(rollout(state, jax.random.key(2)))
  return num_envs * steps / (time.perf_counter() - t0)
