"""Environments by id ``<prefix>/<name>``: one simulator library per prefix in `ADAPTERS`
(``brax/<name>``, ``playground/<Name>``, the pure-JAX ``toy/<name>``).

    env = reflex_jax.envs.make("brax/ant", num_envs=128)
    state = env.reset(jax.random.key(0))            # batched EnvState
    state = env.step(state, actions)                 # actions: (128, env.action_size)
"""

from __future__ import annotations

import copy
import importlib
import inspect
import sys

from reflex_jax.envs.base import Env, EnvState, SimulatorEnv, Wrapper
from reflex_jax.envs.rate import step_rate
from reflex_jax.envs.wrappers import AutoResetWrapper, BatchWrapper, EpisodeWrapper, NonFiniteMask
from reflex_jax.symmetry import registry


class UnknownEnvironmentError(registry.UnknownEnvironmentError):
  """An environment id no library provides."""


# Each simulator library: id prefix -> its adapter, a `SimulatorEnv` subclass (see there),
# named by path and imported only when an id asks for it (importing MJX and Playground takes
# seconds). Adding a library is adding its adapter module and its entry here.
ADAPTERS = {"brax": "reflex_jax.envs.brax.BraxEnv",
            "playground": "reflex_jax.envs.playground.PlaygroundEnv",
            "toy": "reflex_jax.envs.toy.ToyEnv"}


def _adapter(prefix: str) -> type[SimulatorEnv] | None:
  if prefix not in ADAPTERS:
    return None
  module, _, name = ADAPTERS[prefix].rpartition(".")
  return getattr(importlib.import_module(module), name)


def known_env_ids() -> list[str]:
  """Every id `make` accepts, library by library."""
  return [f"{prefix}/{name}" for prefix in ADAPTERS for name in _adapter(prefix).available()]


def is_known(env_id: str) -> bool:
  """Whether `make` accepts `env_id` (imports only the library the id names)."""
  prefix, _, name = env_id.partition("/")
  adapter = _adapter(prefix)
  return adapter is not None and name in adapter.available()


def make_simulator(env_id: str, *, equalize_asymmetries: bool = False,
                   **options) -> SimulatorEnv:
  """The bare single environment (no time limit, no auto-reset, no batching).

  options: the library's own, those its adapter takes (brax: backend=, Playground: impl=);
  None means the adapter's default. equalize_asymmetries: apply the fixes of the task's
  symmetry entry, which make its reflection exact.
  """
  if not is_known(env_id):
    raise UnknownEnvironmentError(
        f"unknown environment {env_id!r}; known environments: " + ", ".join(known_env_ids()))
  prefix, _, name = env_id.partition("/")
  adapter = _adapter(prefix)
  takes = [p for p in inspect.signature(adapter).parameters if p != "name"]
  options = {k: v for k, v in options.items() if v is not None}
  unknown = sorted(set(options) - set(takes))
  if unknown:
    raise ValueError(f"{unknown[0]}= is not an option of {prefix} tasks; they take "
                     + (", ".join(f"{p}=" for p in takes) or "none"))
  env = adapter(name, **options)
  spec = registry.SPECS.get(env_id)
  if equalize_asymmetries and spec is not None and spec.fixes:
    model = copy.copy(env.mj_model)
    spec.equalize(model)
    env.push_model(model)
    for fix in spec.fixes:
      if hasattr(fix, "apply_to_task"):
        env.patch_task(fix)
  return env


# The module each adapter's library objects come from: an object can only be that library's
# if the module is imported already (so the check imports nothing).
_LIBRARY = {"brax": "brax", "playground": "mujoco_playground"}


def from_native(native) -> SimulatorEnv:
  """A brax or Playground environment object the user built, as this library's simulator
  (ids from its registered name where one matches, so registered reflections apply)."""
  if isinstance(native, Env):
    return native
  for prefix, library in _LIBRARY.items():
    if library in sys.modules:
      env = _adapter(prefix).from_native(native)
      if env is not None:
        return env
  raise TypeError(f"expected an environment id (e.g. 'brax/ant'), a reflex_jax Env, or a brax "
                  f"or MuJoCo Playground environment object; got {type(native).__name__}")


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


__all__ = ["ADAPTERS", "AutoResetWrapper", "BatchWrapper", "Env", "EnvState", "EpisodeWrapper",
           "NonFiniteMask", "SimulatorEnv", "UnknownEnvironmentError", "Wrapper", "is_known",
           "known_env_ids", "make", "make_simulator", "step_rate", "wrap"]
