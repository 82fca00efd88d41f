"""One environment interface over Brax and MuJoCo Playground tasks.

An `Env` is a pair of pure functions on a single environment: ``reset(key) -> EnvState`` and
``step(state, action) -> EnvState``; wrappers add time limits, auto-reset and batching. The
native state of the wrapped library rides along in ``EnvState.native`` so its own step
function is reused unchanged. Termination (the MDP ended: no bootstrapping) and truncation
(time limit: bootstrap from the final observation) are separate fields.
"""

from __future__ import annotations

import abc
from typing import Any

import jax
import jax.numpy as jnp
import mujoco
from flax import struct


@struct.dataclass
class EnvState:
  native: Any                 # brax.envs.State or mujoco_playground State
  obs: jax.Array
  reward: jax.Array
  terminated: jax.Array       # float 0/1: the episode ended inside the MDP
  truncated: jax.Array        # float 0/1: cut by the time limit (set by EpisodeWrapper)
  metrics: dict[str, jax.Array] = struct.field(default_factory=dict)


def match_dtypes(new: Any, old: Any) -> Any:
  """`new` with every leaf an array, cast to the dtype of the same leaf in `old`.

  Some tasks return float32 flags from step while reset made float64 ones (under x64), and
  brax leaves Python floats in places: a state must keep its types across steps to be a
  scan carry, and be arrays for the wrappers' per-env selects.
  """
  return jax.tree.map(lambda n, o: jnp.asarray(n, o.dtype) if hasattr(o, "dtype")
                      else jnp.asarray(n), new, old)


def all_finite(tree) -> jax.Array:
  """Whether every floating-point leaf of `tree` is free of NaN/inf (a scalar bool)."""
  leaves = [jnp.isfinite(x).all() for x in jax.tree.leaves(tree)
            if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.all(jnp.stack(leaves)) if leaves else jnp.asarray(True)


class Env(abc.ABC):
  """A single (unbatched) environment; jit- and vmap-friendly pure functions."""

  env_id: str

  @property
  @abc.abstractmethod
  def observation_size(self) -> int: ...

  @property
  @abc.abstractmethod
  def action_size(self) -> int: ...

  @property
  @abc.abstractmethod
  def mj_model(self) -> mujoco.MjModel:
    """The MuJoCo model the simulator was built from (reflections are derived from it)."""

  @property
  def dt(self) -> float:
    """Seconds of simulated time per `step`."""
    raise NotImplementedError

  @abc.abstractmethod
  def reset(self, key: jax.Array) -> EnvState: ...

  def native_observation(self, native: Any) -> jax.Array:
    """The observation array of a native (library) state."""
    return native.obs

  @property
  def policy_observation_size(self) -> int:
    """The leading part of the observation the policy sees; the critic sees all of it. Less
    than observation_size only for a privileged critic (Playground locomotion tasks built
    with privileged_critic=True: [state, privileged_state])."""
    return self.observation_size

  @abc.abstractmethod
  def step(self, state: EnvState, action: jax.Array) -> EnvState: ...


_OBSERVATION_SIZES: dict[tuple, int] = {}


class SimulatorEnv(Env):
  """An adapter around a library environment, with direct access to its physics state.

  Each subclass is one simulator library's entry in `envs.ADAPTERS`: `available()` names its
  tasks and `Adapter(name, **options)` makes one, its keyword options being the library's
  own. The physics accessors let the symmetry verifier put a simulator into the mirror image
  of a state and read the observation there. `_env` is the wrapped library environment;
  brax and Playground states both carry obs, reward and done.
  """

  _env: Any
  _options: tuple = ()  # the library options the task was made with (they may change sizes)

  @staticmethod
  @abc.abstractmethod
  def available() -> list[str]:
    """The names of the library's tasks (ids are ``<prefix>/<name>``)."""

  @property
  def observation_size(self) -> int:
    return self._size_once("observation", self._read_observation_size)

  def _size_once(self, what: str, read) -> int:
    # Reading a size traces a whole reset (seconds on CPU); it depends only on the task and
    # its options, so each process reads it once per task (tests and grids build tasks often).
    key = (self.env_id, self._options, what)
    if key not in _OBSERVATION_SIZES:
      _OBSERVATION_SIZES[key] = read()
    return _OBSERVATION_SIZES[key]

  @abc.abstractmethod
  def _read_observation_size(self) -> int: ...

  def reset(self, key: jax.Array) -> EnvState:
    native = jax.tree.map(jnp.asarray, self._env.reset(key))
    return EnvState(native, self._observation(native.obs), native.reward, native.done,
                    jnp.zeros_like(native.done))

  def step(self, state: EnvState, action: jax.Array) -> EnvState:
    # Playground's steps write into the state's own metrics and info dicts: keep the types
    # from a copy of the containers made before the step (the arrays are not copied).
    before = jax.tree.map(lambda x: x, state.native)
    native = match_dtypes(self._env.step(state.native, action), before)
    return state.replace(native=native, obs=self._observation(native.obs),
                         reward=native.reward, terminated=native.done)

  def _observation(self, native_obs: Any) -> jax.Array:
    """The policy's observation array from the library's (a dict for some tasks)."""
    return native_obs

  def native_observation(self, native: Any) -> jax.Array:
    return self._observation(native.obs)

  @abc.abstractmethod
  def physics_qpos_qvel(self, state: EnvState) -> tuple[jax.Array, jax.Array]: ...

  def mocap(self, state: EnvState) -> tuple[jax.Array, jax.Array]:
    """(mocap_pos, mocap_quat) — targets that some tasks place with mocap bodies; empty
    for simulators without them (brax carries targets as joints, the toy tasks have none)."""
    dtype = state.obs.dtype
    return jnp.zeros((0, 3), dtype), jnp.zeros((0, 4), dtype)

  @abc.abstractmethod
  def with_physics(self, state: EnvState, qpos: jax.Array, qvel: jax.Array,
                   mocap_pos: jax.Array, mocap_quat: jax.Array,
                   last_action: jax.Array) -> EnvState:
    """`state` moved to a new physical state; derived quantities and obs recomputed."""

  @abc.abstractmethod
  def push_model(self, model: mujoco.MjModel) -> None:
    """Rebuilds the simulator from an edited MuJoCo model (asymmetry fixes)."""

  def patch_task(self, fix) -> None:
    """Applies an asymmetry fix that edits the task object (`asymmetry.TaskPatch`)."""
    fix.apply_to_task(self._env)


class Wrapper(Env):
  """Delegates everything not overridden to the wrapped environment."""

  def __init__(self, env: Env):
    self.env = env
    self.env_id = env.env_id

  observation_size = property(lambda self: self.env.observation_size)
  action_size = property(lambda self: self.env.action_size)
  mj_model = property(lambda self: self.env.mj_model)
  dt = property(lambda self: self.env.dt)

  def reset(self, key: jax.Array) -> EnvState:
    return self.env.reset(key)

  def native_observation(self, native: Any) -> jax.Array:
    return self.env.native_observation(native)

  policy_observation_size = property(lambda self: self.env.policy_observation_size)

  def step(self, state: EnvState, action: jax.Array) -> EnvState:
    return self.env.step(state, action)
