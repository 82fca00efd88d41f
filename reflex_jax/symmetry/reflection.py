"""Signed-permutation reflections of observations and actions.

A reflection g = (g_s, g_a) acts on a vector by ``new[i] = sign[i] * old[perm[i]]``.
Every map used by Reflex is such a signed permutation and an involution (g∘g = id);
both facts are checked when a `Reflection` is built, so a typo in a table fails at
construction with the offending index named, not later as a silent training bug.
"""

from __future__ import annotations

import dataclasses
from typing import Literal, Sequence

import jax.numpy as jnp
import numpy as np

Kind = Literal["axial", "bilateral"]
KINDS: tuple[str, ...] = ("axial", "bilateral")


class ReflectionError(ValueError):
  """A signed permutation that is not a valid reflection."""


@dataclasses.dataclass(frozen=True)
class SignedPermutation:
  """``x ↦ sign * x[..., perm]`` on the last axis; hashable, so usable as a jit static."""

  perm: tuple[int, ...]
  sign: tuple[float, ...]

  @classmethod
  def create(cls, perm: Sequence[int], sign: Sequence[float] | None = None,
             *, what: str = "map") -> "SignedPermutation":
    perm_arr = np.asarray(perm, dtype=np.int64).reshape(-1)
    n = perm_arr.size
    sign_arr = np.ones(n) if sign is None else np.asarray(sign, dtype=np.float64).reshape(-1)
    if sign_arr.size != n:
      raise ReflectionError(f"{what}: perm has {n} entries but sign has {sign_arr.size}")
    if not np.all(np.isin(sign_arr, (-1.0, 1.0))):
      bad = np.flatnonzero(~np.isin(sign_arr, (-1.0, 1.0)))
      raise ReflectionError(f"{what}: signs must be ±1, got {sign_arr[bad].tolist()} at {bad.tolist()}")
    if sorted(perm_arr.tolist()) != list(range(n)):
      raise ReflectionError(f"{what}: perm is not a permutation of 0..{n - 1}: {perm_arr.tolist()}")
    not_involution = np.flatnonzero(perm_arr[perm_arr] != np.arange(n))
    if not_involution.size:
      i = int(not_involution[0])
      raise ReflectionError(
          f"{what}: not an involution: index {i} -> {perm_arr[i]} -> {perm_arr[perm_arr[i]]}")
    sign_mismatch = np.flatnonzero(sign_arr * sign_arr[perm_arr] != 1.0)
    if sign_mismatch.size:
      i = int(sign_mismatch[0])
      raise ReflectionError(
          f"{what}: not an involution: sign[{i}]={sign_arr[i]:+g} but its twin "
          f"sign[{perm_arr[i]}]={sign_arr[perm_arr[i]]:+g}; twins must share a sign")
    return cls(tuple(int(p) for p in perm_arr), tuple(float(s) for s in sign_arr))

  @classmethod
  def from_negated(cls, size: int, negated: Sequence[int], perm: Sequence[int] | None = None,
                   *, what: str = "map") -> "SignedPermutation":
    """Builds from the list of negated indices (the way maps are written in tables)."""
    sign = np.ones(size)
    sign[list(negated)] = -1.0
    return cls.create(range(size) if perm is None else perm, sign, what=what)

  @property
  def size(self) -> int:
    return len(self.perm)

  @property
  def matrix(self) -> np.ndarray:
    """The matrix P with ``P @ x == apply(x)``."""
    out = np.zeros((self.size, self.size))
    out[np.arange(self.size), self.perm] = self.sign
    return out

  @property
  def unsigned(self) -> "SignedPermutation":
    """The same permutation without signs (how a positive scale vector maps)."""
    return SignedPermutation(self.perm, (1.0,) * self.size)

  def apply(self, x: jnp.ndarray) -> jnp.ndarray:
    """Maps the last axis of ``x``; works on single vectors and any batch, inside jit/vmap.
    Boolean arrays (contact flags) are only permuted."""
    if x.shape[-1] != self.size:
      raise ReflectionError(f"expected last axis of size {self.size}, got shape {tuple(x.shape)}")
    out = x[..., jnp.asarray(self.perm)]
    return out if x.dtype == jnp.bool_ else out * jnp.asarray(self.sign, dtype=x.dtype)

  def __call__(self, x: jnp.ndarray) -> jnp.ndarray:
    return self.apply(x)


@dataclasses.dataclass(frozen=True)
class Reflection:
  """g = (g_s, g_a): a reflection of an environment's observations and actions.

  kind: "axial" (the whole task mirrored across a plane, pure sign flips) or
  "bilateral" (a left–right body mirrored across its sagittal plane, limbs swap).
  plane: the mirror plane in the world frame, as the axis it negates ("x", "y", "z").
  """

  obs: SignedPermutation
  action: SignedPermutation
  kind: Kind
  plane: str

  def __post_init__(self):
    if self.kind not in KINDS:
      raise ReflectionError(f"kind must be one of {KINDS}, got {self.kind!r}")
    if self.plane not in ("x", "y", "z"):
      raise ReflectionError(f"plane must name the negated axis 'x', 'y' or 'z', got {self.plane!r}")

  @classmethod
  def create(cls, *, obs_perm: Sequence[int], obs_sign: Sequence[float],
             action_perm: Sequence[int], action_sign: Sequence[float], kind: Kind,
             plane: str) -> "Reflection":
    return cls(SignedPermutation.create(obs_perm, obs_sign, what="observation map"),
               SignedPermutation.create(action_perm, action_sign, what="action map"), kind, plane)

  @property
  def obs_size(self) -> int:
    return self.obs.size

  @property
  def action_size(self) -> int:
    return self.action.size

  @property
  def obs_matrix(self) -> np.ndarray:
    return self.obs.matrix

  @property
  def action_matrix(self) -> np.ndarray:
    return self.action.matrix

  def check_sizes(self, obs_size: int, action_size: int, *, name: str = "environment") -> None:
    if (obs_size, action_size) != (self.obs_size, self.action_size):
      raise ReflectionError(
          f"{name} has {obs_size} observations / {action_size} actions but its reflection maps "
          f"{self.obs_size} / {self.action_size}")

  def reflect_obs(self, obs: jnp.ndarray) -> jnp.ndarray:
    return self.obs.apply(obs)

  def reflect_action(self, action: jnp.ndarray) -> jnp.ndarray:
    return self.action.apply(action)
