"""Reflections (signed permutations), maps derived from MuJoCo models, registry, verifier."""

from reflex_jax.symmetry.reflection import Reflection, ReflectionError, SignedPermutation
from reflex_jax.symmetry.registry import (NoReflectionError, SymmetrySpec,
                                          UnknownEnvironmentError, get, symmetric_env_ids)

__all__ = ["NoReflectionError", "Reflection", "ReflectionError", "SignedPermutation",
           "SymmetrySpec", "UnknownEnvironmentError", "get", "symmetric_env_ids"]
