"""Environments by id: ``brax/<name>``, ``playground/<Name>`` and the pure-JAX ``toy/<name>``.

    env = reflex_jax.envs.make("brax/ant", num_envs=128)
    state = env.reset(jax.random.key(0))            # batched EnvState
    state = env.step(state, actions)                 # actions: (128, env.action_size)
"""

from __future__ import annotations

import copy
import importlib

from reflex_jax.envs.base import Env, EnvState, SimulatorEnv, Wrapper
from reflex_jax.envs.rate import step_rate
from reflex_jax.envs.wrappers import AutoResetWrapper, BatchWrapper, EpisodeWrapper, NonFiniteMask
from reflex_jax.symmetry import asymmetry, registry


class UnknownEnvironmentError(registry.UnknownEnvironmentError):
  """An environment id no library provides."""


# Each library of tasks: id prefix -> its adapter module, imported only when named (importing
# MJX and Playground takes seconds).
LIBRARIES = {"brax": "reflex_jax.envs.brax", "playground": "reflex_jax.envs.playground",
             "toy": "reflex_jax.envs.toy"}


def _library(prefix: str):
  return importlib.import_module(LIBRARIES[prefix]) if prefix in LIBRARIES else None


def known_env_ids() -> list[str]:
  """Every id `make` accepts (brax tasks, Playground tasks, the pure-JAX toy tasks)."""
  return [f"{prefix}/{name}" for prefix in LIBRARIES for name in _library(prefix).available()]


def is_known(env_id: str) -> bool:
  """Whether `make` accepts `env_id` (imports only the library the id names)."""
  prefix, _, name = env_id.partition("/")
  library = _library(prefix)
  return library is not None and name in library.available()


def make_simulator(env_id: str, *, backend: str | None = None, impl: str | None = None,
                   equalize_asymmetries: bool = False) -> SimulatorEnv:
  """The bare single environment (no time limit, no auto-reset, no batching).

  backend: brax physics backend (brax ids only); impl: MJX implementation (playground only).
  equalize_asymmetries: apply the known model fixes that make the task's reflection exact.
  """
  if not is_known(env_id):
    raise UnknownEnvironmentError(
        f"unknown environment {env_id!r}; known environments: " + ", ".join(known_env_ids()))
  library, _, name = env_id.partition("/")
  if library == "toy":
    if backend is not None or impl is not None:
      raise ValueError("toy tasks are pure JAX: they take neither backend= nor impl=")
    env = _library(library).ToyEnv(name)
  elif library == "brax":
    if impl is not None:
      raise ValueError(f"impl={impl!r} applies to playground tasks; brax tasks take backend=")
    env = _library(library).BraxEnv(name, backend=backend)
  else:
    if backend is not None:
      raise ValueError(f"backend={backend!r} applies to brax tasks; playground tasks take impl=")
    env = _library(library).PlaygroundEnv(name, impl=impl)
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
           "SimulatorEnv", "UnknownEnvironmentError", "Wrapper", "is_known", "known_env_ids", "make",
           "make_simulator", "step_rate", "wrap"]
