"""Reflection maps derived from a MuJoCo model instead of typed by hand.

Given the mirror plane and how left/right names pair up, every MuJoCo quantity maps by a
fixed rule (spec §1): a hinge with world axis a has a twin with axis a′; its angle keeps
its sign if a′ = −M a and flips if a′ = M a; a slide keeps it if a′ = M a; free-joint
positions map by M, quaternions (w, v) ↦ (w, −M v), linear velocities by M, angular ones
by −M. Actuators map like the joint (or fixed tendon) they drive. Observation vectors are
described as a list of blocks (qpos slice, qvel, per-body inertia, ...), each of which has
a derived map; their concatenation is the observation map. All joint and body geometry is
checked against the claimed twin (mirrored anchors, axes, masses, gears) with a clear error.
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import mujoco
import numpy as np

from reflex_jax.symmetry.reflection import ReflectionError, SignedPermutation

MIRROR_DIAG = {"x": np.array([-1.0, 1.0, 1.0]), "y": np.array([1.0, -1.0, 1.0]),
               "z": np.array([1.0, 1.0, -1.0])}
_FREE, _BALL, _SLIDE, _HINGE = (int(mujoco.mjtJoint.mjJNT_FREE), int(mujoco.mjtJoint.mjJNT_BALL),
                                int(mujoco.mjtJoint.mjJNT_SLIDE), int(mujoco.mjtJoint.mjJNT_HINGE))
_QPOS_SIZE = {_FREE: 7, _BALL: 4, _SLIDE: 1, _HINGE: 1}
_QVEL_SIZE = {_FREE: 6, _BALL: 3, _SLIDE: 1, _HINGE: 1}


@dataclasses.dataclass(frozen=True)
class StateMap:
  """How the reflection acts on a MuJoCo state (qpos, qvel, bodies, actuators, mocap)."""

  plane: str
  qpos: SignedPermutation
  qvel: SignedPermutation
  body: tuple[int, ...]
  actuator: SignedPermutation
  mocap: tuple[int, ...]
  pairs: tuple[tuple[str, str], ...] = ()  # the name swaps it was derived with (for `Named`)

  @property
  def diag(self) -> np.ndarray:
    """Diagonal of the mirror matrix M (it is always axis aligned here)."""
    return MIRROR_DIAG[self.plane]


def twin_name(name: str, pairs: Sequence[tuple[str, str]]) -> str:
  """The mirror partner's name: the first pair whose one side occurs in `name` is swapped."""
  for a, b in pairs:
    if a in name:
      return name.replace(a, b)
    if b in name:
      return name.replace(b, a)
  return name


def _names(model: mujoco.MjModel, objtype, count: int) -> list[str]:
  return [mujoco.mj_id2name(model, objtype, i) or "" for i in range(count)]


def anchor_offset(model: mujoco.MjModel, data: mujoco.MjData, j: int, t: int,
                  diag: np.ndarray) -> np.ndarray:
  """How far joint t's anchor is from joint j's mirrored, in the world. A hinge or slide
  joint is a line: a shift of its anchor along its own axis changes nothing (Op3's head tilt
  sits 1.9 cm along its axis from the midline), so only the part across the axis counts."""
  offset = data.xanchor[t] - diag * data.xanchor[j]
  if model.jnt_type[j] in (_HINGE, _SLIDE):
    axis = data.xaxis[t]
    offset = offset - axis * (offset @ axis)
  return offset


def _closest_sign(a: np.ndarray, a_twin: np.ndarray, diag: np.ndarray | float, tol: float) -> int:
  """+1 if a_twin = diag·a, −1 if a_twin = −diag·a, 0 if neither."""
  if np.allclose(a_twin, diag * a, atol=tol):
    return 1
  if np.allclose(a_twin, -diag * a, atol=tol):
    return -1
  return 0


