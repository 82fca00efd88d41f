"""Check a machine (or a whole multi-host job) before a long run: devices, memory, flags,
matmul rate, an all-reduce over every device, then the real jobs at their real sizes: the
HRM-Text step compiled for the planned mesh and batch (its memory measured by XLA, a few steps
timed) and the Reflex environment stepped in a batch.

    python -m tpu_gpu_launch.preflight                                   # tiny HRM + brax/ant
    python -m tpu_gpu_launch.preflight --hrm-config experiments/hrm/B.yaml mesh.fsdp=-1 mesh.data=1
    python -m tpu_gpu_launch.distributed tpu_gpu_launch.preflight --hrm-config ...   # multi-host

Exits 1 naming the failed check (the step does not fit in device memory, a non-finite loss,
a wrong all-reduce sum), so a launch script can stop before queueing a long job.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec as P

GIB = 2**30
FLAG_VARIABLES = ("XLA_FLAGS", "LIBTPU_INIT_ARGS", "XLA_PYTHON_CLIENT_MEM_FRACTION",
                  "XLA_PYTHON_CLIENT_PREALLOCATE", "JAX_COMPILATION_CACHE_DIR",
                  "NCCL_DEBUG", "MUJOCO_GL", "JAX_PLATFORMS")


class PreflightError(RuntimeError):
  """A check failed; the message names it."""


def say(*parts) -> None:
  if jax.process_index() == 0:
    print(*parts, flush=True)


def device_memory_bytes(device=None) -> int | None:
  """The allocator's limit on one device; None where the backend does not say (CPU)."""
  stats = (device or jax.local_devices()[0]).memory_stats() or {}
  return stats.get("bytes_limit")


def matmul_flops_per_second(n: int = 2048, dtype=jnp.float32, repeats: int = 5) -> float:
  """Best-of-`repeats` rate of one n×n×n matmul on the first device: the machine's ceiling
  for model FLOP/s (the preflight and the bench scripts)."""
  a = jnp.ones((n, n), dtype)
  f = jax.jit(lambda x: x @ x)
  jax.block_until_ready(f(a))
  best = float("inf")
  for _ in range(repeats):
    t0 = time.perf_counter()
    jax.block_until_ready(f(a))
    best = min(best, time.perf_counter() - t0)
  return 2 * n**3 / best


def check_devices() -> None:
  devices = jax.devices()
  say(f"jax {jax.__version__}, backend {jax.default_backend()}, "
      f"process {jax.process_index()} of {jax.process_count()}")
  say(f"devices: {len(devices)} × {devices[0].device_kind} "
      f"({jax.local_device_count()} on this host)")
  memory = device_memory_bytes()
  if memory:
    say(f"memory per device: {memory / GIB:.1f} GiB usable by JAX")
  else:
    host = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    say(f"memory per device: not reported by {jax.default_backend()} (host RAM "
        f"{host / GIB:.1f} GiB)")
  for name in FLAG_VARIABLES:
    if os.environ.get(name):
      say(f"  {name}={os.environ[name]}")


def check_matmul(size: int) -> float:
  dtype = jnp.float32 if jax.default_backend() == "cpu" else jnp.bfloat16
  rate = matmul_flops_per_second(size, dtype)
  say(f"matmul {size}³ {jnp.dtype(dtype).name}: {rate / 1e12:.3f} TFLOP/s on one device")
  return rate


def check_all_reduce(megabytes: int) -> None:
  """A sum over every device of every host: checks the interconnect and times it."""
  devices = jax.devices()
  mesh = jax.make_mesh((len(devices),), ("all",), devices=devices)
  per_device = megabytes * 2**20 // 4
  sharding = NamedSharding(mesh, P("all"))
  local = np.ones((jax.local_device_count() * per_device,), np.float32)
  x = jax.make_array_from_process_local_data(sharding, local)
  reduce = jax.jit(lambda v: v.reshape(len(devices), per_device).sum(0),
                   out_shardings=NamedSharding(mesh, P()))
  jax.block_until_ready(reduce(x))
  t0 = time.perf_counter()
  out = jax.block_until_ready(reduce(x))
  seconds = time.perf_counter() - t0
  value = float(np.asarray(out.addressable_data(0))[0])
  if value != len(devices):
    raise PreflightError(f"all-reduce over {len(devices)} devices gave {value}, expected "
                         f"{len(devices)}: the interconnect or the process setup is broken")
  say(f"all-reduce of {megabytes} MiB per device over {len(devices)} devices: "
      f"{seconds * 1e3:.2f} ms, correct")


