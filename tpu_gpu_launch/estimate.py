"""Time and cost of an HRM-Text training run from its model FLOPs and a measured MFU.

    python -m tpu_gpu_launch.estimate --config experiments/hrm/XL.yaml --devices 16 --device H100 --mfu 0.4
    python -m tpu_gpu_launch.estimate --config experiments/hrm/B.yaml --devices 8 --device H100 \\
        --metrics runs/hrm-B/metrics.jsonl        # the MFU this run measured
    python -m tpu_gpu_launch.estimate --config experiments/hrm/XL.yaml --devices 16 --device H100 \\
        --target-hours 46                         # the MFU the paper's 16 H100 × ~46 h implies

FLOPs per token follow the bp_steps schedule step by step (the window grows 2 → 5, so early
steps are cheaper), counted as in hrm_jax.model.flops (the MFU convention: recomputation from
remat is not counted). Take the MFU from `bench/accelerator.py`, the preflight, or a run's
metrics.jsonl on the same device kind. Peaks and prices are hrm_jax/train/devices.py's (prices
are rough on-demand list prices per device-hour); pass --price for yours.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import functools
import statistics
import sys

from hrm_jax.model.flops import train_flops
from hrm_jax.train.config import (ConfigError, ScheduleConfig, TrainConfig, load_config,
                                  model_config)
from hrm_jax.train.metrics import read_metrics
from tpu_gpu_launch.plan import PlanError, device_spec

@dataclasses.dataclass
class Estimate:
  steps: int
  tokens: float
  flops_per_token: float  # mean over the bp_steps schedule
  total_flops: float
  peak_flops: float       # per device, the config's compute dtype
  devices: int
  mfu: float
  hours: float
  cost: float

  def describe(self) -> str:
    return "\n".join([
        f"steps               {self.steps:,}",
        f"tokens              {self.tokens:.3g}",
        f"model FLOPs/token   {self.flops_per_token / 1e9:.2f} GFLOP (mean over the bp schedule)",
        f"total model FLOPs   {self.total_flops:.3g}",
        f"devices × peak      {self.devices} × {self.peak_flops / 1e12:.0f} TFLOP/s",
        f"MFU                 {self.mfu:.1%}",
        f"tokens/s            {self.tokens / (self.hours * 3600):,.0f}",
        f"wall-clock          {self.hours:.1f} h ({self.hours / 24:.1f} days)",
        f"device-hours        {self.hours * self.devices:,.0f}",
        f"approximate cost    ${self.cost:,.0f}",
    ])


def _check_devices(devices: int) -> None:
  if devices < 1:
    raise PlanError(f"--devices {devices}: must be positive")


def schedule_flops(config: TrainConfig) -> tuple[int, float]:
  """(steps, mean train FLOPs per token over the run), following the bp_steps schedule."""
  s = config.schedule
  return s.steps, _mean_flops_per_token(model_config(config), config.data.seq_len,
                                        dataclasses.astuple(s))


@functools.lru_cache(maxsize=8)  # one pass over every step; --target-hours asks twice
def _mean_flops_per_token(model, seq_len: int, schedule: tuple) -> float:
  s = ScheduleConfig(*schedule)
  scheduled = collections.Counter(s.bp_steps(update) for update in range(1, s.steps + 1))
  return sum(n * train_flops(model, seq_len, model.window(bp))
             for bp, n in scheduled.items()) / s.steps


def peak_flops(config: TrainConfig, device: str) -> float:
  spec = device_spec(device)
  dtype = model_config(config).compute_dtype
  peak = spec.peak_flops.get(dtype)
  if peak is None:
    raise PlanError(f"no peak FLOP/s known for {spec.name} in {dtype}")
  return peak


def measured_mfu(path: str, skip: int = 1) -> float:
  """The median MFU of a run's metric lines (the first `skip` lines include compilation)."""
  values = [m["mfu"] for m in read_metrics(path)[skip:] if "mfu" in m]
  if not values:
    raise PlanError(f"{path} has no mfu values after the first {skip} line(s): log.peak_flops "
                    "was unknown for that device, or the run is too short")
  return statistics.median(values)


def estimate(config: TrainConfig, devices: int, device: str, mfu: float,
             price: float | None = None) -> Estimate:
  _check_devices(devices)
  if not 0 < mfu <= 1:
    raise PlanError(f"MFU must be in (0, 1], got {mfu}")
  if price is not None and price < 0:
    raise PlanError(f"--price {price}: must not be negative")
  steps, per_token = schedule_flops(config)
  tokens = float(steps) * config.data.batch_size * config.data.seq_len
  peak = peak_flops(config, device)
  hours = tokens * per_token / (devices * peak * mfu) / 3600
  rate = device_spec(device).price if price is None else price
  return Estimate(steps, tokens, per_token, tokens * per_token, peak, devices, mfu, hours,
                  hours * devices * rate)


def mfu_for_hours(config: TrainConfig, devices: int, device: str, hours: float) -> float:
  """The MFU at which the run takes `hours`."""
  _check_devices(devices)
  if not hours > 0:
    raise PlanError(f"--target-hours {hours}: must be positive")
  steps, per_token = schedule_flops(config)
  tokens = float(steps) * config.data.batch_size * config.data.seq_len
  return tokens * per_token / (devices * peak_flops(config, device) * hours * 3600)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m tpu_gpu_launch.estimate", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", action="append", default=[], required=True, metavar="FILE")
  parser.add_argument("--devices", type=int, required=True)
  parser.add_argument("--device", required=True, help="H100, H200, A100, v4, v5e, v5p, v6e")
  source = parser.add_mutually_exclusive_group(required=True)
  source.add_argument("--mfu", type=float, help="measured model-FLOPs utilization, e.g. 0.42")
  source.add_argument("--metrics", help="a run's metrics.jsonl: its median MFU is used")
  source.add_argument("--target-hours", type=float,
                      help="print the MFU needed to finish in this many hours")
  parser.add_argument("--price", type=float, default=None, help="USD per device-hour")
  parser.add_argument("overrides", nargs="*", metavar="key=value")
  args = parser.parse_intermixed_args(argv)
  try:
    config = load_config(args.config, args.overrides)
    if args.target_hours is not None:
      mfu = mfu_for_hours(config, args.devices, args.device, args.target_hours)
      print(f"{args.target_hours:g} h on {args.devices} × {device_spec(args.device).name} needs "
            f"MFU {mfu:.1%}")
      if mfu > 1:
        print("  (over 100 %: not reachable on this many devices)")
      mfu = min(mfu, 1.0)
    else:
      mfu = args.mfu if args.mfu is not None else measured_mfu(args.metrics)
    print(estimate(config, args.devices, args.device, mfu, args.price).describe())
  except (ConfigError, PlanError, FileNotFoundError) as error:
    parser.exit(2, f"estimate error: {error}\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