def derive_state_map(model: mujoco.MjModel, plane: str,
                     pairs: Sequence[tuple[str, str]] = (), tol: float = 1e-5) -> StateMap:
  """Derives the state/actuator reflection of `model` for the mirror that negates `plane`."""
  diag = MIRROR_DIAG[plane]
  data = mujoco.MjData(model)
  mujoco.mj_forward(model, data)  # world-frame joint axes and anchors at the reference pose
  joint_names = _names(model, mujoco.mjtObj.mjOBJ_JOINT, model.njnt)
  joint_ids = {n: i for i, n in enumerate(joint_names) if n}

  joint_twin = np.arange(model.njnt)
  for j, name in enumerate(joint_names):
    other = twin_name(name, pairs)
    if other != name:
      if other not in joint_ids:
        raise ReflectionError(f"joint {name!r}: its mirror partner {other!r} is not in the model")
      joint_twin[j] = joint_ids[other]

  qpos_perm, qpos_sign = np.arange(model.nq), np.ones(model.nq)
  qvel_perm, qvel_sign = np.arange(model.nv), np.ones(model.nv)
  joint_sign = np.ones(model.njnt)
  for j in range(model.njnt):
    t = joint_twin[j]
    jtype, qa, va = int(model.jnt_type[j]), model.jnt_qposadr[j], model.jnt_dofadr[j]
    if model.jnt_type[t] != jtype:
      raise ReflectionError(f"joints {joint_names[j]!r} and {joint_names[t]!r} differ in type")
    if not np.allclose(anchor_offset(model, data, j, t, diag), 0.0, atol=tol):
      raise ReflectionError(
          f"joint {joint_names[j]!r} at {data.xanchor[j].round(4).tolist()} does not mirror onto "
          f"{joint_names[t]!r} at {data.xanchor[t].round(4).tolist()} across plane {plane}")
    tq, tv = model.jnt_qposadr[t], model.jnt_dofadr[t]
    nq, nv = _QPOS_SIZE[jtype], _QVEL_SIZE[jtype]
    qpos_perm[qa:qa + nq] = np.arange(tq, tq + nq)
    qvel_perm[va:va + nv] = np.arange(tv, tv + nv)
    if jtype == _FREE:
      qpos_sign[qa:qa + 7] = np.concatenate([diag, [1.0], -diag])
      qvel_sign[va:va + 6] = np.concatenate([diag, -diag])
    elif jtype == _BALL:
      qpos_sign[qa:qa + 4] = np.concatenate([[1.0], -diag])
      qvel_sign[va:va + 3] = -diag
    else:
      s = _closest_sign(data.xaxis[j], data.xaxis[t], diag, tol)
      if s == 0:
        raise ReflectionError(
            f"joint {joint_names[j]!r} axis {data.xaxis[j].round(4).tolist()} does not mirror onto "
            f"{joint_names[t]!r} axis {data.xaxis[t].round(4).tolist()} across plane {plane}")
      # A hinge is a pseudovector: mirrored rotations turn about −M a, so a′ = −M a keeps θ.
      sign = s if jtype == _SLIDE else -s
      joint_sign[j] = qpos_sign[qa] = qvel_sign[va] = sign

  body_twin = _derive_body_twins(model, joint_twin, pairs)
  for b in range(model.nbody):  # a wrong pairing (thigh with shin); CAD-level differences
    # between twins are asymmetries of the model (`asymmetry.find_asymmetries`), not errors
    if not np.isclose(model.body_mass[b], model.body_mass[body_twin[b]], rtol=0.05):
      raise ReflectionError(f"body {b} and its mirror {body_twin[b]} have different masses")
  mocap_twin = np.arange(model.nmocap)
  for b in range(model.nbody):
    if model.body_mocapid[b] >= 0:
      mocap_twin[model.body_mocapid[b]] = model.body_mocapid[body_twin[b]]

  return StateMap(
      plane=plane,
      qpos=SignedPermutation.create(qpos_perm, qpos_sign, what="qpos map"),
      qvel=SignedPermutation.create(qvel_perm, qvel_sign, what="qvel map"),
      body=tuple(int(b) for b in body_twin),
      actuator=_derive_actuator_map(model, joint_twin, joint_sign),
      mocap=tuple(int(m) for m in mocap_twin),
      pairs=tuple(tuple(p) for p in pairs))


