"""HRM-Text on a topology: the mesh, rows per device and gradient accumulation that realize a
global token batch, from the config, the device count and the device's memory.

    python -m tpu_gpu_launch.plan --config experiments/hrm/XL.yaml --devices 16 --hosts 2 --device H100
    python -m tpu_gpu_launch.plan --config experiments/hrm/B.yaml --devices 8 --device v5e --overrides

`--overrides` prints only the key=value list that `python -m hrm_jax.train` takes; the launch
scripts pass it on. The plan is arithmetic (no devices needed); the memory figure is an
estimate, and `python -m tpu_gpu_launch.preflight` measures the compiled step on the real devices.

Mesh choice: one TPU slice is connected by ICI, so parameters are sharded (FSDP) over every
chip. GPUs are fast within a node (NVLink) and slower across nodes, so FSDP stays inside a node
and nodes split the batch (data parallel) whenever the sharded state fits a node; otherwise FSDP
spans all GPUs. Tensor parallelism enters only when there are more devices than rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from hrm_jax.model.config import ModelConfig
from hrm_jax.model.flops import parameter_count
from hrm_jax.train.devices import ALIASES, KNOWN, Device, find
from hrm_jax.train.config import ConfigError, TrainConfig, load_config, model_config
from hrm_jax.train.sharding import MeshConfig

GIB = 2**30

# Of each device's memory, the share the plan fills: XLA_PYTHON_CLIENT_MEM_FRACTION=0.90 in
# env.sh on GPUs, and a margin for fragmentation and the estimate's error.
USABLE = 0.85
STATE_BYTES_PER_PARAM = 20  # fp32 params, Adam m and v, EMA, gradient


class PlanError(ValueError):
  """The global batch cannot be laid out on this topology; the message says why."""


def tpu_topology(accelerator_type: str) -> tuple[int, int, str]:
  """(chips, hosts, device) of a Cloud TPU type: v4-N and v5p-N count TensorCores (2 per
  chip), v5litepod-N and v6e-N count chips; a host holds 4 chips, or up to 8 in the
  single-host v5e/v6e shapes."""
  family, _, size = accelerator_type.rpartition("-")
  if not size.isdigit() or family not in ("v4", "v5p", "v5litepod", "v6e"):
    raise PlanError(f"unknown TPU type {accelerator_type!r}; expected v4-N, v5p-N, "
                    "v5litepod-N or v6e-N")
  n = int(size)
  if family in ("v4", "v5p"):
    chips = max(1, n // 2)
    return chips, max(1, chips // 4), ALIASES[family]
  return n, 1 if n <= 8 else n // 4, ALIASES[family]


def device_spec(name: str) -> Device:
  """The device (hrm_jax/train/devices.py) for a name like H100, v5e or 'TPU v5 lite'."""
  found = find(name)
  if found is None:
    raise PlanError(f"unknown device {name!r}; known: {KNOWN}")
  return found


def state_bytes(model: ModelConfig) -> float:
  return STATE_BYTES_PER_PARAM * parameter_count(model)


def activation_bytes_per_row(model: ModelConfig, seq_len: int, bp_steps: int) -> float:
  """Bytes one row of `seq_len` tokens keeps alive for the backward pass (an estimate).

  Only the stack calls inside the gradient window store activations. Per block and token, the
  remat policy decides what is kept: `dots_no_batch` keeps the projections (q, k, v, gate: 4W;
  gate/up: 2F; o and down: 2D) and the block input (D); `full` only the input; `dots` adds the
  attention scores (heads × keys, fp32); `none` about twice that. On top: the fp32 logits and
  their gradient, and one block's attention scores being recomputed.
  """
  d, w, f = model.hidden_size, model.attention_width, model.mlp_width
  scores = model.num_attention_heads * seq_len * 4
  dtype_bytes = 4 if model.compute_dtype == "float32" else 2
  per_block = {"full": d * dtype_bytes,
               "dots_no_batch": (4 * w + 2 * f + 3 * d) * dtype_bytes}
  per_block["dots"] = per_block["dots_no_batch"] + scores
  per_block["none"] = 2 * per_block["dots"]
  calls = sum(model.gradient_calls(model.window(bp_steps)))
  kept = calls * model.num_layers_per_stack * per_block[model.remat]
  logits = 3 * model.vocab_size * 4
  return seq_len * (kept + logits + 2 * scores)


@dataclasses.dataclass
class Plan:
  device: str
  devices: int
  hosts: int
  mesh: MeshConfig
  batch_size: int          # rows per optimizer step (global)
  accumulation: int        # microbatches per optimizer step
  rows_per_device: int     # rows one device holds in one microbatch
  memory_gib: float        # estimated peak per device
  memory_limit_gib: float  # the share of the device's memory the plan may fill

  def overrides(self) -> list[str]:
    m = self.mesh
    return [f"mesh.data={m.data}", f"mesh.fsdp={m.fsdp}", f"mesh.tensor={m.tensor}",
            f"data.batch_size={self.batch_size}", f"schedule.accumulation={self.accumulation}"]

  def describe(self) -> str:
    m = self.mesh
    return (f"{self.devices} × {self.device} on {self.hosts} host(s): mesh data={m.data} "
            f"fsdp={m.fsdp} tensor={m.tensor}; {self.batch_size} rows per step = "
            f"{self.accumulation} microbatch(es) × {self.rows_per_device} row(s) per device; "
            f"≈{self.memory_gib:.1f} GiB of {self.memory_limit_gib:.0f} GiB usable per device "
            "(estimate: the preflight measures it)")


def plan(config: TrainConfig, devices: int, device: str, hosts: int = 1,
         global_tokens: int | None = None, max_rows_per_device: int | None = None) -> Plan:
  """The layout of `global_tokens` per optimizer step (default: the config's
  data.batch_size × data.seq_len) on `devices` devices of kind `device` over `hosts` hosts."""
  spec = device_spec(device)
  name, memory, platform = spec.name, spec.memory_gib, spec.platform
  for flag, value in (("--devices", devices), ("--hosts", hosts),
                      ("--global-tokens", global_tokens),
                      ("--max-rows-per-device", max_rows_per_device)):
    if value is not None and value < 1:
      raise PlanError(f"{flag} {value}: must be positive")
  if devices % hosts:
    raise PlanError(f"{devices} devices do not spread evenly over {hosts} hosts")
  model = model_config(config)
  seq_len = config.data.seq_len
  tokens = global_tokens if global_tokens is not None else config.data.batch_size * seq_len
  if tokens % seq_len:
    raise PlanError(f"a global batch of {tokens} tokens is not a whole number of "
                    f"{seq_len}-token rows")
  rows = tokens // seq_len
  limit = USABLE * memory * GIB

  # Tensor parallelism only when there are fewer rows than devices.
  tensor = next((t for t in range(1, devices + 1)
                 if devices % t == 0 and rows % (devices // t) == 0
                 and model.num_attention_heads % t == 0 and model.mlp_width % t == 0), None)
  if tensor is None:
    raise PlanError(f"{rows} rows per step cannot be laid out on {devices} devices: the rows "
                    "must divide over the batch devices (devices / tensor) and the tensor split "
                    f"must divide the {model.num_attention_heads} heads; choose a global batch "
                    "that is a multiple of the device count")
  batch_axes = devices // tensor
  per_host = batch_axes // hosts if batch_axes % hosts == 0 else None
  node_local = (platform == "gpu" and hosts > 1 and per_host
                and state_bytes(model) / (per_host * tensor) <= 0.4 * limit)
  mesh = (MeshConfig(data=hosts, fsdp=per_host, tensor=tensor) if node_local
          else MeshConfig(data=1, fsdp=batch_axes, tensor=tensor))

  state = state_bytes(model) / (mesh.fsdp * mesh.tensor)
  per_row = activation_bytes_per_row(model, seq_len, config.schedule.bp_end) / tensor
  fit = int((limit - state) // per_row)
  if max_rows_per_device is not None:
    fit = min(fit, max_rows_per_device)
  rows_each = rows // batch_axes
  if fit < 1:
    raise PlanError(
        f"model {config.model.preset} does not fit: ≈{state / GIB:.1f} GiB of state plus "
        f"≈{per_row / GIB:.1f} GiB per {seq_len}-token row on a {memory} GiB {name}; use more "
        "devices, remat: full, or a shorter data.seq_len")
  accumulation = next(a for a in range(1, rows_each + 1)
                      if rows_each % a == 0 and rows_each // a <= fit)
  micro = rows_each // accumulation
  return Plan(name, devices, hosts, mesh, rows, accumulation, micro,
              (state + micro * per_row) / GIB, limit / GIB)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m tpu_gpu_launch.plan", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", action="append", default=[], required=True, metavar="FILE")
  parser.add_argument("--tpu", metavar="TYPE",
                      help="a Cloud TPU type (v5litepod-16, v4-32, …): sets devices, hosts, device")
  parser.add_argument("--devices", type=int, help="all devices of the job")
  parser.add_argument("--hosts", type=int, default=1, help="processes / nodes / TPU workers")
  parser.add_argument("--device",
                      help=f"device kind: {', '.join(KNOWN)}")
  parser.add_argument("--global-tokens", type=int, default=None,
                      help="tokens per optimizer step (default: data.batch_size × seq_len)")
  parser.add_argument("--max-rows-per-device", type=int, default=None,
                      help="cap the microbatch (e.g. after the preflight measured memory)")
  parser.add_argument("--overrides", action="store_true",
                      help="print only the key=value overrides for python -m hrm_jax.train")
  parser.add_argument("config_overrides", nargs="*", metavar="key=value")
  args = parser.parse_intermixed_args(argv)
  try:
    if args.tpu:
      args.devices, args.hosts, args.device = tpu_topology(args.tpu)
    elif args.devices is None or args.device is None:
      raise PlanError("give --tpu TYPE, or --devices and --device")
    config = load_config(args.config, args.config_overrides)
    result = plan(config, args.devices, args.device, args.hosts, args.global_tokens,
                  args.max_rows_per_device)
  except (ConfigError, PlanError, FileNotFoundError) as error:
    parser.exit(2, f"plan error: {error}\n")
  if args.overrides:
    print(" ".join(result.overrides()))
  else:
    print(result.describe())
    print("overrides:", " ".join(result.overrides()))
  return 0


if __name__ == "__main__":
  sys.exit(main())