def check_hrm(files: list[str], overrides: list[str], steps: int,
              memory_limit: float | None) -> dict:
  """Compiles the training step at the config's mesh, batch and accumulation, reports XLA's
  memory figure against the device's, runs `steps` steps on the config's own data and times
  them. No checkpoint or log is written."""
  from hrm_jax.data.pipeline import make_dataset
  from hrm_jax.model.flops import train_flops
  from hrm_jax.train import sharding
  from hrm_jax.train.config import load_config, model_config
  from hrm_jax.train.devices import peak_flops
  from hrm_jax.train.loop import Program

  config = load_config(files, overrides)
  model = model_config(config)
  program = Program.build(config)
  say(f"HRM-Text {config.model.preset}: mesh {dict(program.mesh.shape)}, "
      f"{config.data.batch_size} rows × {config.data.seq_len} tokens per step, "
      f"accumulation {config.schedule.accumulation}, {model.compute_dtype}, remat {model.remat}")
  iterator = iter(make_dataset(dataclasses.replace(config.data, worker_count=0)))
  batch = sharding.put_batch(next(iterator), program.mesh)
  bp = model.window(config.schedule.bp_end)
  step = program.step(bp)
  t0 = time.perf_counter()
  compiled = step.lower(program.buffers, program.abstract_state(), batch).compile()
  say(f"  compiled the bp_steps={bp} step in {time.perf_counter() - t0:.1f} s")

  analysis = compiled.memory_analysis()
  needed = None
  if analysis is not None:
    needed = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes
              + analysis.temp_size_in_bytes - analysis.alias_size_in_bytes)
    limit = memory_limit or device_memory_bytes()
    share = f" of {limit / GIB:.1f} GiB ({needed / limit:.0%})" if limit else ""
    say(f"  memory per device (XLA): {needed / GIB:.2f} GiB{share}: arguments "
        f"{analysis.argument_size_in_bytes / GIB:.2f}, temporaries "
        f"{analysis.temp_size_in_bytes / GIB:.2f} GiB")
    if limit and needed > limit:
      raise PreflightError(
          f"the HRM-Text step needs {needed / GIB:.2f} GiB per device but {limit / GIB:.2f} GiB "
          "are available: raise schedule.accumulation, use more devices (mesh.fsdp) or remat")

  state = program.initial()
  times = []
  for _ in range(steps + 1):  # the first call also transfers and warms up
    t0 = time.perf_counter()
    state, metrics = compiled(program.buffers, state, batch)
    loss = float(jax.device_get(metrics["loss"]))
    times.append(time.perf_counter() - t0)
  iterator.close()
  if not np.isfinite(loss):
    raise PreflightError(f"HRM-Text step gave a non-finite loss ({loss})")
  seconds = float(np.median(times[1:]))
  tokens_per_s = config.data.batch_size * config.data.seq_len / seconds
  flops = tokens_per_s * train_flops(model, config.data.seq_len, bp)
  peak = config.log.peak_flops or peak_flops(model.compute_dtype)
  mfu = flops / (peak * jax.device_count()) if peak else None
  say(f"  step {seconds * 1e3:.1f} ms (median of {steps}), {tokens_per_s:,.0f} tokens/s, "
      f"{flops / 1e12:.2f} model TFLOP/s" + (f", MFU {mfu:.1%}" if mfu else "")
      + f", loss {loss:.3f}")
  return {"step_seconds": seconds, "tokens_per_s": tokens_per_s, "mfu": mfu,
          "memory_bytes": needed, "loss": loss}


def check_reflex(env_id: str, num_envs: int, steps: int) -> float:
  """The environment stepped with random actions in one jitted scan: the ceiling of any
  trainer on it, and a check that the simulator runs on this backend."""
  from reflex_jax import envs

  env = envs.make(env_id, num_envs=num_envs)
  rate = envs.step_rate(env, num_envs, steps)
  say(f"Reflex env {env_id}: {num_envs} envs, {rate:,.0f} env steps/s")
  return rate


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m tpu_gpu_launch.preflight", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--hrm-config", action="append", default=[], metavar="FILE",
                      help="HRM-Text config(s) to check (default: the tiny preset's defaults)")
  parser.add_argument("--hrm-steps", type=int, default=3, help="timed steps")
  parser.add_argument("--reflex-env", default="brax/ant")
  parser.add_argument("--num-envs", type=int, default=None,
                      help="default: 2048 on an accelerator, 64 on CPU")
  parser.add_argument("--matmul-size", type=int, default=None,
                      help="default: 8192 on an accelerator, 1024 on CPU")
  parser.add_argument("--all-reduce-mb", type=int, default=64)
  parser.add_argument("--memory-limit-gb", type=float, default=None,
                      help="compare the step's memory with this instead of the device's")
  parser.add_argument("--skip", action="append", default=[], choices=["hrm", "reflex"])
  parser.add_argument("overrides", nargs="*", metavar="key=value",
                      help="HRM-Text config overrides, e.g. the output of tpu_gpu_launch.plan")
  args = parser.parse_intermixed_args(argv)
  accelerator = jax.default_backend() != "cpu"
  try:
    check_devices()
    check_matmul(args.matmul_size or (8192 if accelerator else 1024))
    check_all_reduce(args.all_reduce_mb)
    if "hrm" not in args.skip:
      limit = args.memory_limit_gb * GIB if args.memory_limit_gb else None
      check_hrm(args.hrm_config, args.overrides, args.hrm_steps, limit)
    if "reflex" not in args.skip:
      check_reflex(args.reflex_env, args.num_envs or (2048 if accelerator else 64),
                   100 if accelerator else 20)
  except PreflightError as error:
    print(f"preflight FAILED: {error}", file=sys.stderr, flush=True)
    return 1
  except (ValueError, FileNotFoundError, KeyError) as error:  # config and env errors
    print(f"preflight FAILED: {type(error).__name__}: {error}", file=sys.stderr, flush=True)
    return 1
  say("preflight passed")
  return 0


if __name__ == "__main__":
  sys.exit(main())
