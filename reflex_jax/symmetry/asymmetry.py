"""Model asymmetries that make a reflection only approximate: the kinds of fix, and a finder.

Each fix edits a `mujoco.MjModel` in place; which fixes a task needs is part of its entry in
registry.py, and the environment adapters push the edited model into their simulator (brax
System or MJX Model). With the fixes applied the reflection is exact up to floating-point
rounding; without them the verifier shows the drift they cause.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable

import mujoco
import numpy as np

from reflex_jax.symmetry.derive import MIRROR_DIAG, anchor_offset


# The compiler marks a frame that coincides with its body's (`*_sameframe`) and MuJoCo then
# skips its offset; a fix that moves the frame must clear the mark, or the move is ignored.
_OWN_FRAME = int(mujoco.mjtSameFrame.mjSAMEFRAME_NONE)
_NO_CONTACT_MARGIN = -1.0


@dataclasses.dataclass(frozen=True)
class CopyFromTwin:
  """model.<field>[target] := model.<field>[source] (for a joint, geom, dof or actuator, by
  name)."""

  field: str
  target: str
  source: str
  why: str

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    del plane
    obj = {"geom": mujoco.mjtObj.mjOBJ_GEOM, "jnt": mujoco.mjtObj.mjOBJ_JOINT,
           "dof": mujoco.mjtObj.mjOBJ_JOINT,
           "actuator": mujoco.mjtObj.mjOBJ_ACTUATOR}[self.field.split("_")[0]]
    index = lambda name: _id(model, obj, name, self.field)
    values = getattr(model, self.field)
    values[index(self.target)] = values[index(self.source)]


@dataclasses.dataclass(frozen=True)
class OntoMirrorPlane:
  """Moves a self-mirrored body's inertial frame, geoms and sites (sensors) onto the mirror
  plane.

  In the world frame at the reference pose (the body's own frame may sit off the plane, as
  Op3's head-tilt link's does), positions become ½(p + M p) and orientations the normalized
  mean of q and its mirror image.
  """

  body: str
  why: str

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    b = _id(model, mujoco.mjtObj.mjOBJ_BODY, self.body, "body")
    data = _reference_pose(model)
    if model.body_jntnum[b] == 0:
      # A welded body's origin carries no joint: it moves onto the plane too. (MuJoCo treats
      # an inertial offset below ~1e-7 as none, so a body 5e-8 off, as Apollo's front camera
      # is, cannot be centred through its inertial frame alone.)
      parent = model.body_parentid[b]
      rot_parent = data.xmat[parent].reshape(3, 3)
      centred = 0.5 * (data.xpos[b] + MIRROR_DIAG[plane] * data.xpos[b])
      model.body_pos[b] = rot_parent.T @ (centred - data.xpos[parent])
      data = _reference_pose(model)
    on_plane = functools.partial(_symmetrize_in_world, data.xpos[b], data.xquat[b], plane=plane)
    on_plane(model.body_ipos[b], model.body_iquat[b])
    model.body_sameframe[b] = _OWN_FRAME
    for g in np.flatnonzero(model.geom_bodyid == b):
      on_plane(model.geom_pos[g], model.geom_quat[g])
      model.geom_sameframe[g] = _OWN_FRAME
    for site in np.flatnonzero(model.site_bodyid == b):
      on_plane(model.site_pos[site], model.site_quat[site])
      model.site_sameframe[site] = _OWN_FRAME


@dataclasses.dataclass(frozen=True)
class _JointFromTwin:
  """A fix of joint `target` from its twin `source` (the same joint for one on the plane)."""

  target: str
  source: str
  why: str

  def _joints(self, model: mujoco.MjModel) -> tuple[int, int, mujoco.MjData]:
    """(target id, source id, the world frames at the reference pose)."""
    t, s = _pair(model, mujoco.mjtObj.mjOBJ_JOINT, self, "joint")
    return t, s, _reference_pose(model)


@dataclasses.dataclass(frozen=True)
class RangeFromTwin(_JointFromTwin):
  """Joint `target`'s range, and its actuators' control ranges, := the mirror image of its
  twin `source`'s (negated and reversed where the reflection flips the angle's sign)."""

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    t, s, data = self._joints(model)
    # A hinge keeps its angle's sign if its twin's axis is −M a (it is a pseudovector).
    keeps = np.allclose(data.xaxis[t], -MIRROR_DIAG[plane] * data.xaxis[s], atol=1e-5)
    mirror = (lambda r: r) if keeps else (lambda r: -r[::-1])
    model.jnt_range[t] = mirror(model.jnt_range[s])
    on = lambda j: np.flatnonzero((model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT)
                                  & (model.actuator_trnid[:, 0] == j))
    for a_t, a_s in zip(on(t), on(s)):
      model.actuator_ctrlrange[a_t] = mirror(model.actuator_ctrlrange[a_s])


@dataclasses.dataclass(frozen=True)
class AxisFromTwin(_JointFromTwin):
  """Joint `target`'s axis := the mirror image of its twin `source`'s, in the world at the
  reference pose (up to the sign the reflection gives the angle). A joint that is its own
  twin (`target == source`) gets the mean of its axis and that image: it then lies in or
  across the plane exactly."""

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    t, s, data = self._joints(model)
    image = MIRROR_DIAG[plane] * data.xaxis[s]
    if image @ data.xaxis[t] < 0:  # a pseudovector's image may point the other way
      image = -image
    if t == s:
      image = image + data.xaxis[t]
    rot = data.xmat[model.jnt_bodyid[t]].reshape(3, 3)
    model.jnt_axis[t] = rot.T @ (image / np.linalg.norm(image))


@dataclasses.dataclass(frozen=True)
class BodyFromTwin:
  """Body `target` := the mirror image of its twin `source`, in the named parts: "inertia"
  (mass copied; centre of mass and inertia tensor mirrored), "position" (its origin in the
  world) and "geoms" (each colliding geom placed as the mirror image of the source's geom of
  the same rank). All are mirrored in the world frame at the reference pose, so twins whose
  body frames follow different conventions are handled."""

  target: str
  source: str
  why: str
  parts: tuple[str, ...] = ("inertia",)

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    m = MIRROR_DIAG[plane]
    t, s = _pair(model, mujoco.mjtObj.mjOBJ_BODY, self, "body")
    unknown = set(self.parts) - {"inertia", "position", "geoms"}
    if unknown:
      raise ValueError(f"BodyFromTwin parts are 'inertia', 'position' and 'geoms'; got {unknown}")
    data = _reference_pose(model)
    if "position" in self.parts:
      parent = model.body_parentid[t]
      rot_parent = data.xmat[parent].reshape(3, 3)
      model.body_pos[t] = rot_parent.T @ (m * data.xpos[s] - data.xpos[parent])
      data = _reference_pose(model)
    if "inertia" in self.parts:
      rot_t = data.xmat[t].reshape(3, 3)  # the target's own frame, kept
      world = _world_inertia(model, data, s)
      local = rot_t.T @ (m[:, None] * world * m[None, :]) @ rot_t
      moments, axes = np.linalg.eigh(local)
      if np.linalg.det(axes) < 0:
        axes[:, 0] = -axes[:, 0]
      model.body_mass[t] = model.body_mass[s]
      model.body_inertia[t] = moments
      mujoco.mju_mat2Quat(model.body_iquat[t], axes.ravel())
      model.body_ipos[t] = rot_t.T @ (m * data.xipos[s] - data.xpos[t])
      model.body_sameframe[t] = _OWN_FRAME
    if "geoms" in self.parts:
      colliding = lambda b: np.flatnonzero((model.geom_bodyid == b) & _colliding(model))
      targets, sources = colliding(t), colliding(s)
      if len(targets) != len(sources):
        raise ValueError(f"BodyFromTwin {self.target}: {len(targets)} colliding geoms, its "
                         f"twin {self.source} {len(sources)}")
      rot_t = data.xmat[t].reshape(3, 3)
      for g, h in zip(targets, sources):
        model.geom_pos[g] = rot_t.T @ (m * data.geom_xpos[h] - data.xpos[t])
        mirrored = m[:, None] * data.geom_xmat[h].reshape(3, 3) * m[None, :]  # M R M
        mujoco.mju_mat2Quat(model.geom_quat[g], (rot_t.T @ mirrored).ravel())
        model.geom_sameframe[g] = _OWN_FRAME


def _reference_pose(model: mujoco.MjModel) -> mujoco.MjData:
  """World frames of bodies, geoms, sites and joints at qpos0."""
  data = mujoco.MjData(model)
  mujoco.mj_kinematics(model, data)
  return data


def _colliding(model: mujoco.MjModel) -> np.ndarray:
  """Per geom, whether it takes part in contacts (the others are visual)."""
  return (model.geom_contype != 0) | (model.geom_conaffinity != 0)


def _world_inertia(model: mujoco.MjModel, data: mujoco.MjData, b: int) -> np.ndarray:
  rot = data.ximat[b].reshape(3, 3)
  return rot @ np.diag(model.body_inertia[b]) @ rot.T


@dataclasses.dataclass(frozen=True)
class GroundContactsOnly:
  """Keeps the contacts between the body and the floor (geom `floor`), drops body–body ones.

  MJX's contact between two body geoms is not mirror-equivariant: its frame follows the geom
  order and the pyramidal friction cone's orientation, so a left–right pair in the mirror
  image gets different friction. The floor's normal is vertical and its pyramid maps to
  itself. brax's humanoid already collides its feet with the floor only.
  """

  floor: str
  why: str

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    del plane
    f = _id(model, mujoco.mjtObj.mjOBJ_GEOM, self.floor, "geom")
    body = (model.geom_contype > 0) | (model.geom_conaffinity > 0)
    body[f] = False
    # body: contype 2, conaffinity 1; floor: contype 1, conaffinity 2. A pair collides when
    # contype of one meets conaffinity of the other: body–floor yes, body–body no.
    model.geom_contype[body], model.geom_conaffinity[body] = 2, 1
    model.geom_contype[f], model.geom_conaffinity[f] = 1, 2
    # Explicit <pair>s collide whatever the masks say: one without the floor gets a margin no
    # contact reaches (a metre of overlap), which MuJoCo and MJX both leave inactive.
    others = (model.pair_geom1 != f) & (model.pair_geom2 != f)
    model.pair_margin[others] = _NO_CONTACT_MARGIN


@dataclasses.dataclass(frozen=True)
class TaskPatch:
  """Replaces a method of the task itself (a reward term that is not mirror invariant):
  task.<attribute> := make(task). Model fixes edit the MjModel; this one edits the task
  object, which the environment adapter hands over (`SimulatorEnv.patch_task`)."""

  attribute: str
  make: Callable[[Any], Callable]
  why: str

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    del model, plane  # not a model edit

  def apply_to_task(self, task: Any) -> None:
    if not hasattr(task, self.attribute):
      raise AttributeError(f"asymmetry fix: the task has no {self.attribute!r} to replace")
    setattr(task, self.attribute, self.make(task))


@dataclasses.dataclass(frozen=True)
class MirrorTerrain:
  """Height field geom `geom` := one half of it beside the mirror plane, and that half's
  mirror image beside it (rough terrain stays as rough, now symmetric)."""

  geom: str
  why: str

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    heights = _terrain(model, _id(model, mujoco.mjtObj.mjOBJ_GEOM, self.geom, "geom"), plane)
    axis = _TERRAIN_AXIS[plane]
    far = [slice(None), slice(None)]
    far[axis] = slice((heights.shape[axis] + 1) // 2, None)  # the middle row stays as it is
    heights[tuple(far)] = np.flip(heights, axis)[tuple(far)]


# A height field's rows run along y and its columns along x (MuJoCo's layout).
_TERRAIN_AXIS = {"y": 0, "x": 1}


def _terrain(model: mujoco.MjModel, g: int, plane: str) -> np.ndarray:
  """The heights of height-field geom g as a writable [rows, columns] view; the geom must
  sit on the mirror plane with its axes along the world's."""
  name = mujoco.mj_id2name(model, mujoco.mjtObj.mjOBJ_GEOM, g) or f"#{g}"
  if model.geom_type[g] != mujoco.mjtGeom.mjGEOM_HFIELD:
    raise ValueError(f"geom {name} is not a height field")
  if plane not in _TERRAIN_AXIS:
    raise ValueError(f"a height field cannot be mirrored across the {plane} = 0 plane")
  axis = "xyz".index(plane)
  if (model.geom_bodyid[g] != 0 or abs(model.geom_pos[g][axis]) > 1e-9
      or not np.allclose(np.abs(model.geom_quat[g]), [1, 0, 0, 0])):
    raise ValueError(f"height field {name} is not centred on the {plane} = 0 plane with the "
                     "world's axes; mirroring its data would not mirror the terrain")
  h = model.geom_dataid[g]
  n = model.hfield_nrow[h] * model.hfield_ncol[h]
  adr = model.hfield_adr[h]
  return model.hfield_data[adr:adr + n].reshape(model.hfield_nrow[h], model.hfield_ncol[h])