def _derive_body_twins(model, joint_twin, pairs) -> np.ndarray:
  names = _names(model, mujoco.mjtObj.mjOBJ_BODY, model.nbody)
  ids = {n: i for i, n in enumerate(names) if n}
  twin = np.arange(model.nbody)
  for b in range(model.nbody):
    if model.body_jntnum[b] > 0:  # bodies with joints follow their joints (ant bodies are unnamed)
      twin[b] = model.jnt_bodyid[joint_twin[model.body_jntadr[b]]]
    elif twin_name(names[b], pairs) in ids:
      twin[b] = ids[twin_name(names[b], pairs)]
  if np.any(twin[twin] != np.arange(model.nbody)):
    raise ReflectionError(f"body mirror pairing is not an involution: {twin.tolist()}")
  return twin


def _actuator_target(model, a, joint_twin, joint_sign) -> tuple[tuple, tuple]:
  """Qpos-space coefficient vector an actuator pushes along, and that of its mirror image."""
  coef = np.zeros(model.njnt)
  trn = model.actuator_trnid[a, 0]
  if model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_JOINT:
    coef[trn] = 1.0
  elif model.actuator_trntype[a] == mujoco.mjtTrn.mjTRN_TENDON:
    start, num = model.tendon_adr[trn], model.tendon_num[trn]
    for w in range(start, start + num):
      if model.wrap_type[w] != mujoco.mjtWrap.mjWRAP_JOINT:
        raise ReflectionError(f"actuator {a}: only fixed (joint) tendons can be mirrored")
      coef[model.wrap_objid[w]] = model.wrap_prm[w]
  else:
    raise ReflectionError(f"actuator {a}: transmission type {model.actuator_trntype[a]} "
                          "is not supported (joint or fixed tendon only)")
  mirrored = np.zeros_like(coef)
  mirrored[joint_twin] = coef * joint_sign
  return coef * model.actuator_gear[a, 0], mirrored * model.actuator_gear[a, 0]


def _derive_actuator_map(model, joint_twin, joint_sign) -> SignedPermutation:
  targets = [_actuator_target(model, a, joint_twin, joint_sign) for a in range(model.nu)]
  perm, sign = np.arange(model.nu), np.ones(model.nu)
  for a, (_, mirrored) in enumerate(targets):
    for b, (coef, _) in enumerate(targets):
      s = _closest_sign(coef, mirrored, 1.0, 1e-9)
      if s and np.any(coef):
        perm[a], sign[a] = b, s
        break
    else:
      raise ReflectionError(f"actuator {a} has no mirror-image actuator (gear or joint differs)")
  # Differing control ranges or gains are model asymmetries (find_asymmetries lists them).
  return SignedPermutation.create(perm, sign, what="action map")


# --- observation layouts --------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Qpos:
  """qpos[start:stop]."""
  start: int = 0
  stop: int | None = None


@dataclasses.dataclass(frozen=True)
class Qvel:
  """qvel[start:stop] (also any dof-space vector: qfrc_actuator, qfrc_constraint, ...)."""
  start: int = 0
  stop: int | None = None


@dataclasses.dataclass(frozen=True)
class Invariant:
  """`size` mirror-invariant scalars (heights, cosines, ...)."""
  size: int = 1


@dataclasses.dataclass(frozen=True)
class BodyInertia:
  """Per body (world excluded): 3×3 world-frame inertia flattened, then mass (brax cinert)."""


@dataclasses.dataclass(frozen=True)
class BodyVelocity:
  """Per body (world excluded): linear (3) then angular (3) velocity."""


@dataclasses.dataclass(frozen=True)
class BodyVectors:
  """One 3-vector per named body, in the world or a mirror-symmetric body frame.

  axial=True for pseudovectors (angular quantities): they map by −M instead of M.
  """
  bodies: tuple[str, ...]
  axial: bool = False


@dataclasses.dataclass(frozen=True)
class BodyRotationEntries:
  """Entries (i, j) of each body's rotation matrix (world excluded); R ↦ M R M."""
  entries: tuple[tuple[int, int], ...]


@dataclasses.dataclass(frozen=True)
class Actuators:
  """One value per actuator (last action, motor targets, actuator forces): the action map."""


@dataclasses.dataclass(frozen=True)
class Command:
  """A locomotion command (v_x, v_y, yaw rate) in the robot's heading frame: the velocities
  map by M, the yaw rate (an angular velocity about z) by −M; for plane y: (v_x, −v_y, −ω)."""


