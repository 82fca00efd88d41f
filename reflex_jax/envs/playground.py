"""Adapter for MuJoCo Playground tasks (ids ``playground/<Name>``), DM Control Suite in MJX."""

from __future__ import annotations

import inspect

import jax.numpy as jnp
import mujoco
from mujoco import mjx

from reflex_jax.envs import compat
from reflex_jax.envs.base import SimulatorEnv

IMPLS = ("jax", "warp", "c", "cpp")
# Tasks with dict observations (the locomotion suite): the policy's key, and the critic's
# privileged one (asymmetric actor-critic in Playground's own PPO configs).
POLICY_OBS_KEY, CRITIC_OBS_KEY = "state", "privileged_state"


class PlaygroundEnv(SimulatorEnv):
  """A playground `MjxEnv`. impl defaults to "jax": playground 0.2 defaults to "warp",
  which targets NVIDIA GPUs and floods the log on CPU."""

  @staticmethod
  def available() -> list[str]:
    from mujoco_playground import registry  # pylint: disable=import-outside-toplevel
    return sorted(registry.ALL_ENVS)

  def __init__(self, name: str, impl: str | None = None, config_overrides: dict | None = None,
               privileged_critic: bool = False):
    """privileged_critic: observe [state, privileged_state] (the policy reads the first
    part, the critic all), as Playground's own PPO configs train these tasks."""
    from mujoco_playground import registry  # pylint: disable=import-outside-toplevel
    compat.patch_playground_reacher()
    if name in locomotion_names():
      from reflex_jax.envs import menagerie  # pylint: disable=import-outside-toplevel
      menagerie.ensure_meshes()  # never let Playground clone Menagerie from GitHub
    impl = impl or "jax"
    if impl not in IMPLS:
      raise ValueError(f"unknown MJX impl {impl!r}; choose one of {IMPLS}")
    self.env_id, self.impl = f"playground/{name}", impl
    self._env = registry.load(name, config_overrides={"impl": impl, **(config_overrides or {})})
    self._options = (impl, repr(sorted((config_overrides or {}).items())), privileged_critic)
    self.privileged_critic = privileged_critic
    if privileged_critic and not isinstance(self._env.observation_size, dict):
      raise ValueError(f"{self.env_id} has a single observation, no privileged one for the "
                       "critic: leave privileged_critic off")

  @classmethod
  def from_native(cls, native) -> "PlaygroundEnv | None":
    """The adapter around a Playground environment object the user built (None if `native`
    is not one): its id is playground/<its registered name> when its class and options name
    one task, else playground/<ClassName>."""
    from mujoco_playground._src import mjx_env  # pylint: disable=import-outside-toplevel
    if not isinstance(native, mjx_env.MjxEnv):
      return None
    self = cls.__new__(cls)
    self.privileged_critic = False
    self.env_id = f"playground/{_registered_name(native) or type(native).__name__}"
    self.impl = getattr(native._config, "impl", "jax")  # pylint: disable=protected-access
    self._env = native
    self._options = ("native", id(native))  # its own observation size, not the registered one
    return self

  def _read_observation_size(self) -> int:
    size = self._env.observation_size  # traces a reset each time it is read
    if not isinstance(size, dict):
      return int(size)
    keys = (POLICY_OBS_KEY, CRITIC_OBS_KEY) if self.privileged_critic else (POLICY_OBS_KEY,)
    return sum(int(size[k][0]) for k in keys)

  @property
  def policy_observation_size(self) -> int:
    if not self.privileged_critic:
      return self.observation_size
    return self._size_once(
        "policy", lambda: int(self._env.observation_size[POLICY_OBS_KEY][0]))

  def _observation(self, native_obs):
    if not isinstance(native_obs, dict):
      return native_obs
    if self.privileged_critic:
      return jnp.concatenate([native_obs[POLICY_OBS_KEY], native_obs[CRITIC_OBS_KEY]], -1)
    return native_obs[POLICY_OBS_KEY]

  @property
  def history_in_observation(self) -> bool:
    """Whether the task shifts each observation into the next (Op3): its observation is
    then part of its state."""
    return "obs_history" in _obs_params(self._env)

  def critic_observation(self, state):
    """The privileged observation of a dict-observation task (None for the others)."""
    obs = state.native.obs
    return obs[CRITIC_OBS_KEY] if isinstance(obs, dict) else None

  def info(self, state) -> dict:
    """The task's own state beyond the physics (command, last action, gait phase, ...)."""
    return state.native.info

  action_size = property(lambda self: self._env.action_size)
  mj_model = property(lambda self: self._env.mj_model)
  dt = property(lambda self: float(self._env.dt))
  episode_length = property(lambda self: int(self._env._config.episode_length))  # pylint: disable=protected-access
  action_repeat = property(lambda self: int(self._env._config.action_repeat))  # pylint: disable=protected-access

  def physics_qpos_qvel(self, state):
    return state.native.data.qpos, state.native.data.qvel

  def mocap(self, state):
    return state.native.data.mocap_pos, state.native.data.mocap_quat

  def with_physics(self, state, qpos, qvel, mocap_pos, mocap_quat, last_action, info=None,
                   ctrl=None, obs=None):
    """info: the task state to use instead of the current one (the locomotion tasks carry
    their last action there, so `last_action` is unused: DM Control ignores the action);
    ctrl: the actuator controls (position servos' forces, in privileged observations,
    depend on them); obs: for a task that keeps its past observations in the observation
    (`history_in_observation`), the observation to take them from instead of the state's."""
    del last_action
    data = state.native.data
    # The solver warm start is zeroed so a state and its mirror image start alike.
    data = data.replace(qpos=qpos, qvel=qvel, mocap_pos=mocap_pos, mocap_quat=mocap_quat,
                        qacc_warmstart=jnp.zeros_like(qvel),
                        ctrl=data.ctrl if ctrl is None else ctrl)
    data = mjx.forward(self._env.mjx_model, data)
    info = dict(state.native.info if info is None else info)  # _get_obs writes info["rng"]
    previous = state.native.obs if obs is None else obs
    obs = self._env._get_obs(data, info, *_obs_arguments(self._env, data, info, previous))  # pylint: disable=protected-access
    native = state.native.replace(data=data, obs=obs, info=info)
    return state.replace(native=native, obs=self._observation(obs))

  def push_model(self, model: mujoco.MjModel) -> None:
    # pylint: disable=protected-access
    self._env._mj_model = model
    self._env._mjx_model = mjx.put_model(model, impl=self.impl)
    if hasattr(self._env, "_post_init"):  # locomotion tasks cache joint limits, home pose, ids
      self._env._post_init()