def _symmetrize_in_world(body_pos, body_quat, pos: np.ndarray, quat: np.ndarray, *,
                         plane: str) -> None:
  """`_symmetrize_frame` of a frame given in a body's frame (body_pos, body_quat: world)."""
  rot = np.empty(9)
  mujoco.mju_quat2Mat(rot, body_quat)
  rot = rot.reshape(3, 3)
  world_pos, world_quat = body_pos + rot @ pos, np.empty(4)
  mujoco.mju_mulQuat(world_quat, body_quat, quat)
  _symmetrize_frame(world_pos, world_quat, plane)
  pos[:] = rot.T @ (world_pos - body_pos)
  inverse = np.empty(4)
  mujoco.mju_negQuat(inverse, body_quat)
  mujoco.mju_mulQuat(quat, inverse, world_quat)


def _symmetrize_frame(pos: np.ndarray, quat: np.ndarray, plane: str) -> None:
  m = MIRROR_DIAG[plane]
  pos[:] = 0.5 * (pos + m * pos)
  mirrored = np.concatenate([quat[:1], -m * quat[1:]])
  if mirrored @ quat < 0:  # q and −q are the same rotation; average the nearer one
    mirrored = -mirrored
  mean = quat + mirrored
  quat[:] = mean / np.linalg.norm(mean)


