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
