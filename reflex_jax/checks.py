"""Value checks for the config dataclasses' `__post_init__`: each names the field and value.

Written as `not low <= x < inf` rather than `x < low` so that NaN and inf fail too.
"""

from __future__ import annotations

import math


def _fail(owner, name: str, rule: str):
  raise ValueError(f"{type(owner).__name__}.{name} must be {rule}, got {getattr(owner, name)!r}")


def positive(owner, *names: str) -> None:
  """Each field > 0 (None is left to the field's own meaning, e.g. "off")."""
  for name in names:
    value = getattr(owner, name)
    if value is not None and not 0 < value < math.inf:
      _fail(owner, name, "finite and > 0")


def non_negative(owner, *names: str) -> None:
  for name in names:
    value = getattr(owner, name)
    if value is not None and not 0 <= value < math.inf:
      _fail(owner, name, "finite and >= 0")


def in_unit_interval(owner, *names: str) -> None:
  """Each field in [0, 1] (discounts, GAE λ)."""
  for name in names:
    value = getattr(owner, name)
    if value is not None and not 0.0 <= value <= 1.0:
      _fail(owner, name, "in [0, 1]")

