"""Model asymmetries that make a reflection only approximate: the kinds of fix, and a finder.

Each fix edits a `mujoco.MjModel` in place; which fixes a task needs is part of its entry in
registry.py, and the environment adapters push the edited model into their simulator (brax
System or MJX Model). With the fixes applied the reflection is exact up to floating-point
rounding; without them the verifier shows the drift they cause.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import mujoco
import numpy as np

from reflex_jax.symmetry.derive import MIRROR_DIAG


@dataclasses.dataclass(frozen=True)
class CopyFromTwin:
  """model.<field>[target] := model.<field>[source] (for a joint, geom or dof, by name)."""

  field: str
  target: str
  source: str
  why: str

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    del plane
    obj = {"geom": mujoco.mjtObj.mjOBJ_GEOM, "jnt": mujoco.mjtObj.mjOBJ_JOINT,
           "dof": mujoco.mjtObj.mjOBJ_JOINT}[self.field.split("_")[0]]
    index = lambda name: _id(model, obj, name, self.field)
    values = getattr(model, self.field)
    values[index(self.target)] = values[index(self.source)]


@dataclasses.dataclass(frozen=True)
class OntoMirrorPlane:
  """Moves a self-mirrored body's inertial frame, geoms and sites (sensors) onto the mirror
  plane.

  Positions become ½(p + M p); orientations the normalized mean of q and its mirror image.
  """

  body: str
  why: str

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    b = _id(model, mujoco.mjtObj.mjOBJ_BODY, self.body, "body")
    _symmetrize_frame(model.body_ipos[b], model.body_iquat[b], plane)
    for g in np.flatnonzero(model.geom_bodyid == b):
      _symmetrize_frame(model.geom_pos[g], model.geom_quat[g], plane)
    for site in np.flatnonzero(model.site_bodyid == b):
      _symmetrize_frame(model.site_pos[site], model.site_quat[site], plane)


@dataclasses.dataclass(frozen=True)
class RangeFromTwin:
  """Joint `target`'s range, and its actuators' control ranges, := the mirror image of its
  twin `source`'s (negated and reversed where the reflection flips the angle's sign)."""

  target: str
  source: str
  why: str

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    t, s = _pair(model, mujoco.mjtObj.mjOBJ_JOINT, self, "joint")
    data = mujoco.MjData(model)
    mujoco.mj_forward(model, data)
    # A hinge keeps its angle's sign if its twin's axis is −M a (it is a pseudovector).
    keeps = np.allclose(data.xaxis[t], -MIRROR_DIAG[plane] * data.xaxis[s], atol=1e-5)
    mirror = (lambda r: r) if keeps else (lambda r: -r[::-1])
    model.jnt_range[t] = mirror(model.jnt_range[s])
    on = lambda j: np.flatnonzero((model.actuator_trntype == mujoco.mjtTrn.mjTRN_JOINT)
                                  & (model.actuator_trnid[:, 0] == j))
    for a_t, a_s in zip(on(t), on(s)):
      model.actuator_ctrlrange[a_t] = mirror(model.actuator_ctrlrange[a_s])


@dataclasses.dataclass(frozen=True)
class BodyFromTwin:
  """Body `target` := the mirror image of its twin `source`, in the named parts: "inertia"
  (mass and principal moments copied, centre and axes mirrored) and/or "position" (its
  place in its parent)."""

  target: str
  source: str
  why: str
  parts: tuple[str, ...] = ("inertia",)

  def apply(self, model: mujoco.MjModel, plane: str) -> None:
    m = MIRROR_DIAG[plane]
    t, s = _pair(model, mujoco.mjtObj.mjOBJ_BODY, self, "body")
    unknown = set(self.parts) - {"inertia", "position"}
    if unknown:
      raise ValueError(f"BodyFromTwin parts must be 'inertia' or 'position', got {unknown}")
    if "inertia" in self.parts:
      model.body_mass[t], model.body_inertia[t] = model.body_mass[s], model.body_inertia[s]
      model.body_ipos[t] = m * model.body_ipos[s]
      model.body_iquat[t] = np.concatenate([model.body_iquat[s][:1],
                                            -m * model.body_iquat[s][1:]])
    if "position" in self.parts:
      model.body_pos[t] = m * model.body_pos[s]


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
       | TaskPatch)


def equalize(fixes: tuple[Fix, ...], model: mujoco.MjModel, plane: str) -> tuple[Fix, ...]:
  """Applies `fixes` to `model` in place (mirror `plane`); returns them."""
  for fix in fixes:
    fix.apply(model, plane)
  if fixes:  # recompute derived constants (invweight0, dof_M0, ...) from the edited values
    mujoco.mj_setConst(model, mujoco.MjData(model))
  return fixes


def _rotation(quat: np.ndarray) -> np.ndarray:
  mat = np.zeros(9)
  mujoco.mju_quat2Mat(mat, np.asarray(quat, dtype=np.float64))
  return mat.reshape(3, 3)


def _geom_mirrors(model, g: int, h: int, m: np.ndarray, tol: float) -> bool:
  """Whether geom h is the mirror image of geom g (in their bodies' frames).

  Shapes are compared up to their own symmetries: a sphere has no axes, a capsule,
  cylinder or plane only its z axis (either sign), a box or ellipsoid each axis up to sign.
  """
  same = all(np.allclose(getattr(model, f)[g], getattr(model, f)[h], atol=tol) for f in
             ("geom_type", "geom_size", "geom_friction", "geom_contype", "geom_conaffinity"))
  if not same or not np.allclose(model.geom_pos[h], m * model.geom_pos[g], atol=tol):
    return False
  axes_g = m[:, None] * _rotation(model.geom_quat[g])  # columns: mirrored local axes
  axes_h = _rotation(model.geom_quat[h])
  gtype = model.geom_type[g]
  if gtype == mujoco.mjtGeom.mjGEOM_SPHERE:
    columns = []
  elif gtype in (mujoco.mjtGeom.mjGEOM_CAPSULE, mujoco.mjtGeom.mjGEOM_CYLINDER,
                 mujoco.mjtGeom.mjGEOM_PLANE):
    columns = [2]
  else:
    columns = [0, 1, 2]
  return all(abs(abs(axes_g[:, c] @ axes_h[:, c]) - 1.0) < tol for c in columns)


def find_asymmetries(model: mujoco.MjModel, state_map, tol: float = 1e-6) -> list[str]:
  """Every model parameter that breaks the reflection described by `state_map`.

  Compares each body, colliding geom, site and joint with its mirror twin: positions, frames
  and inertia tensors must be mirror images; sizes, frictions, armatures, dampings, stiffnesses and
  (sign-adjusted) ranges equal. An empty list means the model itself is symmetric.
  """
  m = state_map.diag
  mirror = np.diag(m)
  found = []
  name = lambda obj, i: mujoco.mj_id2name(model, obj, i) or f"#{i}"
  body_name = lambda b: name(mujoco.mjtObj.mjOBJ_BODY, b)
  for b in range(1, model.nbody):
    t = state_map.body[b]
    if t < b:
      continue
    pair = f"body {body_name(b)} vs {body_name(t)}"
    if model.body_mocapid[b] >= 0:  # a mocap body's placement is state, mirrored with it
      continue
    if not np.allclose(model.body_pos[t], m * model.body_pos[b], atol=tol):
      found.append(f"body_pos of {pair}: {model.body_pos[b].round(6).tolist()} vs "
                   f"{model.body_pos[t].round(6).tolist()}")
    if not np.allclose(_rotation(model.body_quat[t]),
                       mirror @ _rotation(model.body_quat[b]) @ mirror, atol=tol):
      found.append(f"body_quat of {pair}: frames are not mirror images")
    inertia = lambda i: (_rotation(model.body_iquat[i]) @ np.diag(model.body_inertia[i])
                         @ _rotation(model.body_iquat[i]).T)
    if not np.isclose(model.body_mass[t], model.body_mass[b], atol=tol):
      found.append(f"body_mass of {pair}: {model.body_mass[b]:.6g} vs {model.body_mass[t]:.6g}")
    if not (np.allclose(model.body_ipos[t], m * model.body_ipos[b], atol=tol)
            and np.allclose(inertia(t), mirror @ inertia(b) @ mirror, atol=tol)):
      found.append(f"inertia of {pair}: centre {model.body_ipos[b].round(6).tolist()} vs "
                   f"{model.body_ipos[t].round(6).tolist()}, or tensors not mirror images")
    # A geom that collides with nothing is visual: the compiled body inertia holds its mass.
    collides = (model.geom_contype != 0) | (model.geom_conaffinity != 0)
    unmatched = list(np.flatnonzero((model.geom_bodyid == t) & collides))
    for g in np.flatnonzero((model.geom_bodyid == b) & collides):
      match = next((h for h in unmatched if _geom_mirrors(model, g, h, m, tol)), None)
      if match is None:
        found.append(f"geom {name(mujoco.mjtObj.mjOBJ_GEOM, g)} of body {body_name(b)} has "
                     f"no mirror image in body {body_name(t)}")
      else:
        unmatched.remove(match)
    # Sites carry sensors (IMU, velocimeters): each needs a mirror image in the twin body.
    twin_sites = [model.site_pos[i] for i in np.flatnonzero(model.site_bodyid == t)]
    for i in np.flatnonzero(model.site_bodyid == b):
      if not any(np.allclose(p, m * model.site_pos[i], atol=tol) for p in twin_sites):
        found.append(f"site {name(mujoco.mjtObj.mjOBJ_SITE, i)} of body {body_name(b)} at "
                     f"{model.site_pos[i].round(6).tolist()} has no mirror image in body "
                     f"{body_name(t)}")
  for j in range(model.njnt):
    qa, da = model.jnt_qposadr[j], model.jnt_dofadr[j]
    t_q, sign = state_map.qpos.perm[qa], state_map.qpos.sign[qa]
    t = int(np.flatnonzero(model.jnt_qposadr == t_q)[0])
    if t < j or model.jnt_type[j] in (0, 1):
      continue
    td = model.jnt_dofadr[t]
    jname = f"joint {name(mujoco.mjtObj.mjOBJ_JOINT, j)} vs {name(mujoco.mjtObj.mjOBJ_JOINT, t)}"
    pairs = [("dof_armature", model.dof_armature[da], model.dof_armature[td]),
             ("dof_damping", model.dof_damping[da], model.dof_damping[td]),
             ("dof_frictionloss", model.dof_frictionloss[da], model.dof_frictionloss[td]),
             ("jnt_stiffness", model.jnt_stiffness[j], model.jnt_stiffness[t]),
             ("qpos_spring", sign * model.qpos_spring[qa], model.qpos_spring[t_q])]
    if model.jnt_limited[j] or model.jnt_limited[t]:
      rng = model.jnt_range[j] if sign > 0 else -model.jnt_range[j][::-1]
      pairs.append(("jnt_range", rng, model.jnt_range[t]))
    for field, mine, theirs in pairs:
      if not np.allclose(mine, theirs, atol=tol):
        found.append(f"{field} of {jname}: {np.round(mine, 6).tolist()} vs "
                     f"{np.round(theirs, 6).tolist()}")
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
        if not np.allclose(mine, theirs, atol=tol):
          found.append(f"{field} of {aname}: {np.round(mine, 6).tolist()} vs "
                       f"{np.round(theirs, 6).tolist()}")
  return found