def _pair(model, obj, fix, what: str) -> tuple[int, int]:
  """The ids of a fix's target and source."""
  return _id(model, obj, fix.target, what), _id(model, obj, fix.source, what)


def _id(model, obj, name: str, what: str) -> int:
  i = mujoco.mj_name2id(model, obj, name)
  if i < 0:
    raise KeyError(f"asymmetry fix for {what}: no object named {name!r} in the model")
  return model.joint(name).dofadr[0] if what.startswith("dof_") else i


Fix = (CopyFromTwin | OntoMirrorPlane | RangeFromTwin | BodyFromTwin | GroundContactsOnly
       | MirrorTerrain | TaskPatch)


def equalize(fixes: tuple[Fix, ...], model: mujoco.MjModel, plane: str) -> tuple[Fix, ...]:
  """Applies `fixes` to `model` in place (mirror `plane`); returns them."""
  for fix in fixes:
    fix.apply(model, plane)
  if fixes:  # recompute derived constants (invweight0, dof_M0, ...) from the edited values
    mujoco.mj_setConst(model, mujoco.MjData(model))
  return fixes


def _close(a, b, tol: float) -> bool:
  """Equal to within `tol`, absolutely: numpy's default relative tolerance (1e-5) would pass
  a 5 µm offset at 0.5 m or a 0.02 % damping gain, both enough to make rollouts drift."""
  return np.allclose(a, b, rtol=0.0, atol=tol)


