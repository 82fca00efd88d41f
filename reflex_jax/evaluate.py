"""Policy evaluation on fresh episodes: one jitted scan over a full episode for a batch of envs."""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from reflex_jax.envs import Env
from reflex_jax.envs.base import match_dtypes

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

  def running(carry):
    t, _, alive, _, _ = carry
    return (t < num_steps) & (alive.max() > 0)  # stop once every episode has ended

  def step(carry):
    t, state, alive, total, length = carry
    step_key = jax.random.fold_in(act_key, t)
    action = policy(state.obs, None if deterministic else step_key)
    nxt = env.step(state, action)
    # where, not alive * reward: a finished episode's simulator may step into NaN.
    total = total + jnp.where(alive > 0, nxt.reward, 0.0)
    length = length + alive
    # Finished envs keep their last live state: stepping a diverged simulator is slow
    # (MJX's solver runs to its iteration cap on NaN) and its values are never used.
    keep = lambda new, old: jnp.where(
        jnp.reshape(alive > 0, alive.shape + (1,) * (new.ndim - alive.ndim)), new, old)
    nxt = match_dtypes(jax.tree.map(keep, nxt, state), state)
    alive = alive * (1.0 - jnp.maximum(nxt.terminated, nxt.truncated))
    return t + 1, nxt, alive, total, length

  ones = jnp.ones_like(state.reward)
  state = jax.tree.map(jnp.asarray, state)
  _, _, _, total, length = jax.lax.while_loop(
      running, step, (jnp.zeros((), jnp.int32), state, ones, jnp.zeros_like(ones),
                      jnp.zeros_like(ones)))
  return dict(eval_return=total.mean(), eval_return_std=total.std(), eval_length=length.mean())
