"""Every task's symmetry, one `SymmetrySpec` entry per env id in `SPECS`.

An entry says how the task's reflection is built (or why it has none), which fixes make its
model's known asymmetries exact, and whether its step rounds like float32. Maps of the bigger
bodies (ant, walker, humanoid) are derived from the MuJoCo model and an observation layout
(blocks of derive.py); small axial tasks use the hand-written tables of the spec. Adding a
symmetric task is adding its entry here; the verifier (`python -m reflex_jax.verify <id>`)
then checks it against the simulator.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import mujoco

from reflex_jax.symmetry import asymmetry, derive
from reflex_jax.symmetry.asymmetry import (AxisFromTwin, BodyFromTwin, CopyFromTwin,
                                           GroundContactsOnly, MirrorTerrain, OntoMirrorPlane,
                                           RangeFromTwin, TaskPatch)
from reflex_jax.symmetry.derive import (Actuators, BodyInertia, BodyRotationEntries, BodyVectors,
                                        BodyVelocity, Command, Invariant, Named, Qpos, Qvel)
from reflex_jax.symmetry.reflection import Reflection, SignedPermutation


class UnknownEnvironmentError(KeyError):
  """An environment id that the library does not know."""

  def __str__(self) -> str:  # KeyError would quote the whole message
    return str(self.args[0])


class NoReflectionError(ValueError):
  """Reflex asked for on a task whose symmetry gives nothing."""


@dataclasses.dataclass(frozen=True)
class SymmetrySpec:
  """How to build an environment's reflection, or why it has none.

  plane: the axis the mirror negates. pairs: substring swaps naming left/right twins.
  obs_layout: blocks to derive the observation map from; obs_negated/obs_perm: a hand table.
  fixes: edits that make the model's known asymmetries exact (`equalize`).
  float32_internals: why the task's step computes partly in float32 even under x64, if it
  does (the verifier then judges it by float32 tolerances).
  critic_obs_layout: blocks of the privileged critic observation, for tasks with one.
  info_layout: (key, block) for the task state a task keeps beside the physics (command,
  last action, per-foot timers, gait phase); keys not listed are mirror invariant.
  verify_overrides: task config while verifying (observation noise, pushes and command
  resampling are drawn from mirror-symmetric distributions, so the MDP is symmetric, but
  a sample and its mirror image differ; the verifier compares sample by sample).
  verify_info: task state set after reset while verifying (e.g. no command resampling).
  obs_history: (key, width) for task-state histories that computing an observation shifts
  by `width` entries and refills (Spot's joint-error history); a mirrored state's history is
  shifted back first, so recomputing its observation restores it.
  approximate: why the task stays only approximately symmetric even with its fixes (the
  verifier then reports its errors as measured, not as a failure).
  verify_converged: why the verifier solves each step to convergence (the task's own solve
  is truncated so early that rounding decides where it stops).
  """

  env_id: str
  kind: str | None
  plane: str | None = None
  pairs: tuple[tuple[str, str], ...] = ()
  obs_layout: tuple[derive.Block, ...] | None = None
  obs_negated: tuple[int, ...] | None = None
  obs_perm: tuple[int, ...] | None = None
  no_reflection_reason: str = ""
  fixes: tuple[asymmetry.Fix, ...] = ()
  float32_internals: str = ""
  critic_obs_layout: tuple[derive.Block, ...] | None = None
  info_layout: tuple[tuple[str, derive.Block], ...] = ()
  verify_overrides: tuple[tuple[str, Any], ...] = ()
  verify_info: tuple[tuple[str, Any], ...] = ()
  obs_history: tuple[tuple[str, int], ...] = ()
  approximate: str = ""
  verify_converged: str = ""

  @property
  def has_reflection(self) -> bool:
    return self.kind is not None

  def state_map(self, model: mujoco.MjModel) -> derive.StateMap:
    self.require()
    return derive.derive_state_map(model, self.plane, self.pairs)

  def reflection(self, model: mujoco.MjModel, obs_size: int) -> Reflection:
    """The reflection for this task's model; checks sizes against the environment."""
    state = self.state_map(model)
    if self.obs_layout is not None:
      obs = derive.observation_map(model, state, self.obs_layout)
      critic = self.critic_observation_map(model)
      if critic is not None and obs_size == obs.size + critic.size:  # [state, privileged]
        obs = derive.observation_map(model, state, self.obs_layout + self.critic_obs_layout)
    else:
      obs = SignedPermutation.from_negated(obs_size, self.obs_negated, self.obs_perm,
                                           what=f"{self.env_id} observation map")
    reflection = Reflection(obs, state.actuator, self.kind, self.plane)
    reflection.check_sizes(obs_size, model.nu, name=self.env_id)
    return reflection

  def critic_observation_map(self, model: mujoco.MjModel) -> SignedPermutation | None:
    """The map of the privileged critic observation (None if the task has none)."""
    if self.critic_obs_layout is None:
      return None
    return derive.observation_map(model, self.state_map(model), self.critic_obs_layout)

  def info_maps(self, model: mujoco.MjModel) -> dict[str, SignedPermutation]:
    """Per task-state key, its map (see info_layout: a block, or a tuple of blocks)."""
    state = self.state_map(model)
    return {key: derive.observation_map(model, state,
                                        block if isinstance(block, tuple) else (block,))
            for key, block in self.info_layout}

  def equalize(self, model: mujoco.MjModel) -> tuple[asymmetry.Fix, ...]:
    """Applies this task's fixes to `model` in place; returns them."""
    return asymmetry.equalize(self.fixes, model, self.plane)

  def require(self) -> None:
    if not self.has_reflection:
      raise NoReflectionError(
          f"{self.env_id} has no useful reflection ({self.no_reflection_reason}); "
          "Reflex reduces to the plain baseline there, so run the baseline instead")


def _axial(env_id, plane, negated: Sequence[int], **more) -> SymmetrySpec:
  return SymmetrySpec(env_id, "axial", plane, obs_negated=tuple(negated), **more)


def _derived(env_id, kind, plane, layout, pairs=(), **more) -> SymmetrySpec:
  return SymmetrySpec(env_id, kind, plane, tuple(pairs), obs_layout=tuple(layout), **more)


def _none(env_id, reason) -> SymmetrySpec:
  return SymmetrySpec(env_id, None, no_reflection_reason=reason)


_PLANAR = "planar x-z body whose hinges all turn about y"
_LEFT_RIGHT = (("right_", "left_"),)
_WALKER2D_PAIRS = (("thigh_joint", "thigh_left_joint"), ("leg_joint", "leg_left_joint"),
                   ("foot_joint", "foot_left_joint"))
# brax humanoid obs: q[2:], qd, cinert (11 bodies x (3x3 + mass)), cvel (11 x 6), qfrc_actuator.
_BRAX_HUMANOID = (Qpos(2), Qvel(), BodyInertia(), BodyVelocity(), Qvel())
# DMC humanoid obs: joint angles, head height, extremities in the torso frame, torso z-axis
# row of xmat (maps like a vector under M R M), centre-of-mass velocity, qvel.
_DMC_HUMANOID = (Qpos(7), Invariant(1),
                 BodyVectors(("left_hand", "left_foot", "right_hand", "right_foot")),
                 BodyVectors(("torso",)), BodyVectors(("torso",)), Qvel())
# DMC walker obs: xmat[1:, 0, 0] and xmat[1:, 0, 2] interleaved per body, torso height, qvel.
_DMC_WALKER = (BodyRotationEntries(((0, 0), (0, 2))), Invariant(1), Qvel())
# Swimmer6: 5 joint angles and nose-to-target (x, y) in the head frame negate; each body's
# 3-velocity block (vx, vy, wz in the body frame, whose long axis is local +y) negates vx, wz.
_SWIMMER6_NEGATED = tuple(range(6)) + tuple(i for b in range(7, 25, 3) for i in (b, b + 2))
# DMC fish obs: torso upright (xmat z-z), joint angles, mouth-to-target in the mouth's frame
# (a geom on the torso's midline: maps like a torso-frame vector), qvel. Forward is +y and the
# fins sit at ±x, so the mirror plane is x = 0; the fin-flap tendon maps like its two joints.
_DMC_FISH = (Invariant(1), Qpos(7), BodyVectors(("torso",)), Qvel())
_FINGER = ("the finger hangs at x = −0.2 and the spinner at x = +0.2: mirroring x swaps them, "
           "and gravity rules out mirroring z")

_BRAX_HUMANOID_FIXES = (
    CopyFromTwin("dof_armature", "right_hip_y", "left_hip_y",
                 "right_hip_y armature is 0.008, left_hip_y 0.01"),
    CopyFromTwin("jnt_stiffness", "left_knee", "right_knee",
                 "left_knee has stiffness 1, right_knee 0"),
)
_DMC_HUMANOID_FIXES = (
    CopyFromTwin("jnt_range", "left_hip_y", "right_hip_y",
                 "left_hip_y range starts at -120 deg, right_hip_y at -110 deg"),
    GroundContactsOnly("floor", "limb-limb contacts are not mirror-equivariant in MJX "
                       "(rollouts jump from 1e-13 to 1e-3 at such a contact)"),
)

# Playground's joystick locomotion tasks. Sensors sit on the root body's midline with its
# axes, so a root-frame vector maps by M (polar) or −M (axial); joint angles are relative to
# the home pose, which must itself be mirror symmetric (the verifier checks the obs).
def _root_vectors(root, *axial):
  return tuple(BodyVectors((root,), axial=a) for a in axial)


def _go1_layouts(feet):
  state = (*_root_vectors("trunk", False, True, False),  # local linvel, gyro, gravity
           Qpos(7), Qvel(6), Actuators(), Command())
  privileged = (*state, *_root_vectors("trunk", True, False, False, False, True),
                Qpos(7), Qvel(6), Actuators(), Named(feet), Named(feet, vector="polar"),
                Named(feet), BodyVectors(("trunk",)), Invariant(1))
  # gyro, accelerometer, gravity, linvel, global angvel; actuator force; contact, foot
  # velocities, air time; push force on the trunk; push flag.
  return state, privileged


def _go1_upright_layouts(linvel: bool):
  """Go1's Getup (without the velocimeter) and Handstand/Footstand (with it)."""
  state = (*(_root_vectors("trunk", False) if linvel else ()),
           *_root_vectors("trunk", True, False), Qpos(7), Qvel(6), Actuators())
  privileged = (*state, *_root_vectors("trunk", True, False, False, True), Qpos(7), Qvel(6),
                Actuators(), Invariant(1))
  # gyro, accelerometer, local linvel, global angvel; joint angles and velocities; actuator
  # force; trunk height.
  return state, privileged


def _spot_layouts(feet, history):
  state = (*_root_vectors("body", True, False), Qpos(7), *(Qpos(7),) * history,
           Named(feet, vector="polar"), Actuators(), Command())
  # gyro, gravity, joint angles, history of joint-angle errors to the motor targets, feet
  # positions in the body frame, last action, command
  privileged = (*state, *_root_vectors("body", True, False, False, False, True), Qpos(7),
                Named(feet, vector="polar"), Qvel(6), Actuators(), Named(feet),
                Named(feet, vector="polar"), Named(feet), BodyVectors(("body",)))
  # ..., gyro, accelerometer, gravity, linvel, global angvel; joint angles, feet positions,
  # joint velocities, actuator force; contact, feet world velocities, air time; push force.
  return state, privileged


def _biped_layouts(root, feet):
  state = (*_root_vectors(root, False, True, False), Command(), Qpos(7), Qvel(6),
           Actuators(), Named(feet), Named(feet))  # ..., gait phase as cos then sin
  privileged = (*state, *_root_vectors(root, True, False, False, False, True),
                Qpos(7), Qvel(6), Invariant(1), Actuators(), Named(feet),
                Named(feet, vector="polar"), Named(feet))  # ..., root height, ...
  return state, privileged


def _legged(env_id, pairs, layouts, info, **more) -> SymmetrySpec:
  state, privileged = layouts
  return SymmetrySpec(env_id, "bilateral", "y", tuple(pairs), obs_layout=state,
                      critic_obs_layout=privileged, info_layout=tuple(info), **more)


def _joystick(env_id, pairs, layouts, feet, extra_info=(), **more) -> SymmetrySpec:
  info = (("command", Command()), ("last_act", Actuators()), ("last_last_act", Actuators()),
          ("motor_targets", Actuators()), ("feet_air_time", Named(feet)),
          ("last_contact", Named(feet)), ("swing_peak", Named(feet)), *extra_info)
  return _legged(env_id, pairs, layouts, info, **more)


def _g1_hip_deviation(task):
  """G1's hip-deviation cost, freeing hip roll and yaw for a lateral command of either sign
  (Playground's frees them only for v_y > 0.1, i.e. leftward)."""
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  hips = task._hip_indices  # pylint: disable=protected-access

  def cost(qpos, cmd):
    error = qpos[hips] - task._default_pose[hips]  # pylint: disable=protected-access
    weight = jnp.where(jnp.abs(cmd[1]) > 0.1, jnp.array([0.0, 1.0, 0.0, 1.0]), 1.0)
    return jnp.sum(jnp.abs(error) * weight)
  return cost


def _h1_contact_by_address(task):
  """H1's step with its foot contact read at the contact sensors' addresses: Playground's
  step indexes `sensordata` by sensor id (its reset uses the address), so its contact flags
  read other sensors (the IMU's height and axes), which the mirror does not swap."""
  # pylint: disable=protected-access
  step = task.step
  names = ("_left_foot_floor_found_sensor", "_right_foot_floor_found_sensor")
  addresses = {n: [int(task._mj_model.sensor_adr[i]) for i in getattr(task, n)] for n in names}

  def patched(state, action):
    ids = {n: getattr(task, n) for n in names}
    try:  # the step is traced once; the lists are Python values read while tracing
      for n in names:
        setattr(task, n, addresses[n])
      return step(state, action)
    finally:
      for n in names:
        setattr(task, n, ids[n])
  return patched


def _h1_layout(command: bool, history: int):
  # gyro, gravity (world up-vector of the torso's IMU), joint angles and velocities, last
  # action, [command], joint-velocity and joint-error histories, contact, gait phase per foot
  # (cos then sin), gait frequency, gait id, foot height
  return (*_root_vectors("torso_link", True, False), Qpos(7), Qvel(6), Actuators(),
          *((Command(),) if command else ()), *(Qvel(6),) * history, *(Qpos(7),) * history,
          *(Named(_H1_FEET),) * 3, Invariant(3))


_H1_FEET = ("left_foot", "right_foot")
_H1_FIXES = (
    *(OntoMirrorPlane(b, why) for b, why in (
        ("pelvis", "centre of mass 0.04 mm off the midline"),
        ("torso_link", "centre of mass 2.8 mm and the IMU site 1.9 cm right of the midline"))),
    # MuJoCo turns each servo's dampratio into a damping gain from the joint's inertia as
    # compiled, i.e. before the centres of mass above are mirrored.
    *(CopyFromTwin("actuator_biasprm", f"right_{j}", f"left_{j}", "the position servos' "
                   "damping gains differ by 4e-7 to 0.15 % between twins")
      for j in ("hip_yaw", "hip_roll", "hip_pitch", "knee", "ankle", "shoulder_pitch",
                "shoulder_roll", "shoulder_yaw", "elbow")),
    TaskPatch("step", _h1_contact_by_address, "the step reads its foot-contact sensors by id "
              "where an address is meant, so the contact flags read the IMU's sensors"),
)


# Op3 names its twins l_/r_ (body_link, head_pan, ..._roll_link hold "l_" too: whole prefixes).
_OP3_PAIRS = (*((f"l_{p}", f"r_{p}") for p in ("sho", "el", "hip", "knee", "ank")),
              ("left_", "right_"))
# gyro, gravity (world up-vector of the IMU), command, joint angles, last action; the step
# shifts each observation into the next: the last 3 (obs_history_size).
_OP3_LAYOUT = (*_root_vectors("body_link", True, False), Command(), Qpos(7), Actuators()) * 3

# Apollo's twins: l_/r_ prefixes of whole part names (its sites say left_/right_).
_APOLLO_PAIRS = (*((f"l_{p}", f"r_{p}") for p in ("shoulder", "elbow", "wrist", "hip", "knee",
                                                  "ankle", "foot", "sole")),
                 ("left_", "right_"))
_APOLLO_FEET = ("l_foot", "r_foot")
# A CAD-derived model: nearly every link breaks the mirror a little, so the right side is made
# the mirror image of the left and the midline links are centred.
_APOLLO_FIXES = (
    *(OntoMirrorPlane(b, "centre of mass up to 1.4 mm off the midline, tensor not symmetric")
      for b in ("base_link", "torso_oak_d_pro_w_rear_frame_link",
                "torso_oak_d_pro_w_front_frame_link", "torso_roll_link", "torso_pitch_link",
                "torso_link", "neck_yaw_link", "neck_roll_link", "neck_pitch_link")),
    *(BodyFromTwin(f"r_{b}_link", f"l_{b}_link", "twin masses differ by up to 0.3 %, centres "
                   "of mass by up to 1 cm (wrist pitch), tensors are not mirror images")
      for b in ("shoulder_aa", "shoulder_ie", "shoulder_fe", "elbow_fe", "wrist_roll",
                "wrist_yaw", "wrist_pitch", "hip_ie", "hip_aa", "hip_fe", "knee_fe",
                "ankle_ie", "foot")),
    *(CopyFromTwin("dof_armature", f"r_{j}", f"l_{j}", "armatures differ by up to 0.1 %")
      for j in ("shoulder_aa", "shoulder_ie", "wrist_yaw", "wrist_pitch", "hip_aa")),
    CopyFromTwin("dof_damping", "r_wrist_pitch", "l_wrist_pitch",
                 "r_wrist_pitch has damping 10 where l_wrist_pitch has 0"),
    *(AxisFromTwin(t, s, "joint axes up to 5.6e-6 from their mirror images") for t, s in (
        ("neck_pitch", "neck_pitch"), ("r_wrist_yaw", "l_wrist_yaw"),
        ("r_wrist_pitch", "l_wrist_pitch"))),
    GroundContactsOnly("floor", "explicit contact pairs collide hands with thighs, thighs, "
                       "shins and soles with each other; MJX's body–body contact is not "
                       "mirror-equivariant"),
)
# local linvel, gyro, gravity (IMU frame), command, joint angles, velocities, last action, gait
# phase (cos, sin per foot); privileged: ..., gyro, gravity, linvel, joint angles, velocities,
# actuator forces, root position and orientation.
_APOLLO_STATE = (*_root_vectors("torso_link", False, True, False), Command(), Qpos(7), Qvel(6),
                 Actuators(), Named(_APOLLO_FEET), Named(_APOLLO_FEET))
_APOLLO_PRIVILEGED = (*_APOLLO_STATE, *_root_vectors("torso_link", True, False, False),
                      Qpos(7), Qvel(6), Actuators(), Qpos(0, 3), Qpos(3, 7))

_GO1_FEET = ("FR", "FL", "RR", "RL")
_GO1_PAIRS = (("FR", "FL"), ("RR", "RL"))
_GO1_FIXES = (OntoMirrorPlane("trunk", "the IMU site (gyro, velocimeter, accelerometer) sits "
                              "6.7 cm right of the midline and the trunk's centre of mass 2 mm "
                              "left of it"),
              *(BodyFromTwin(f"{s}L_calf", f"{s}R_calf",
                             f"{s}L_calf's centre of mass is {s}R_calf's, not its mirror image "
                             "(y = +0.98 mm on both)") for s in ("F", "R")))
_SPOT_FEET = ("FL", "FR", "HL", "HR")
_SPOT_PAIRS = (("fl_", "fr_"), ("hl_", "hr_"), ("FL", "FR"), ("HL", "HR"))
_SPOT_FIXES = (OntoMirrorPlane("body", "centre of mass 0.1 mm off the midline"),
               *(BodyFromTwin(f"{r}_{b}", f"{l}_{b}", "centres of mass 0.1–0.2 mm from mirror "
                              "images") for l, r in (("fl", "fr"), ("hl", "hr"))
                 for b in ("hip", "lleg")),
               *(RangeFromTwin(f"{r}_{j}", f"{l}_{j}", "joint and control ranges differ by up "
                               "to 0.05 rad from the twin's")
                 for l, r, j in (("fl", "fr", "hy"), ("fl", "fr", "kn"), ("hl", "hr", "kn"))))
_SPOT_NO_NOISE = (*((f"obs_noise.scales.{k}", 0.0) for k in ("joint_pos", "gyro", "gravity")),
                  ("obs_noise.scales.feet_pos", [0.0, 0.0, 0.0]))
# Berkeley's and Op3's box feet collide with each other too.
_BOX_FEET_FLOOR_ONLY = GroundContactsOnly("floor", "the box feet also collide with each other, "
                                          "and MJX's box–box contact is not "
                                          "mirror-equivariant")
# The full-collision models (getup, handstand) collide limbs with the trunk and each other.
_LIMBS_FLOOR_ONLY = GroundContactsOnly("floor", "limb–limb and limb–trunk contacts are not "
                                       "mirror-equivariant in MJX (rollouts from some states "
                                       "differ by 1e-3 in reward at such a contact)")
_NO_NOISE = (("noise_config.level", 0.0),)
_NO_PUSH = _NO_NOISE + (("push_config.enable", False),)
_ROUGH = MirrorTerrain("floor", "the height field (an image of rock) has no mirror symmetry, "
                       "so the terrain under g·s is not the terrain under s")
# With MirrorTerrain the heights are mirror images, but MJX collides with each grid cell as
# two triangular prisms split along the same diagonal everywhere; the mirror maps it onto
# the other diagonal, so the surface differs wherever a cell is not planar.
_ROUGH_APPROXIMATE = ("MJX splits every height-field cell along the same diagonal, which the "
                      "mirror turns into the other one: mirrored heights, not a mirrored surface")
_LEGGED = (
    *(_joystick(f"playground/Go1Joystick{v}Terrain", _GO1_PAIRS, _go1_layouts(_GO1_FEET),
                _GO1_FEET, verify_overrides=_NO_NOISE,
                fixes=_GO1_FIXES + ((_ROUGH,) if v == "Rough" else ()),
                approximate=_ROUGH_APPROXIMATE if v == "Rough" else "",
                verify_info=(("steps_until_next_cmd", 10**6),)) for v in ("Flat", "Rough")),
    _joystick("playground/SpotFlatTerrainJoystick", _SPOT_PAIRS, _spot_layouts(_SPOT_FEET, 3),
              _SPOT_FEET, (("qpos_error_history", (Qpos(7),) * 3),
                           ("pert_dir", BodyVectors(("body",)))),
              verify_overrides=_SPOT_NO_NOISE, fixes=_SPOT_FIXES,
              obs_history=(("qpos_error_history", 12),)),
    SymmetrySpec("playground/SpotGetup", "bilateral", "y", _SPOT_PAIRS,
                 obs_layout=(*_root_vectors("body", True, False), Qpos(7), Actuators()),
                 info_layout=(("last_act", Actuators()), ("last_last_act", Actuators())),
                 verify_overrides=(("obs_noise.level", 0.0),),
                 fixes=_SPOT_FIXES + (_LIMBS_FLOOR_ONLY,) + tuple(
                     BodyFromTwin(f"{r}_uleg", f"{l}_uleg", "the upper legs' collision "
                                  "capsules sit 17.6 cm (left) and 15.6 cm (right) from the "
                                  "midline", parts=("geoms",))
                     for l, r in (("fl", "fr"), ("hl", "hr")))),
    SymmetrySpec("playground/SpotJoystickGaitTracking", "bilateral", "y", _SPOT_PAIRS,
                 # gyro, gravity, joint angles, their error history, contact, gait phase
                 # per foot (cos then sin), gait frequency, gait id, foot height
                 obs_layout=(*_root_vectors("body", True, False), Qpos(7), *(Qpos(7),) * 3,
                             Named(_SPOT_FEET), Named(_SPOT_FEET), Named(_SPOT_FEET),
                             Invariant(3)),
                 info_layout=(("command", Command()), ("last_act", Actuators()),
                              ("last_last_act", Actuators()), ("motor_targets", Actuators()),
                              ("qpos_error_history", (Qpos(7),) * 3),
                              ("last_contact", Named(_SPOT_FEET)),
                              ("swing_peak", Named(_SPOT_FEET)), ("phase", Named(_SPOT_FEET))),
                 verify_overrides=_SPOT_NO_NOISE, fixes=_SPOT_FIXES,
              obs_history=(("qpos_error_history", 12),)),
    _legged("playground/Go1Getup", _GO1_PAIRS, _go1_upright_layouts(linvel=False),
            (("last_act", Actuators()), ("last_last_act", Actuators())),
            verify_overrides=_NO_NOISE, fixes=_GO1_FIXES + (_LIMBS_FLOOR_ONLY,)),
    # history_len: 1 (joystick), 3 (in place)
    *(SymmetrySpec(f"playground/H1{v}GaitTracking", "bilateral", "y", (("left_", "right_"),),
                   obs_layout=_h1_layout(command=v == "Joystick", history=h),
                   info_layout=(("command", Command()), ("last_act", Actuators()),
                                ("last_last_act", Actuators()), ("motor_targets", Actuators()),
                                ("qpos_error_history", (Qpos(7),) * h),
                                ("qvel_history", (Qvel(6),) * h),
                                *((k, Named(_H1_FEET)) for k in (
                                    "feet_air_time", "last_contact", "swing_peak", "phase"))),
                   verify_overrides=(("obs_noise.level", 0.0),), fixes=_H1_FIXES,
                   obs_history=(("qvel_history", 19), ("qpos_error_history", 19)))
      for v, h in (("Joystick", 1), ("Inplace", 3))),
    SymmetrySpec("playground/Op3Joystick", "bilateral", "y", _OP3_PAIRS, obs_layout=_OP3_LAYOUT,
                 info_layout=(("command", Command()), ("last_act", Actuators()),
                              ("last_last_act", Actuators()), ("motor_targets", Actuators()),
                              ("last_vel", Qvel(6))),
                 verify_overrides=(("obs_noise", 0.0),),
                 fixes=(OntoMirrorPlane("body_link", "centre of mass 0.13 mm off the midline"),
                        OntoMirrorPlane("head_tilt_link", "centre of mass 0.37 mm off the "
                                        "midline"),
                        _BOX_FEET_FLOOR_ONLY),
                 verify_converged="one Newton iteration and five line-search steps: a state "
                 "and its mirror image stop the line search apart after about ten steps "
                 "(3e-4; converged, they agree to 1e-14)"),
    _legged("playground/ApolloJoystickFlatTerrain", _APOLLO_PAIRS,
            (_APOLLO_STATE, _APOLLO_PRIVILEGED),
            (("command", Command()), ("last_act", Actuators()),
             ("phase", Named(_APOLLO_FEET)),
             ("filtered_linvel", BodyVectors(("torso_link",))),
             ("filtered_angvel", BodyVectors(("torso_link",), axial=True))),
            verify_overrides=_NO_PUSH, verify_info=(("steps_until_next_cmd", 10**6),),
            fixes=_APOLLO_FIXES,
            verify_converged="three Newton iterations: a state and its mirror image stop the "
            "solve apart within two steps (converged, they agree to 1e-13 over 160 substeps)"),
    *(_legged(f"playground/Go1{v}", _GO1_PAIRS, _go1_upright_layouts(linvel=True),
              (("last_act", Actuators()),), verify_overrides=_NO_NOISE,
              fixes=_GO1_FIXES + (_LIMBS_FLOOR_ONLY,))
      for v in ("Handstand", "Footstand")),
    *(_joystick(f"playground/BerkeleyHumanoidJoystick{v}Terrain", (("LL_", "LR_"), ("l_", "r_")),
                _biped_layouts("torso", ("l_foot", "r_foot")), ("l_foot", "r_foot"),
                (("phase", Named(("l_foot", "r_foot"))),), verify_overrides=_NO_PUSH,
                fixes=(OntoMirrorPlane("torso", "the torso's centre of mass is 2.4 mm right "
                                       "of the midline"),
                       *(BodyFromTwin(f"lr_{b}", f"ll_{b}", f"the {b} links' inertia tensors "
                                      "differ by up to 0.5 % (principal moments), not only "
                                      "by the mirror") for b in ("hr", "haa", "hfe")),
                       *(BodyFromTwin(f"lr_{b}", f"ll_{b}", f"the {b} links' inertia tensors "
                                      "differ by 1e-6 of their size: enough for a falling "
                                      "biped's rollouts to drift by 1e-3") for b in ("kfe", "ffe")),
                       BodyFromTwin("lr_faa", "ll_faa", "the right foot's centre of mass is "
                                    "0.06 mm higher than the left's, and its tensor differs "
                                    "by 0.2 %"),
                       _BOX_FEET_FLOOR_ONLY,
                       *((_ROUGH,) if v == "Rough" else ())),
                approximate=_ROUGH_APPROXIMATE if v == "Rough" else "")
      for v in ("Flat", "Rough")),
    *(_joystick(f"playground/T1Joystick{v}Terrain", (("Left_", "Right_"), ("left_", "right_")),
                _biped_layouts("Trunk", ("left_foot", "right_foot")), ("left_foot", "right_foot"),
                (("phase", Named(("left_foot", "right_foot"))),
                 ("filtered_linvel", BodyVectors(("Trunk",))),
                 ("filtered_angvel", BodyVectors(("Trunk",), axial=True))),
                verify_overrides=_NO_PUSH,
                fixes=(*(OntoMirrorPlane(b, "centre of mass off the midline by 1–1.4 mm "
                                         "(head) or 1–3 µm (trunk, waist)")
                         for b in ("Trunk", "H1", "H2", "Waist")),
                       *(BodyFromTwin(f"{b}_Right", f"{b}_Left", why) for b, why in (
                           ("Hip_Pitch", "centres of mass 0.2 mm from mirror images"),
                           ("Hip_Roll", "centres of mass 0.05 mm from mirror images"),
                           ("Hip_Yaw", "2.166 vs 2.17 kg"),
                           ("Shank", "1.73 vs 1.79 kg, centres of mass 1.7 mm apart"))),
                       BodyFromTwin("AR1", "AL1", "the shoulder links' inertia tensors are "
                                    "not mirror images"),
                       BodyFromTwin("right_foot_link", "left_foot_link", "centres of mass 1 µm "
                                    "from mirror images: the rollouts drift by 1e-6"),
                       *((_ROUGH,) if v == "Rough" else ())),
                approximate=_ROUGH_APPROXIMATE if v == "Rough" else "")
      for v in ("Flat", "Rough")),
    *(_joystick(f"playground/G1Joystick{v}Terrain", (("left_", "right_"),),
              _biped_layouts("pelvis", ("left_foot", "right_foot")),
              ("left_foot", "right_foot"), (("phase", Named(("left_foot", "right_foot"))),),
              verify_overrides=_NO_PUSH,
              fixes=(RangeFromTwin("right_hip_roll_joint", "left_hip_roll_joint",
                                   "right_hip_roll_joint's range is left's [-0.52, 2.97] "
                                   "unmirrored; a mirror image would be [-2.97, 0.52]"),
                     BodyFromTwin("right_knee_link", "left_knee_link",
                                  "the knees' centres of mass are not mirror images"),
                     BodyFromTwin("right_shoulder_pitch_link", "left_shoulder_pitch_link",
                                  "the right shoulder sits at y = -0.10021, the left at "
                                  "+0.10022", parts=("position",)),
                     *(OntoMirrorPlane(b, "centre of mass off the midline by 0.02–0.3 mm")
                       for b in ("waist_yaw_link", "waist_roll_link", "torso_link")),
                     TaskPatch("_cost_joint_deviation_hip", _g1_hip_deviation,
                               "the hip-deviation cost frees hip roll for leftward commands "
                               "(v_y > 0.1) only; the mirror image of one is rightward"),
                     *((_ROUGH,) if v == "Rough" else ())),
              approximate=_ROUGH_APPROXIMATE if v == "Rough" else "")
      for v in ("Flat", "Rough")),
)

SPECS: dict[str, SymmetrySpec] = {s.env_id: s for s in (
    _derived("brax/ant", "bilateral", "y", (Qpos(2), Qvel()), (("_1", "_4"), ("_2", "_3"))),
    _derived("brax/walker2d", "bilateral", "y", (Qpos(1), Qvel()), _WALKER2D_PAIRS,
             fixes=(CopyFromTwin("geom_friction", "foot_geom", "foot_left_geom",
                                 "foot friction 0.9 vs 1.9; Gymnasium v5 uses 1.9 on both"),)),
    _derived("brax/humanoid", "bilateral", "y", _BRAX_HUMANOID, _LEFT_RIGHT,
             fixes=_BRAX_HUMANOID_FIXES),
    _derived("brax/humanoidstandup", "bilateral", "y", _BRAX_HUMANOID, _LEFT_RIGHT,
             fixes=_BRAX_HUMANOID_FIXES + (CopyFromTwin(
                 "jnt_range", "left_hip_y", "right_hip_y",
                 "left_hip_y range differs from right_hip_y"),)),
    _derived("brax/swimmer", "axial", "y", (Qpos(2), Qvel())),
    _derived("brax/inverted_pendulum", "axial", "x", (Qpos(), Qvel()),
             fixes=(OntoMirrorPlane("pole", "pole fromto is offset 0.001 in x"),)),
    _derived("toy/point_mass", "axial", "x", (Qpos(), Qvel())),
    _axial("brax/reacher", "y", (2, 3, 5, 7, 9)),
    _axial("brax/inverted_double_pendulum", "x", (0, 1, 2, 5, 6, 7),
           float32_internals="its step returns float32 values under x64"),
    *(_axial(f"playground/Cartpole{v}", "x", (0, 2, 3, 4))
      for v in ("Balance", "BalanceSparse", "Swingup", "SwingupSparse")),
    _axial("playground/PendulumSwingup", "x", (0, 2)),
    _axial("playground/AcrobotSwingup", "x", (0, 1, 4, 5)),
    _axial("playground/AcrobotSwingupSparse", "x", (0, 1, 4, 5)),
    _axial("playground/ReacherEasy", "y", (0, 1, 3, 4, 5)),
    _axial("playground/ReacherHard", "y", (0, 1, 3, 4, 5)),
    _axial("playground/PointMass", "x", (0, 2)),
    _axial("playground/BallInCup", "x", (0, 2, 4, 6)),
    _axial("playground/SwimmerSwimmer6", "x", _SWIMMER6_NEGATED),
    *(_derived(f"playground/Walker{v}", "bilateral", "y", _DMC_WALKER, _LEFT_RIGHT)
      for v in ("Stand", "Walk", "Run")),
    *(_derived(f"playground/Humanoid{v}", "bilateral", "y", _DMC_HUMANOID, _LEFT_RIGHT,
               fixes=_DMC_HUMANOID_FIXES) for v in ("Stand", "Walk", "Run")),
    _derived("playground/FishSwim", "bilateral", "x", _DMC_FISH, (("finright", "finleft"),)),
    _none("playground/FingerSpin", _FINGER + "; the reward also asks for one spin direction"),
    _none("playground/FingerTurnEasy", _FINGER),
    _none("playground/FingerTurnHard", _FINGER),
    *_LEGGED,
    _none("brax/halfcheetah", _PLANAR + ", and front and back legs differ"),
    _none("brax/hopper", _PLANAR + " with a single leg"),
    _none("brax/pusher", "a single right arm pushing to an off-centre goal"),
    _none("playground/CheetahRun", _PLANAR + ", and front and back legs differ"),
    _none("playground/HopperHop", _PLANAR + " with a single leg"),
    _none("playground/HopperStand", _PLANAR + " with a single leg"),
)}


def get(env_id: str) -> SymmetrySpec:
  """The symmetry spec of `env_id`; unknown ids list the registered ones."""
  if env_id not in SPECS:
    raise UnknownEnvironmentError(
        f"no reflection is registered for {env_id!r}; registered environments: "
        + ", ".join(sorted(SPECS)))
  return SPECS[env_id]


def symmetric_env_ids() -> list[str]:
  return sorted(k for k, s in SPECS.items() if s.has_reflection)