@dataclasses.dataclass(frozen=True)
class Named:
  """Per named part (feet, hands: sites or geoms named like the joints), in the given order,
  `width` mirror-invariant scalars (contact flags, air times, gait phases) or, with
  vector="polar"/"axial", one 3-vector (polar maps by M, axial by −M). Twins are found by
  the task's name pairs, so (FR, FL, RR, RL) swaps FR↔FL and RR↔RL."""
  names: tuple[str, ...]
  width: int = 1
  vector: str | None = None


Block = (Qpos | Qvel | Invariant | BodyInertia | BodyVelocity | BodyVectors | BodyRotationEntries
         | Actuators | Command | Named)


def _sub_map(m: SignedPermutation, start: int, stop: int | None, what: str):
  stop = m.size if stop is None else stop
  perm = np.asarray(m.perm[start:stop])
  if np.any((perm < start) | (perm >= stop)):
    raise ReflectionError(f"{what}[{start}:{stop}] is not closed under the reflection")
  return perm - start, np.asarray(m.sign[start:stop])


def _per_body(body_twin: Sequence[int], block_sign: np.ndarray):
  """Layout over bodies 1..n-1 with a fixed sign pattern per body block."""
  bodies = np.asarray(body_twin[1:]) - 1
  width = block_sign.size
  perm = (bodies[:, None] * width + np.arange(width)).reshape(-1)
  return perm, np.tile(block_sign, bodies.size)


def _named_map(block: Named, state: StateMap):
  names = list(block.names)
  twins = [twin_name(n, state.pairs) for n in names]
  missing = [t for t in twins if t not in names]
  if missing:
    raise ReflectionError(f"Named {block.names}: mirror partners {missing} are not listed")
  order = np.asarray([names.index(t) for t in twins])
  if block.vector is None:
    width, part_sign = block.width, np.ones(block.width)
  elif block.vector in ("polar", "axial"):
    width, part_sign = 3, (state.diag if block.vector == "polar" else -state.diag)
  else:
    raise ValueError(f"Named.vector must be None, 'polar' or 'axial', got {block.vector!r}")
  perm = (order[:, None] * width + np.arange(width)).reshape(-1)
  return perm, np.tile(part_sign, len(names))


def observation_map(model: mujoco.MjModel, state: StateMap,
                    layout: Sequence[Block]) -> SignedPermutation:
  """Concatenates the per-block maps of an observation layout into one signed permutation."""
  m = state.diag
  perms, signs, offset = [], [], 0
  for block in layout:
    if isinstance(block, Qpos):
      perm, sign = _sub_map(state.qpos, block.start, block.stop, "qpos")
    elif isinstance(block, Qvel):
      perm, sign = _sub_map(state.qvel, block.start, block.stop, "qvel")
    elif isinstance(block, Invariant):
      perm, sign = np.arange(block.size), np.ones(block.size)
    elif isinstance(block, BodyInertia):
      perm, sign = _per_body(state.body, np.append(np.outer(m, m).reshape(-1), 1.0))
    elif isinstance(block, BodyVelocity):
      perm, sign = _per_body(state.body, np.concatenate([m, -m]))
    elif isinstance(block, BodyRotationEntries):
      perm, sign = _per_body(state.body, np.array([m[i] * m[j] for i, j in block.entries]))
    elif isinstance(block, BodyVectors):
      ids = [model.body(n).id for n in block.bodies]
      order = [ids.index(state.body[b]) if state.body[b] in ids else -1 for b in ids]
      if -1 in order:
        raise ReflectionError(f"BodyVectors {block.bodies}: a mirror partner is missing")
      perm = (np.asarray(order)[:, None] * 3 + np.arange(3)).reshape(-1)
      sign = np.tile(-m if block.axial else m, len(ids))
    elif isinstance(block, Actuators):
      perm, sign = np.asarray(state.actuator.perm), np.asarray(state.actuator.sign)
    elif isinstance(block, Command):
      perm, sign = np.arange(3), np.array([m[0], m[1], -m[2]])
    elif isinstance(block, Named):
      perm, sign = _named_map(block, state)
    else:
      raise TypeError(f"unknown observation block {block!r}")
    perms.append(np.asarray(perm) + offset)
    signs.append(sign)
    offset += len(perm)
  return SignedPermutation.create(np.concatenate(perms), np.concatenate(signs),
                                  what="observation map")
