"""Accelerator numbers in one run on one machine: Reflex PPO env-steps/s against brax.training
and the environment-only ceiling, and HRM-Text training tokens/s and MFU, checked against the
project's targets (HRM-Text B MFU ≥ 40 % on H100; PPO brax/ant ours/brax ≥ 1.0).

RL (bench/ppo_throughput.py): brax/ant with the GPU run's shape (experiments/reflex/
ant_ppo_gpu.yaml: 4096 envs, unroll 5, 32 minibatches, 4 epochs) and the hyperparameters
ppo_throughput matches between ours and brax.training; env-only rate (random actions, one
jitted scan), brax.training PPO (its third training epoch), ours plain PPO and ours Reflex-PPO
(compile excluded, pooled over seeds).

HRM-Text: the jitted `train_step` (AdamATan2 + EMA, state donated, sharded as
hrm_jax/train/loop.py shards it) of the `tiny` and `B` presets with their experiments/hrm/*.yaml
model overrides (B: bf16 compute, remat dots_no_batch), bp_steps = 5, on one synthetic batch
already on the devices (one sample per row filling it, the first quarter its PrefixLM prefix:
the layout train_flops counts). MFU = tokens/s × train_flops / (peak × devices), peak from
hrm_jax.train.metrics.PEAK_FLOPS; "of matmul" = the same FLOP/s over the machine's measured
square-matmul rate in the compute dtype (the reachable ceiling).

Without a GPU or TPU it still runs, at reduced sizes (--small is implied) and HRM `tiny` only
by default, and says so at the top and in the JSON ("accelerator": false): those are CPU smoke
numbers, with no MFU (the CPU's peak is unknown) and no HRM target.

    # GPU (H100/H200) or TPU: full sizes, summary to a file
    .venv/bin/python bench/accelerator.py --out accelerator.json
    .venv/bin/python bench/accelerator.py --skip-rl --hrm-sizes B --rows 8   # B only, 8 rows/device
    # CPU smoke run (reduced sizes, tiny only); the smallest, as the test runs it:
    .venv/bin/python bench/accelerator.py --out cpu.json
    .venv/bin/python bench/accelerator.py --small --hrm-sizes tiny --num-envs 8 --rl-updates 1
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # also as `-m bench.accelerator`
from hrm_model_throughput import best_seconds  # noqa: E402
from ppo_throughput import compare, matched_configs  # noqa: E402

from hrm_jax.data.layout import IGNORE  # noqa: E402
from hrm_jax.model.flops import train_flops  # noqa: E402
from hrm_jax.train import sharding  # noqa: E402
from hrm_jax.train.config import load_config, model_config  # noqa: E402
from hrm_jax.train.loop import Program  # noqa: E402
from hrm_jax.train.metrics import device_peak_flops  # noqa: E402
from hrm_jax.train.sharding import MeshConfig  # noqa: E402
from tpu_gpu_launch.preflight import matmul_flops_per_second  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MFU_TARGET = 0.40      # HRM-Text B on H100
PPO_TARGET = 1.0       # ours / brax.training env-steps/s on brax/ant

# (accelerator, small) defaults.
RL_DEFAULTS = {"num_envs": (4096, 64), "unroll": (5, 5), "updates": (100, 4),
               "minibatches": (32, 8), "epochs": (4, 4), "seeds": (2, 1)}
HRM_SHAPES = {"tiny": ((512, 64), (128, 16)), "B": ((4096, 4), (256, 2))}  # (seq_len, rows/device)
HRM_RUN = {"steps": (10, 3), "repeats": (3, 2), "matmul_n": (8192, 2048)}


def rl_benchmark(env_id: str, num_envs: int, unroll: int, updates: int, minibatches: int,
                 epochs: int, seeds: int, episode_length: int | None) -> dict:
  # brax.training splits the envs into minibatches: the count must divide num_envs.
  minibatches = math.gcd(minibatches, num_envs)
  base, reflex = matched_configs(num_envs, unroll, updates, num_minibatches=minibatches,
                                 num_epochs=epochs, episode_length=episode_length)
  print(f"\n== RL: {env_id}, {num_envs} envs, unroll {unroll}, {minibatches} minibatches, "
        f"{epochs} epochs, {updates} updates per run, {seeds} seed(s) pooled", flush=True)
  rates = compare(env_id, base, reflex, seeds)
  ratios = {"ours_over_brax": rates["ours"] / rates["brax"],
            "reflex_over_ours": rates["reflex"] / rates["ours"],
            "ours_over_env_only": rates["ours"] / rates["env_only"]}
  print(f"{'env-only':>12} {'brax PPO':>12} {'ours':>12} {'Reflex':>12} {'ours/brax':>9} "
        f"{'Rfx/ours':>8} {'ours/env':>8}   (env-steps/s)")
  print(f"{rates['env_only']:12,.0f} {rates['brax']:12,.0f} {rates['ours']:12,.0f} "
        f"{rates['reflex']:12,.0f} {ratios['ours_over_brax']:9.2f} "
        f"{ratios['reflex_over_ours']:8.2f} {ratios['ours_over_env_only']:8.0%}", flush=True)
  return {"env": env_id, "num_envs": num_envs, "unroll": unroll, "minibatches": minibatches,
          "epochs": epochs, "updates": updates, "seeds": seeds,
          "env_steps_per_s": rates, "ratios": ratios}


def synthetic_batch(rows: int, seq_len: int, vocab: int, seed: int = 0) -> dict:
  """One sample per row filling it; the first quarter is the PrefixLM prefix (no loss)."""
  rng = np.random.default_rng(seed)
  tokens = rng.integers(1, vocab, (rows, seq_len), dtype=np.int32)
  prefix = max(seq_len // 4, 1)
  positions = np.broadcast_to(np.arange(seq_len, dtype=np.int32), (rows, seq_len))
  labels = np.roll(tokens, -1, axis=1)
  labels[:, :prefix - 1] = IGNORE
  labels[:, -1] = IGNORE
  return {"tokens": tokens, "labels": labels,
          "segment_ids": np.ones((rows, seq_len), np.int32), "positions": positions.copy(),
          "prefix_lengths": np.full((rows, seq_len), prefix, np.int32)}


def hrm_benchmark(size: str, seq_len: int, rows_per_device: int, bp_steps: int, steps: int,
                  repeats: int) -> dict:
  """Tokens/s of the jitted train_step; the model and mesh from experiments/hrm/{size}.yaml."""
  path = os.path.join(ROOT, "experiments", "hrm", f"{size}.yaml")
  train_cfg = (load_config([path]) if os.path.exists(path)
               else load_config([], [f"model.size={size}"]))
  overrides = train_cfg.model.overrides
  limit = overrides.get("max_position_embeddings",
                        model_config(train_cfg).max_position_embeddings)
  overrides["max_position_embeddings"] = max(limit, seq_len)
  config = model_config(train_cfg)
  bp_steps = min(bp_steps, config.num_calls)

  train_cfg.mesh = MeshConfig(data=1, fsdp=-1, tensor=1)  # FSDP over every device
  train_cfg.schedule.accumulation = 1
  program = Program.build(train_cfg)  # the mesh, shardings and jitted step of hrm_jax.train
  devices = program.mesh.devices.size
  rows = rows_per_device * devices
  state = [program.initial()]
  step = program.step(bp_steps)
  buffers = program.buffers
  batch = sharding.put_batch(synthetic_batch(rows, seq_len, config.vocab_size), program.mesh)
  losses = []

  def run(n):
    for _ in range(n):
      state[0], metrics = step(buffers, state[0], batch)
    losses.append(float(jax.block_until_ready(metrics)["loss"]))

  t0 = time.perf_counter()
  run(1)  # compile
  compile_seconds = time.perf_counter() - t0
  seconds = best_seconds(lambda: run(steps), repeats) / steps  # one more warm-up step round
  tokens_per_s = rows * seq_len / seconds
  per_token = train_flops(config, seq_len, bp_steps)
  result = {"seq_len": seq_len, "rows_per_device": rows_per_device, "rows": rows,
            "devices": devices, "compute_dtype": config.compute_dtype, "remat": config.remat,
            "bp_steps": bp_steps, "compile_seconds": compile_seconds,
            "ms_per_step": seconds * 1e3, "tokens_per_s": tokens_per_s,
            "train_flops_per_token": per_token, "model_flops_per_s": tokens_per_s * per_token,
            "loss_first": losses[0], "loss_last": losses[-1]}
  del state
  return result


def main():
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--small", action="store_true",
                      help="reduced sizes (implied without a GPU/TPU)")
  parser.add_argument("--skip-rl", action="store_true", help="no PPO measurements")
  parser.add_argument("--skip-hrm", action="store_true", help="no HRM-Text measurements")
  parser.add_argument("--out", help="also write the JSON summary to this file")
  rl = parser.add_argument_group("RL (PPO)")
  rl.add_argument("--rl-env", default="brax/ant", help="environment id (default brax/ant)")
  rl.add_argument("--num-envs", type=int, help="parallel envs (default 4096; small: 64)")
  rl.add_argument("--rl-unroll", type=int, help="steps per env per update (default 5)")
  rl.add_argument("--rl-updates", type=int,
                  help="PPO updates timed per run (default 100; small: 4)")
  rl.add_argument("--rl-minibatches", type=int,
                  help="minibatches per epoch (default 32; small: 8); reduced to divide num_envs")
  rl.add_argument("--rl-epochs", type=int, help="epochs per update (default 4)")
  rl.add_argument("--rl-seeds", type=int, help="runs pooled for our rates (default 2; small: 1)")
  rl.add_argument("--episode-length", type=int,
                  help="episode length for training and the evaluations (default the env's, 1000)")
  hrm = parser.add_argument_group("HRM-Text")
  hrm.add_argument("--hrm-sizes", help="comma-separated presets (default tiny,B; on CPU tiny)")
  hrm.add_argument("--seq-len", type=int,
                   help="row length for every size (default tiny 512, B 4096; small: 128, 256)")
  hrm.add_argument("--rows", type=int,
                   help="rows per device for every size (default tiny 64, B 4; small: 16, 2)")
  hrm.add_argument("--bp-steps", type=int, default=5,
                   help="gradient window (default 5, the paper's after warm-up)")
  hrm.add_argument("--hrm-steps", type=int, help="timed steps per round (default 10; small: 3)")
  hrm.add_argument("--hrm-repeats", type=int, help="timed rounds, best kept (default 3; small: 2)")
  hrm.add_argument("--matmul-n", type=int,
                   help="side of the square matmul probe (default 8192; small: 2048)")
  args = parser.parse_args()

  device = jax.devices()[0]
  accelerator = device.platform in ("gpu", "tpu")
  small = args.small or not accelerator
  pick = lambda value, pair: value if value is not None else pair[small]  # noqa: E731
  summary = {"accelerator": accelerator, "backend": device.platform,
             "device_kind": device.device_kind, "device_count": jax.device_count(),
             "jax_version": jax.__version__, "small": small}
  print(f"jax {jax.__version__} on {jax.device_count()} × {device.device_kind} "
        f"({device.platform}){', reduced sizes (--small)' if small else ''}")
  if not accelerator:
    summary["note"] = ("no accelerator (CPU): reduced sizes, CPU smoke numbers, not "
                       "accelerator results")
    print("NO ACCELERATOR: no GPU or TPU found. These are CPU smoke numbers at reduced sizes, "
          "not accelerator results; MFU and the HRM target are not measured.", flush=True)

  if not args.skip_rl:
    summary["rl"] = rl_benchmark(
        args.rl_env, pick(args.num_envs, RL_DEFAULTS["num_envs"]),
        pick(args.rl_unroll, RL_DEFAULTS["unroll"]), pick(args.rl_updates, RL_DEFAULTS["updates"]),
        pick(args.rl_minibatches, RL_DEFAULTS["minibatches"]),
        pick(args.rl_epochs, RL_DEFAULTS["epochs"]), pick(args.rl_seeds, RL_DEFAULTS["seeds"]),
        args.episode_length)

  if not args.skip_hrm:
    sizes = (args.hrm_sizes or ("tiny,B" if accelerator else "tiny")).split(",")
    if not accelerator and "B" in sizes:
      print("warning: HRM-Text B on a CPU is slow (minutes per step at full sizes)", flush=True)
    summary["hrm"] = {}
    matmul = {}  # compute dtype → measured FLOP/s of one device
    print(f"\n== HRM-Text training step, bp_steps={args.bp_steps}, synthetic full rows")
    print(f"{'size':6} {'dtype':9} {'remat':14} {'rows×len':>12} {'ms/step':>9} {'tok/s':>11} "
          f"{'TFLOP/s':>8} {'of matmul':>9} {'MFU':>6}")
    for size in sizes:
      seq_len, rows = HRM_SHAPES.get(size, HRM_SHAPES["B"])[small]
      seq_len, rows = args.seq_len or seq_len, args.rows or rows
      try:
        r = hrm_benchmark(size, seq_len, rows, args.bp_steps,
                          pick(args.hrm_steps, HRM_RUN["steps"]),
                          pick(args.hrm_repeats, HRM_RUN["repeats"]))
      except Exception as error:  # pylint: disable=broad-except
        if "RESOURCE_EXHAUSTED" not in str(error):
          raise
        summary["hrm"][size] = {"seq_len": seq_len, "rows_per_device": rows,
                                "error": "out of memory"}
        print(f"{size:6} out of device memory at {rows}×{seq_len} per device: try a smaller "
              "--rows", flush=True)
        continue
      dtype = r["compute_dtype"]
      if dtype not in matmul:
        matmul[dtype] = matmul_flops_per_second(pick(args.matmul_n, HRM_RUN["matmul_n"]),
                                                jnp.dtype(dtype))
      r["matmul_flops_per_s"] = matmul[dtype]
      r["of_matmul_rate"] = r["model_flops_per_s"] / (matmul[dtype] * r["devices"])
      peak = device_peak_flops(dtype)
      if peak:
        r["peak_flops"] = peak
        r["mfu"] = r["model_flops_per_s"] / (peak * r["devices"])
      summary["hrm"][size] = r
      mfu = f"{r['mfu']:6.1%}" if "mfu" in r else f"{'-':>6}"
      shape = f"{r['rows']}×{r['seq_len']}"
      print(f"{size:6} {dtype:9} {r['remat']:14} {shape:>12} "
            f"{r['ms_per_step']:9.1f} {r['tokens_per_s']:11,.0f} "
            f"{r['model_flops_per_s'] / 1e12:8.3f} {r['of_matmul_rate']:9.0%} {mfu}", flush=True)
    print("matmul rate (one device): " + ", ".join(
        f"{d} {f / 1e12:,.3f} TFLOP/s" for d, f in matmul.items()))

  summary["targets"] = targets(summary)
  print("\n" + json.dumps(summary, indent=2))
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      json.dump(summary, f, indent=2)
    print(f"wrote {args.out}")


def targets(summary: dict) -> dict:
  """The issue's targets against the numbers, printed plainly; met is None where unmeasured."""
  print("\n== Targets")
  out = {}
  name = f"HRM-Text B MFU ≥ {MFU_TARGET * 100:.0f} % on H100"
  b = summary.get("hrm", {}).get("B")
  if not summary["accelerator"]:
    out["hrm_B_mfu"] = {"met": None, "why": "no accelerator"}
    print(f"{name}: not measured (no accelerator)")
  elif b is None or "mfu" not in b:
    why = ("B not run" if b is None else b.get("error")
           or f"peak FLOP/s of {summary['device_kind']} unknown")
    out["hrm_B_mfu"] = {"met": None, "why": why}
    print(f"{name}: not measured ({why})")
  else:
    met = b["mfu"] >= MFU_TARGET
    notes = [n for n, on in ((f"measured on {summary['device_kind']}",
                              "H100" not in summary["device_kind"]),
                             ("at --small sizes", summary["small"])) if on]
    out["hrm_B_mfu"] = {"met": met, "value": b["mfu"], "target": MFU_TARGET,
                        "device_kind": summary["device_kind"]}
    print(f"{name}: {'met' if met else 'missed'} ({b['mfu'] * 100:.1f} %)"
          + (f" [{'; '.join(notes)}]" if notes else ""))
  rl = summary.get("rl")
  name = f"PPO {rl['env'] if rl else 'brax/ant'} ours/brax ≥ {PPO_TARGET}"
  if rl is None:
    out["ppo_ours_over_brax"] = {"met": None, "why": "RL skipped"}
    print(f"{name}: not measured (RL skipped)")
  else:
    ratio = rl["ratios"]["ours_over_brax"]
    out["ppo_ours_over_brax"] = {"met": ratio >= PPO_TARGET, "value": ratio,
                                 "target": PPO_TARGET, "env": rl["env"]}
    print(f"{name}: {'met' if ratio >= PPO_TARGET else 'missed'} ({ratio:.2f})"
          + ("" if summary["accelerator"] else " [CPU smoke numbers, not the accelerator target]"))
  return out


if __name__ == "__main__":
  main()