def _obs_params(env) -> list[str]:
  return list(inspect.signature(env._get_obs).parameters)[2:]  # pylint: disable=protected-access


def _obs_arguments(env, data, info, previous_obs) -> tuple:
  """What a task's _get_obs takes after (data, info), as its own step passes it: a noise key
  (`rng`, Spot and H1), the floor contact (`contact`) and the past observations (Op3's
  `obs_history`: its step passes the last observation, whose blocks it shifts one on)."""
  params = _obs_params(env)
  given = {"rng": lambda: info["rng"], "contact": lambda: _floor_contact(env, data),
           "obs_history": lambda: _unshifted_observation(env, previous_obs)}
  unknown = [p for p in params if p not in given]
  if unknown:
    raise NotImplementedError(f"{type(env).__name__}._get_obs takes {unknown}, which this "
                              "adapter cannot supply")
  return tuple(given[p]() for p in params)


def _unshifted_observation(env, obs):
  """`obs` with its blocks shifted back by one (the newest last), so that computing the
  observation, which shifts them on and overwrites the first, recomputes `obs` itself."""
  block = obs.shape[-1] // env._config.obs_history_size  # pylint: disable=protected-access
  return jnp.roll(obs, -block, axis=-1)


def _floor_contact(env, data):
  """The floor contact, read from the task's floor-contact sensors as its own step does."""
  # pylint: disable=protected-access
  found = lambda ids: jnp.array([data.sensordata[env._mj_model.sensor_adr[i]] > 0 for i in ids])
  # Joystick tasks read their feet's sensors, Handstand/Footstand every colliding geom's.
  for name in ("_feet_floor_found_sensor", "_fullcollision_floor_found_sensor"):
    if hasattr(env, name):
      return found(getattr(env, name))
  # T1 and H1 list each foot's sensors apart: a foot touches if any of its own does.
  left, right = (getattr(env, f"_{side}_foot_floor_found_sensor") for side in ("left", "right"))
  return jnp.hstack([jnp.any(found(left)), jnp.any(found(right))])


def locomotion_names() -> tuple[str, ...]:
  from mujoco_playground._src import locomotion  # pylint: disable=import-outside-toplevel
  return tuple(locomotion.ALL_ENVS)


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