def _geom_mirrors(model, data, g: int, h: int, m: np.ndarray, tol: float) -> bool:
  """Whether geom h is the mirror image of geom g (in the world, at the reference pose).

  Shapes are compared up to their own symmetries: a sphere has no axes, a capsule,
  cylinder or plane only its z axis (either sign), a box or ellipsoid each axis up to sign.
  """
  same = all(_close(getattr(model, f)[g], getattr(model, f)[h], tol) for f in
             ("geom_type", "geom_size", "geom_friction", "geom_contype", "geom_conaffinity"))
  if not same or not _close(data.geom_xpos[h], m * data.geom_xpos[g], tol):
    return False
  axes_g = m[:, None] * data.geom_xmat[g].reshape(3, 3)  # columns: mirrored geom axes
  axes_h = data.geom_xmat[h].reshape(3, 3)
  gtype = model.geom_type[g]
  if gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
    columns = []
  elif gtype in (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER,
                 mujoco.mjtGeom.mjGEOM_PLANE):
    columns = [2]
  else:
    columns = [0, 1, 2]
  return all(abs(abs(axes_g[:, c] @ axes_h[:, c]) - 1.0) < tol for c in columns)


def find_asymmetries(model: mujoco.MjModel, state_map, tol: float = 1e-9) -> list[str]:
  """Every model parameter that breaks the reflection described by `state_map`.

  Compares each body, colliding geom, site and joint with its mirror twin in the world frame
  at the reference pose qpos0 (so twin bodies may use different frame conventions): centres
  of mass, inertia tensors, geoms, sites, joint anchors and axes must be mirror images (an
  axis 5e-6 off shows only once the joint turns); masses,
  sizes, frictions, armatures, dampings, stiffnesses and (sign-adjusted) ranges equal.
  Height-field terrain must be its own mirror image. An empty list means the model itself
  is symmetric. `tol` is tight: a falling robot's rollouts amplify a centre of mass 1 µm off
  its mirror image to 1e-6 within 20 steps.
  """
  m = state_map.diag
  mirror = np.diag(m)
  found = []
  name = lambda obj, i: mujoco.mj_id2name(model, obj, i) or f"#{i}"
  body_name = lambda b: name(mujoco.mjtObj.mjOBJ_BODY, b)
  data = _reference_pose(model)
  q0 = np.asarray(model.qpos0)
  # in numpy: a jax array would round qpos0 to float32 (unless x64 is on)
  if not _close(q0[np.asarray(state_map.qpos.perm)] * np.asarray(state_map.qpos.sign), q0, tol):
    found.append("qpos0: the reference pose is not its own mirror image")
  world = lambda v: np.round(v, 6).tolist()
  inertia = lambda i: _world_inertia(model, data, i)
  collides = _colliding(model)
  for b in range(1, model.nbody):
    t = state_map.body[b]
    if t < b:
      continue
    pair = f"body {body_name(b)} vs {body_name(t)}"
    if model.body_mocapid[b] >= 0:  # a mocap body's placement is state, mirrored with it
      continue
    if not _close(model.body_mass[t], model.body_mass[b], tol):
      found.append(f"body_mass of {pair}: {model.body_mass[b]:.6g} vs {model.body_mass[t]:.6g}")
    if not _close(data.xipos[t], m * data.xipos[b], tol):
      found.append(f"centre of mass of {pair} (world): {world(data.xipos[b])} vs "
                   f"{world(data.xipos[t])}")
    # Link inertias are 1e-5–1e-1 kg m²: compare them relative to their size, not to `tol`.
    if not np.allclose(inertia(t), mirror @ inertia(b) @ mirror, rtol=tol,
                       atol=tol * 1e-3 * np.abs(inertia(b)).max()):
      found.append(f"inertia of {pair}: the tensors are not mirror images")
    # A geom that collides with nothing is visual: the compiled body inertia holds its mass.
    unmatched = list(np.flatnonzero((model.geom_bodyid == t) & collides))
    for g in np.flatnonzero((model.geom_bodyid == b) & collides):
      match = next((h for h in unmatched if _geom_mirrors(model, data, g, h, m, tol)), None)
      if match is None:
        found.append(f"geom {name(mujoco.mjtObj.mjOBJ_GEOM, g)} of body {body_name(b)} has "
                     f"no mirror image in body {body_name(t)}")
      else:
        unmatched.remove(match)
    # Sites carry sensors (IMU, velocimeters): each needs a mirror image in the twin body.
    twin_sites = [data.site_xpos[i] for i in np.flatnonzero(model.site_bodyid == t)]
    for i in np.flatnonzero(model.site_bodyid == b):
      if not any(_close(p, m * data.site_xpos[i], tol) for p in twin_sites):
        found.append(f"site {name(mujoco.mjtObj.mjOBJ_SITE, i)} of body {body_name(b)} at "
                     f"{world(data.site_xpos[i])} (world) has no mirror image in body "
                     f"{body_name(t)}")
  for j in range(model.njnt):
    qa, da = model.jnt_qposadr[j], model.jnt_dofadr[j]
    t_q, sign = state_map.qpos.perm[qa], state_map.qpos.sign[qa]
    t = int(np.flatnonzero(model.jnt_qposadr == t_q)[0])
    if t < j or model.jnt_type[j] in (0, 1):
      continue
    td = model.jnt_dofadr[t]
    jname = f"joint {name(mujoco.mjtObj.mjOBJ_JOINT, j)} vs {name(mujoco.mjtObj.mjOBJ_JOINT, t)}"
    if not _close(anchor_offset(model, data, j, t, m), 0.0, tol):
      found.append(f"anchor of {jname} (world): {world(data.xanchor[j])} vs "
                   f"{world(data.xanchor[t])}")
    if not (_close(data.xaxis[t], m * data.xaxis[j], tol)
            or _close(data.xaxis[t], -m * data.xaxis[j], tol)):
      found.append(f"axis of {jname} (world): {np.round(data.xaxis[j], 9).tolist()} vs "
                   f"{np.round(data.xaxis[t], 9).tolist()}")
    pairs = [("dof_armature", model.dof_armature[da], model.dof_armature[td]),
             ("dof_damping", model.dof_damping[da], model.dof_damping[td]),
             ("dof_frictionloss", model.dof_frictionloss[da], model.dof_frictionloss[td]),
             ("jnt_stiffness", model.jnt_stiffness[j], model.jnt_stiffness[t]),
             ("qpos_spring", sign * model.qpos_spring[qa], model.qpos_spring[t_q])]
    if model.jnt_limited[j] or model.jnt_limited[t]:
      rng = model.jnt_range[j] if sign > 0 else -model.jnt_range[j][::-1]
      pairs.append(("jnt_range", rng, model.jnt_range[t]))
    for field, mine, theirs in pairs:
      if not _close(mine, theirs, tol):
        found.append(f"{field} of {jname}: {np.round(mine, 6).tolist()} vs "
                     f"{np.round(theirs, 6).tolist()}")
  plane = "xyz"[int(np.flatnonzero(m < 0)[0])] if (m < 0).sum() == 1 else None
  for g in np.flatnonzero(model.geom_type == mujoco.mjtGeom.mjGEOM_HFIELD):
    geom = name(mujoco.mjtObj.mjOBJ_GEOM, g)
    try:
      heights = _terrain(model, g, plane)
    except ValueError as e:
      found.append(str(e))
      continue
    if not _close(heights, np.flip(heights, _TERRAIN_AXIS[plane]), tol):
      found.append(f"height field {geom}: the terrain is not mirror symmetric about the "
                   f"{plane} = 0 plane")
  act = state_map.actuator
  for a in range(model.nu):
    t, sign = act.perm[a], act.sign[a]
    if t < a:
      continue
    aname = f"actuator {name(mujoco.mjtObj.mjOBJ_ACTUATOR, a)} vs " \
            f"{name(mujoco.mjtObj.mjOBJ_ACTUATOR, t)}"
    ctrl = model.actuator_ctrlrange[a] if sign > 0 else -model.actuator_ctrlrange[a][::-1]
    for field, mine, theirs in (("actuator_ctrlrange", ctrl, model.actuator_ctrlrange[t]),
                                ("actuator_gainprm", model.actuator_gainprm[a],
                                 model.actuator_gainprm[t]),
                                ("actuator_biasprm", model.actuator_biasprm[a],
                                 model.actuator_biasprm[t])):
      if model.actuator_ctrllimited[a] or field != "actuator_ctrlrange":
        if not _close(mine, theirs, tol):
          found.append(f"{field} of {aname}: {np.round(mine, 6).tolist()} vs "
                       f"{np.round(theirs, 6).tolist()}")
  return found
