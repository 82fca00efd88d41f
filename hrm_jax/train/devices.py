"""Accelerators, one row per device kind: the peak FLOP/s the MFU divides by (training loop,
preflight, bench, estimate), the memory the launch plan fills, and the price the estimate
charges. The one table of them."""

from __future__ import annotations

import dataclasses

import jax


@dataclasses.dataclass(frozen=True)
class Device:
  name: str  # as jax reports `device_kind`, matched as a substring
  platform: str  # "gpu" or "tpu"
  memory_gib: float  # per device
  # Dense peak FLOP/s per device by compute dtype (vendor data sheets). fp32 on GPUs runs on
  # tensor cores as TF32 under JAX's default matmul precision.
  peak_flops: dict[str, float]
  price: float  # USD per device-hour on demand (cloud list prices; they vary by region and deal)


def _peaks(bfloat16: float, float32: float) -> dict[str, float]:
  return {"bfloat16": bfloat16, "float32": float32}


DEVICES = (
    Device("H100", "gpu", 80, _peaks(989e12, 494e12), 3.00),
    Device("H200", "gpu", 141, _peaks(989e12, 494e12), 3.80),
    Device("A100", "gpu", 80, _peaks(312e12, 156e12), 1.80),
    Device("TPU v4", "tpu", 32, _peaks(275e12, 275e12), 3.22),
    Device("TPU v5 lite", "tpu", 16, _peaks(197e12, 197e12), 1.20),
    Device("TPU v5p", "tpu", 95, _peaks(459e12, 459e12), 4.20),
    Device("TPU v6 lite", "tpu", 32, _peaks(918e12, 918e12), 2.70),
)
# The short names people type (and Cloud TPU type families) for the names above, and the
# `device_kind` jax reports for a v5p chip ("TPU v5", no suffix).
ALIASES = {"v4": "TPU v4", "v5e": "TPU v5 lite", "v5litepod": "TPU v5 lite", "v5p": "TPU v5p",
           "TPU v5": "TPU v5p", "v6e": "TPU v6 lite"}
KNOWN = sorted([d.name for d in DEVICES] + list(ALIASES))


def find(name: str) -> Device | None:
  """The device a name refers to: an alias, a table name, or a `device_kind` containing one
  ("NVIDIA H100 80GB HBM3"); None if none."""
  key = ALIASES.get(name, name).lower()
  return next((d for d in DEVICES if d.name.lower() in key), None)


def peak_flops(compute_dtype: str, device=None) -> float | None:
  """Peak FLOP/s of one (by default the first) jax device for `compute_dtype`, or None where
  unknown (CPUs)."""
  found = find((device or jax.devices()[0]).device_kind)
  return found.peak_flops.get(compute_dtype) if found else None
