"""Environments by id: ``brax/<name>``, ``playground/<Name>`` and the pure-JAX ``toy/<name>``.

    env = reflex_jax.envs.make("brax/ant", num_envs=128)
    state = env.reset(jax.random.key(0))            # batched EnvState
    state = env.step(state, actions)                 # actions: (128, env.action_size)
"""

from __future__ import annotations

import copy

from reflex_jax.envs.base import Env, EnvState, SimulatorEnv, Wrapper
from reflex_jax.envs.rate import step_rate
from reflex_jax.envs.wrappers import AutoResetWrapper, BatchWrapper, EpisodeWrapper, NonFiniteMask
from reflex_jax.symmetry import asymmetry, registry


class UnknownEnvironmentError(registry.UnknownEnvironmentError):
  """An environment id no library provides."""


def known_env_ids() -> list[str]:
  """Every id `make` accepts (brax tasks, Playground tasks, the pure-JAX toy tasks)."""
  from reflex_jax.envs import brax, playground, toy  # pylint: disable=import-outside-toplevel
  return ([f"brax/{n}" for n in brax.available()]
          + [f"playground/{n}" for n in playground.available()]
          + [f"toy/{n}" for n in toy.available()])


def make_simulator(env_id: str, *, backend: str | None = None, impl: str | None = None,
                   equalize_asymmetries: bool = False) -> SimulatorEnv:
  """The bare single environment (no time limit, no auto-reset, no batching).

  backend: brax physics backend (brax ids only); impl: MJX implementation (playground only).
  equalize_asymmetries: apply the known model fixes that make the task's reflection exact.
  """
  from reflex_jax.envs import brax, playground, toy  # pylint: disable=import-outside-toplevel
  library, _, name = env_id.partition("/")
  if library == "toy" and name in toy.available():
    if backend is not None or impl is not None:
      raise ValueError("toy tasks are pure JAX: they take neither backend= nor impl=")
    env = toy.ToyEnv(name)
  elif library == "brax" and name in brax.available():
    if impl is not None:
      raise ValueError(f"impl={impl!r} applies to playground tasks; brax tasks take backend=")
    env = brax.BraxEnv(name, backend=backend)
  elif library == "playground" and name in playground.available():
    if backend is not None:
      raise ValueError(f"backend={backend!r} applies to brax tasks; playground tasks take impl=")
    env = playground.PlaygroundEnv(name, impl=impl)
  else:
    raise UnknownEnvironmentError(
        f"unknown environment {env_id!r}; known environments: " + ", ".join(known_env_ids()))
  if equalize_asymmetries and env_id in asymmetry.FIXES:
    model = copy.copy(env.mj_model)
    asymmetry.equalize(env_id, model, registry.get(env_id).plane)
    env.push_model(model)
  return env


def make(env_id: str, *, num_envs: int | None = None, episode_length: int | None = None,
         action_repeat: int | None = None, auto_reset: bool = True, **simulator_kwargs) -> Env:
  """A training environment: time limit, optional auto-reset, batched if num_envs is given.

  episode_length / action_repeat default to the task's own settings (Playground) or 1000 / 1.
  """
  return wrap(make_simulator(env_id, **simulator_kwargs), num_envs=num_envs,
              episode_length=episode_length, action_repeat=action_repeat, auto_reset=auto_reset)


def wrap(env: Env, *, num_envs: int | None = None, episode_length: int | None = None,
         action_repeat: int | None = None, auto_reset: bool = True,
         mask_nonfinite: bool = False) -> Env:
  """Adds the time limit, optional auto-reset and batching to a single environment;
  mask_nonfinite ends an episode at a NaN/inf simulator step instead (`NonFiniteMask`)."""
  if isinstance(env, (EpisodeWrapper, AutoResetWrapper, BatchWrapper, NonFiniteMask)):
    raise TypeError(f"{env.env_id} is already wrapped ({type(env).__name__}); "
                    "pass the single simulator environment")
  if mask_nonfinite:
    env = NonFiniteMask(env)
  env = EpisodeWrapper(env, episode_length or getattr(env, "episode_length", 1000),
                       action_repeat or getattr(env, "action_repeat", 1))
  if auto_reset:
    env = AutoResetWrapper(env)
  if num_envs is not None:
    env = BatchWrapper(env, num_envs)
  return env


__all__ = ["AutoResetWrapper", "BatchWrapper", "Env", "EnvState", "EpisodeWrapper", "NonFiniteMask",
           "SimulatorEnv", "UnknownEnvironmentError", "Wrapper", "known_env_ids", "make",
           "make_simulator", "step_rate", "wrap"]
