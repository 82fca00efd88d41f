"""Adapter for MuJoCo Playground tasks (ids ``playground/<Name>``), DM Control Suite in MJX."""

from __future__ import annotations

import jax.numpy as jnp
import mujoco
from mujoco import mjx

from reflex_jax.envs import compat
from reflex_jax.envs.base import SimulatorEnv

IMPLS = ("jax", "warp", "c", "cpp")


class PlaygroundEnv(SimulatorEnv):
  """A playground `MjxEnv`. impl defaults to "jax": playground 0.2 defaults to "warp",
  which targets NVIDIA GPUs and floods the log on CPU."""

  @staticmethod
  def available() -> list[str]:
    from mujoco_playground import registry  # pylint: disable=import-outside-toplevel
    return sorted(registry.ALL_ENVS)

  def __init__(self, name: str, impl: str | None = None, config_overrides: dict | None = None):
    from mujoco_playground import registry  # pylint: disable=import-outside-toplevel
    compat.patch_playground_reacher()
    impl = impl or "jax"
    if impl not in IMPLS:
      raise ValueError(f"unknown MJX impl {impl!r}; choose one of {IMPLS}")
    self.env_id, self.impl = f"playground/{name}", impl
    self._env = registry.load(name, config_overrides={"impl": impl, **(config_overrides or {})})
    self._options = (impl, repr(sorted((config_overrides or {}).items())))

  @classmethod
  def from_native(cls, native) -> "PlaygroundEnv | None":
    """The adapter around a Playground environment object the user built (None if `native`
    is not one): its id is playground/<its registered name> when its class and options name
    one task, else playground/<ClassName>."""
    from mujoco_playground._src import mjx_env  # pylint: disable=import-outside-toplevel
    if not isinstance(native, mjx_env.MjxEnv):
      return None
    self = cls.__new__(cls)
    self.env_id = f"playground/{_registered_name(native) or type(native).__name__}"
    self.impl = getattr(native._config, "impl", "jax")  # pylint: disable=protected-access
    self._env = native
    self._options = ("native", id(native))  # its own observation size, not the registered one
    return self

  def _read_observation_size(self) -> int:
    return int(self._env.observation_size)  # traces a reset each time it is read

  action_size = property(lambda self: self._env.action_size)
  mj_model = property(lambda self: self._env.mj_model)
  dt = property(lambda self: float(self._env.dt))
  episode_length = property(lambda self: int(self._env._config.episode_length))  # pylint: disable=protected-access
  action_repeat = property(lambda self: int(self._env._config.action_repeat))  # pylint: disable=protected-access

  def physics_qpos_qvel(self, state):
    return state.native.data.qpos, state.native.data.qvel

  def mocap(self, state):
    return state.native.data.mocap_pos, state.native.data.mocap_quat

  def with_physics(self, state, qpos, qvel, mocap_pos, mocap_quat, last_action):
    del last_action  # DM Control observations do not depend on the action
    # The solver warm start is zeroed so a state and its mirror image start alike.
    data = state.native.data.replace(qpos=qpos, qvel=qvel, mocap_pos=mocap_pos,
                                     mocap_quat=mocap_quat,
                                     qacc_warmstart=jnp.zeros_like(qvel))
    data = mjx.forward(self._env.mjx_model, data)
    obs = self._env._get_obs(data, state.native.info)  # pylint: disable=protected-access
    return state.replace(native=state.native.replace(data=data, obs=obs), obs=obs)

  def push_model(self, model: mujoco.MjModel) -> None:
    self._env._mj_model = model  # pylint: disable=protected-access
    self._env._mjx_model = mjx.put_model(model, impl=self.impl)  # pylint: disable=protected-access


def _registered_name(native) -> str | None:
  """The Playground name whose factory makes `native`'s class with `native`'s options."""
  # pylint: disable=import-outside-toplevel,protected-access
  import functools
  from mujoco_playground._src import dm_control_suite, locomotion, manipulation
  found = []
  for suite in (dm_control_suite, locomotion, manipulation):
    for name, factory in suite._envs.items():
      func = factory.func if isinstance(factory, functools.partial) else factory
      keywords = factory.keywords if isinstance(factory, functools.partial) else {}
      # An option the object does not keep (as `_<option>`) cannot tell names apart.
      if func is type(native) and all(getattr(native, f"_{k}", v) == v
                                      for k, v in keywords.items()):
        found.append(name)
  return found[0] if len(found) == 1 else None
