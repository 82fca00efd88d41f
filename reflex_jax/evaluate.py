"""Policy evaluation on fresh episodes: one jitted scan over a full episode for a batch of envs."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from reflex_jax.envs import Env

# policy(obs_BO, key or None) -> action_BA; None asks for the deterministic (mode) action.
Policy = Callable[[jax.Array, jax.Array | None], jax.Array]


def evaluate(env: Env, policy: Policy, key: jax.Array, *, num_steps: int,
             deterministic: bool) -> dict[str, jax.Array]:
  """Runs `env` (batched, with a time limit, without auto-reset) for `num_steps` steps.

  Returns the mean and std over the batch of the first episode's return and length;
  rewards after an episode ends are not counted.
  """
  reset_key, act_key = jax.random.split(key)
  state = env.reset(reset_key)

  def step(carry, step_key):
    state, alive, total, length = carry
    action = policy(state.obs, None if deterministic else step_key)
    nxt = env.step(state, action)
    # where, not alive * reward: a finished episode's simulator may step into NaN.
    total = total + jnp.where(alive > 0, nxt.reward, 0.0)
    length = length + alive
    alive = alive * (1.0 - jnp.maximum(nxt.terminated, nxt.truncated))
    return (nxt, alive, total, length), None

  ones = jnp.ones_like(state.reward)
  (_, _, total, length), _ = jax.lax.scan(
      step, (state, ones, jnp.zeros_like(ones), jnp.zeros_like(ones)),
      jax.random.split(act_key, num_steps))
  return dict(eval_return=total.mean(), eval_return_std=total.std(), eval_length=length.mean())
