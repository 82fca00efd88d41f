"""Time limit, auto-reset and batching on top of any `Env`, as pure functions."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from reflex_jax.envs.base import Env, Wrapper, all_finite

EPISODE_METRICS = ("episode_return", "episode_length", "completed_return",
                   "completed_length", "completed")


class NonFiniteMask(Wrapper):
  """Masks simulator blow-ups: a step whose observation, reward or physics state is NaN/inf
  returns the last finite state instead, with reward 0 and terminated set, so the episode
  ends there (and auto-reset starts a new one) rather than poisoning the learner.
  metrics["masked"] is 1.0 on such a step. Opt-in: it hides divergence, which the
  trainers' non-finite guard would otherwise report.
  """

  def reset(self, key):
    state = self.env.reset(key)
    return state.replace(metrics=dict(state.metrics, masked=jnp.zeros_like(state.reward)))

  def step(self, state, action):
    nxt = self.env.step(state, action)
    finite = all_finite((nxt.native, nxt.obs, nxt.reward))
    masked = state.replace(reward=jnp.zeros_like(state.reward),
                           terminated=jnp.ones_like(state.terminated))
    out = jax.tree.map(lambda good, bad: jnp.where(finite, good, bad), nxt, masked)
    return out.replace(metrics=dict(out.metrics, masked=1.0 - finite.astype(state.reward.dtype)))


class EpisodeWrapper(Wrapper):
  """Repeats each action `action_repeat` times and truncates after `episode_length` steps.

  metrics: running episode_return / episode_length, and completed_return /
  completed_length / completed (1.0 on the step an episode ends) for logging.
  """

  def __init__(self, env: Env, episode_length: int, action_repeat: int = 1):
    super().__init__(env)
    if episode_length < 1 or action_repeat < 1:
      raise ValueError(f"episode_length ({episode_length}) and action_repeat ({action_repeat}) "
                       "must be positive")
    self.episode_length, self.action_repeat = episode_length, action_repeat

  def reset(self, key):
    state = self.env.reset(key)
    zero = jnp.zeros_like(state.reward)
    return state.replace(metrics={k: zero for k in EPISODE_METRICS} | _passed_on(state))

  def step(self, state, action):
    def repeat(s, _):
      # Once terminated, further repeats would step a dead episode: keep the terminal state.
      nxt = self.env.step(s, action)
      nxt = jax.tree.map(lambda a, b: jnp.where(s.terminated > 0, a, b), s, nxt)
      return nxt, nxt.reward * (1.0 - s.terminated)

    state = state.replace(terminated=jnp.zeros_like(state.terminated))  # a new step begins
    if self.action_repeat == 1:  # no per-step select over the whole simulator state
      nxt = self.env.step(state, action)
      reward = nxt.reward
    else:
      nxt, rewards = jax.lax.scan(repeat, state, None, length=self.action_repeat)
      reward = rewards.sum(axis=0)
    m = state.metrics
    length = m["episode_length"] + 1
    ret = m["episode_return"] + reward
    truncated = jnp.where(nxt.terminated > 0, 0.0, (length >= self.episode_length) * 1.0)
    done = jnp.maximum(nxt.terminated, truncated)
    metrics = dict(episode_return=ret, episode_length=length,
                   completed_return=jnp.where(done > 0, ret, m["completed_return"]),
                   completed_length=jnp.where(done > 0, length, m["completed_length"]),
                   completed=done) | _passed_on(nxt)
    return nxt.replace(reward=reward, truncated=truncated.astype(reward.dtype), metrics=metrics)


def _passed_on(state) -> dict:
  """Inner metrics kept by EpisodeWrapper (the simulator's own are dropped)."""
  return {k: state.metrics[k] for k in ("masked",) if k in state.metrics}


class AutoResetWrapper(Wrapper):
  """When an episode ends, the next step starts from this environment's first state.

  This is brax.training's convention: cheap (no reset inside the hot loop), at the price
  of reusing one initial state per environment slot. The returned state keeps the final
  reward/terminated/truncated and carries the final observation in metrics["final_obs"]
  so a trainer can bootstrap truncated episodes correctly.
  """

  def reset(self, key):
    state = self.env.reset(key)
    metrics = dict(state.metrics, final_obs=state.obs)
    return state.replace(metrics=metrics, native=(state.native, state.native))

  def step(self, state, action):
    native, first = state.native
    nxt = self.env.step(state.replace(native=native, metrics=_episode_only(state.metrics)),
                        action)
    done = jnp.maximum(nxt.terminated, nxt.truncated) > 0
    pick = lambda reset_value, value: jnp.where(
        jnp.reshape(done, done.shape + (1,) * (value.ndim - done.ndim)), reset_value, value)
    restarted_native = jax.tree.map(pick, first, nxt.native)
    restarted_obs = pick(self.env.native_observation(first), nxt.obs)
    metrics = dict(nxt.metrics, final_obs=nxt.obs)
    for k in ("episode_return", "episode_length"):
      metrics[k] = jnp.where(done, 0.0, metrics[k])
    return nxt.replace(native=(restarted_native, first), obs=restarted_obs, metrics=metrics)


def _episode_only(metrics):
  return {k: v for k, v in metrics.items() if k != "final_obs"}


class BatchWrapper(Wrapper):
  """`num_envs` copies stepped in lock-step with vmap; reset takes one key."""

  def __init__(self, env: Env, num_envs: int):
    super().__init__(env)
    if num_envs < 1:
      raise ValueError(f"num_envs must be positive, got {num_envs}")
    self.num_envs = num_envs

  def reset(self, key):
    return jax.vmap(self.env.reset)(jax.random.split(key, self.num_envs))

  def step(self, state, action):
    if action.shape != (self.num_envs, self.action_size):
      raise ValueError(f"{self.env_id}: expected actions of shape "
                       f"{(self.num_envs, self.action_size)}, got {tuple(action.shape)}")
    return jax.vmap(self.env.step)(state, action)
