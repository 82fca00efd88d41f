"""Adapter for `brax.envs` tasks (ids ``brax/<name>``)."""

from __future__ import annotations

import inspect

import jax
import mujoco
import numpy as np

from reflex_jax.envs import compat
from reflex_jax.envs.base import SimulatorEnv

BACKENDS = ("mjx", "generalized", "positional", "spring")


class BraxEnv(SimulatorEnv):
  """A brax `PipelineEnv`. backend=None picks "mjx" (MuJoCo physics) where the task allows
  it and "generalized" otherwise (swimmer's fluid model exists only there)."""

  @staticmethod
  def available() -> list[str]:
    from brax import envs  # pylint: disable=import-outside-toplevel
    return sorted(envs._envs)  # pylint: disable=protected-access

  def __init__(self, name: str, backend: str | None = None):
    from brax import envs  # pylint: disable=import-outside-toplevel
    compat.patch_brax_fluid()
    if backend is not None and backend not in BACKENDS:
      raise ValueError(f"unknown brax backend {backend!r}; choose one of {BACKENDS}")
    self.env_id = f"brax/{name}"
    if backend is None:
      try:
        self._env, self.backend = envs.get_environment(name, backend="mjx"), "mjx"
      except ValueError:
        self._env, self.backend = envs.get_environment(name), "generalized"
    else:
      self._env, self.backend = envs.get_environment(name, backend=backend), backend
    self._options = (self.backend,)
    self._obs_takes_action = len(inspect.signature(self._env._get_obs).parameters) > 1

  @classmethod
  def from_native(cls, native) -> "BraxEnv | None":
    """The adapter around a brax environment object the user built (None if `native` is not
    one): its id is brax/<the registered name of its class>, or brax/<ClassName>."""
    from brax import envs  # pylint: disable=import-outside-toplevel
    from brax.envs.base import PipelineEnv  # pylint: disable=import-outside-toplevel
    if not isinstance(native, PipelineEnv):
      return None
    names = [n for n, c in envs._envs.items() if c is type(native)]  # pylint: disable=protected-access
    self = cls.__new__(cls)
    self.env_id = f"brax/{names[0] if len(names) == 1 else type(native).__name__}"
    self._env, self.backend = native, native.backend
    self._options = ("native", id(native))  # its own observation size, not the registered one
    self._obs_takes_action = len(inspect.signature(native._get_obs).parameters) > 1  # pylint: disable=protected-access
    return self

  def _read_observation_size(self) -> int:
    # brax's own property runs a reset eagerly (tens of seconds on CPU); tracing suffices.
    return int(jax.eval_shape(self._env.reset, jax.random.PRNGKey(0)).obs.shape[-1])

  action_size = property(lambda self: self._env.action_size)
  mj_model = property(lambda self: self._env.sys.mj_model)
  dt = property(lambda self: float(self._env.dt))

  def physics_qpos_qvel(self, state):
    return state.native.pipeline_state.q, state.native.pipeline_state.qd

  def with_physics(self, state, qpos, qvel, mocap_pos, mocap_quat, last_action):
    del mocap_pos, mocap_quat  # brax tasks carry targets as joints, not mocap bodies
    pipeline_state = self._env.pipeline_init(qpos, qvel)
    args = (pipeline_state, last_action) if self._obs_takes_action else (pipeline_state,)
    obs = self._env._get_obs(*args)  # pylint: disable=protected-access
    native = state.native.replace(pipeline_state=pipeline_state, obs=obs)
    return state.replace(native=native, obs=obs)

  def push_model(self, model: mujoco.MjModel) -> None:
    """Copies into the live System exactly the fields that the model edit changes.

    brax tasks tweak their System after loading (timestep, solver settings); rebuilding it
    from the model would lose those, so only leaves that differ between the original and
    the edited model are replaced.
    """
    from brax.io import mjcf  # pylint: disable=import-outside-toplevel
    original, edited = mjcf.load_model(self.mj_model), mjcf.load_model(model)
    sys = self._env.sys
    for (path, before), (_, after) in zip(jax.tree_util.tree_leaves_with_path(original),
                                          jax.tree_util.tree_leaves_with_path(edited)):
      if not np.array_equal(before, after):
        sys = _replace_at(sys, path, after)
    self._env.sys = sys.replace(mj_model=model)


def _replace_at(tree, path, value):
  """`tree` with the leaf at a jax key path replaced (dataclass fields and tuples)."""
  if not path:
    return value
  key, rest = path[0], path[1:]
  if isinstance(key, jax.tree_util.GetAttrKey):
    return tree.replace(**{key.name: _replace_at(getattr(tree, key.name), rest, value)})
  if isinstance(key, jax.tree_util.SequenceKey):
    items = list(tree)
    items[key.idx] = _replace_at(items[key.idx], rest, value)
    return type(tree)(items)
  raise TypeError(f"cannot replace a leaf under key {key!r}")
