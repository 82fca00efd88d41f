"""Workarounds for known incompatibilities in the pinned simulators, applied by the adapters
(envs/brax.py, envs/playground.py) when they first make an environment.

Each one is applied only where the problem exists, so an upgrade that fixes it upstream
makes it a no-op.
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import mujoco


def _accepts_a_min() -> bool:
  try:
    jnp.clip(jnp.zeros(()), a_min=0.0)
    return True
  except TypeError:
    return False


class _NumpyWithLegacyClip(types.SimpleNamespace):
  """jax.numpy with `clip(a_min=, a_max=)` mapped to `clip(min=, max=)` (removed in jax 0.10)."""

  def __getattr__(self, name):
    return getattr(jnp, name)

  @staticmethod
  def clip(x, min=None, max=None, *, a_min=None, a_max=None):  # pylint: disable=redefined-builtin
    return jnp.clip(x, a_min if min is None else min, a_max if max is None else max)


def patch_brax_fluid(force: bool = False) -> bool:
  """brax.fluid (used by brax/swimmer) calls jp.clip(a_min=...); give it a tolerant jp."""
  from brax import fluid  # pylint: disable=import-outside-toplevel
  if force or not _accepts_a_min():
    fluid.jp = _NumpyWithLegacyClip()
    return True
  return False


class _JaxWithLegacyReplication(types.SimpleNamespace):
  """jax with `device_put_replicated` (removed from the public namespace in jax 0.11; jax
  keeps it internally)."""

  def __getattr__(self, name):
    return getattr(jax, name)

  @staticmethod
  def device_put_replicated(x, devices):
    from jax._src import api  # pylint: disable=import-outside-toplevel
    return api.device_put_replicated(x, devices)


def patch_brax_training(force: bool = False) -> bool:
  """brax.training 0.14 (PPO, SAC, pmap helpers) calls jax.device_put_replicated, which jax
  0.11 no longer exports; give those modules a jax that has it. The benchmarks' peer runs."""
  try:
    jax.device_put_replicated  # pylint: disable=pointless-statement
    if not force:
      return False
  except AttributeError:
    pass
  import importlib  # pylint: disable=import-outside-toplevel
  for name in ("brax.training.agents.ppo.train", "brax.training.agents.sac.train",
               "brax.training.pmap"):
    importlib.import_module(name).jax = _JaxWithLegacyReplication()
  return True


def _version_tuple(version: str) -> tuple[int, ...]:
  return tuple(int(p) for p in version.split(".")[:3] if p.isdigit())


def patch_playground_reacher(force: bool = False) -> bool:
  """playground 0.2.0 compares mujoco versions as strings ("3.17.0" < "3.3.0") and then
  calls MjSpec.find_body, which mujoco ≥ 3.3 no longer has; ReacherEasy/Hard fail to load."""
  newer = _version_tuple(mujoco.__version__) >= (3, 3, 0)
  if not force and not (newer and mujoco.__version__ < "3.3.0"):
    return False
  from mujoco_playground._src.dm_control_suite import reacher  # pylint: disable=import-outside-toplevel

  def make_model(xml_path, target_size, assets):
    spec = mujoco.MjSpec.from_string(xml_path.read_text(), assets)
    spec.body("target").first_geom().size[0] = target_size
    return spec.compile()

  reacher._make_model = make_model  # pylint: disable=protected-access
  return True
