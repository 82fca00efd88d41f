"""Pure-JAX tasks (ids ``toy/<name>``): no physics engine, so their programs compile in seconds.

For smoke tests, tutorials and the test suite, where an MJX task's compilation (tens of
seconds on CPU per program) would dominate. Each task still has a MuJoCo model: the
reflection is derived from it like any other task's, and the verifier checks it.

toy/point_mass: balance a point mass at the unstable origin of a plane. It is pushed away
(q̈ = stiffness·q + gear·u − damping·q̇, a "negative spring") and the episode terminates once
it leaves the unit square; reward 1 per step alive, as in inverted pendulum. A uniformly random
policy falls out after ~30 steps, a learned one stays for the whole episode.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import mujoco
from flax import struct

from reflex_jax.envs.base import SimulatorEnv

_POINT_MASS_XML = """
<mujoco model="toy_point_mass">
  <option timestep="0.05"/>
  <worldbody>
    <body name="mass">
      <joint name="slide_x" type="slide" axis="1 0 0" damping="0.5"/>
      <joint name="slide_y" type="slide" axis="0 1 0" damping="0.5"/>
      <geom type="sphere" size="0.05" mass="1"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="slide_x" gear="4" ctrllimited="true" ctrlrange="-1 1"/>
    <motor joint="slide_y" gear="4" ctrllimited="true" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""
_STIFFNESS = 4.0     # 1/s²: the origin's instability (e-folding in 0.5 s = 10 steps)
_ARENA = 1.0         # |q|∞ beyond this terminates; gear / stiffness = 1 keeps it controllable
_INIT_SCALE = 0.1    # initial position and velocity: uniform in ±this


@struct.dataclass
class ToyState:
  qpos: jax.Array
  qvel: jax.Array
  obs: jax.Array
  reward: jax.Array
  done: jax.Array
  time: jax.Array     # simulated seconds since reset, as MuJoCo's data.time


class _PointMass:
  """The dynamics, with its constants read from the model (so `push_model` edits apply)."""

  def __init__(self, model: mujoco.MjModel):
    self.dt = float(model.opt.timestep)
    self.gear = jnp.asarray(model.actuator_gear[:, 0], jnp.float32)
    self.damping = jnp.asarray(model.dof_damping, jnp.float32)
    self.mass = float(model.body_mass[1])

  @staticmethod
  def state(qpos, qvel, reward, done, time) -> ToyState:
    return ToyState(qpos, qvel, jnp.concatenate([qpos, qvel]), reward, done, time)

  def reset(self, key: jax.Array) -> ToyState:
    q = jax.random.uniform(key, (4,), minval=-_INIT_SCALE, maxval=_INIT_SCALE)
    return self.state(q[:2], q[2:], jnp.zeros(()), jnp.zeros(()), jnp.zeros(()))

  def step(self, state: ToyState, action: jax.Array) -> ToyState:
    u = jnp.clip(action, -1.0, 1.0)
    force = _STIFFNESS * self.mass * state.qpos + self.gear * u - self.damping * state.qvel
    qvel = state.qvel + self.dt * force / self.mass  # semi-implicit Euler
    qpos = state.qpos + self.dt * qvel
    done = (jnp.max(jnp.abs(qpos)) > _ARENA).astype(jnp.float32)
    return self.state(qpos, qvel, 1.0 - done, done, state.time + self.dt)


TASKS = {"point_mass": (_POINT_MASS_XML, _PointMass)}


class ToyEnv(SimulatorEnv):
  """A `toy/<name>` task: its model, its pure-JAX dynamics."""

  @staticmethod
  def available() -> list[str]:
    return sorted(TASKS)

  def __init__(self, name: str):
    xml, dynamics = TASKS[name]
    self.env_id = f"toy/{name}"
    self._model = mujoco.MjModel.from_xml_string(xml)
    self._dynamics = dynamics
    self._env = dynamics(self._model)

  def _read_observation_size(self) -> int:
    return 2 * self._model.nq

  action_size = property(lambda self: self._model.nu)
  mj_model = property(lambda self: self._model)
  dt = property(lambda self: self._env.dt)

  def physics_qpos_qvel(self, state):
    return state.native.qpos, state.native.qvel

  def with_physics(self, state, qpos, qvel, mocap_pos, mocap_quat, last_action):
    del mocap_pos, mocap_quat, last_action  # no mocap bodies; obs do not depend on the action
    native = self._env.state(qpos, qvel, state.native.reward, state.native.done,
                             state.native.time)
    return state.replace(native=native, obs=native.obs)

  def push_model(self, model: mujoco.MjModel) -> None:
    self._model, self._env = model, self._dynamics(model)
