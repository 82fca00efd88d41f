"""The one accelerator check: run it on a fresh GPU or TPU with a time budget and get every
number this project promises, measured on that machine in one run, as JSON and a markdown table.

    python bench/accelerator.py --budget-minutes 10 --out accelerator.json --md accelerator.md
    python bench/accelerator.py --sections hrm_B --rows 8          # one section, 8 rows/device
    python bench/accelerator.py --budget-minutes 3                 # CPU: a smoke run (small sizes)

Sections, in this order (each in a fresh process, so a crash, an out-of-memory or an overrun in
one leaves the others standing; each is skipped, with a message, when its expected time would
exceed what is left of the budget, and stopped when it overruns what is left):

  env_only  the environment-only rate of the MJX task (random actions in one jitted scan):
            the ceiling of any trainer on it
  hrm_tiny, hrm_B
            HRM-Text training tokens/s of the jitted train_step (AdamATan2 + EMA, state donated,
            sharded as hrm_jax/train/loop.py shards it) with experiments/hrm/{size}.yaml's model
            overrides (B: bf16, remat dots_no_batch), bp_steps 5, one synthetic batch on the
            devices; MFU = tokens/s × train_flops / (peak × devices), and the same FLOP/s over the
            measured square-matmul rate in the compute dtype ("of matmul", the reachable ceiling)
  decode    HRM-Text tiny generation, new tokens/s: KV cache vs recomputing the sequence, and
            transformers' HrmTextForCausalLM.generate where torch and transformers are there
  ppo       brax.training PPO vs ours vs Reflex-PPO, env-steps/s (brax/ant, 4096 envs, unroll 5,
            32 minibatches, 4 epochs: brax's published ant update with k = 1; hyperparameters
            matched as bench/ppo_throughput.py matches them; brax's rate from its third epoch)
  sac       brax.training SAC vs ours vs Reflex-SAC, gradient updates/s (bench/sac_throughput.py)

With tpu_gpu_launch/env.sh sourced, the RL sections get REFLEX_XLA_FLAGS and the HRM-Text ones
HRM_XLA_FLAGS (tpu_gpu_launch/accelerator_check.sh does this, after installing a bundle).

Without a GPU or TPU it runs at reduced sizes (--small is implied) and says so at the top and in
the JSON ("accelerator": false): CPU smoke numbers, no MFU, no targets.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
MFU_TARGET = 0.40      # HRM-Text B on H100
PPO_TARGET = 1.0       # ours / brax.training env-steps/s on the MJX task

SECTIONS = ("env_only", "hrm_tiny", "hrm_B", "decode", "ppo", "sac")
# Expected seconds of each section, compilation included: (accelerator, small). The accelerator
# column is what one H200 took (jax 0.11.2, bench/results/h200_accelerator.json) plus a margin.
EXPECTED_SECONDS = {"env_only": (40, 60), "hrm_tiny": (40, 40), "hrm_B": (70, 120),
                    "decode": (75, 60), "ppo": (300, 420), "sac": (270, 300)}
# (accelerator, small) defaults.
RL_DEFAULTS = {"num_envs": (4096, 64), "unroll": (5, 5), "updates": (20, 4),
               "minibatches": (32, 8), "epochs": (4, 4), "seeds": (1, 1)}
SAC_DEFAULTS = {"env": ("brax/inverted_double_pendulum",) * 2, "num_envs": (128, 16),
                "updates_per_step": (8, 8), "batch": (256, 256), "iterations": (150, 20)}
HRM_SHAPES = {"tiny": ((512, 64), (128, 16)), "B": ((4096, 4), (256, 2))}  # (seq_len, rows/device)
HRM_RUN = {"steps": (10, 3), "repeats": (3, 2), "matmul_n": (8192, 2048)}
DECODE = {"batch": (16, 2), "prompt": (64, 16), "new": (256, 32), "repeats": (3, 1)}


def pick(args, value, pair):
  return value if value is not None else pair[args.small]


# --- the sections (each runs in its own process) -----------------------------------------------

def section_env_only(args) -> dict:
  sys.path.insert(0, HERE)
  from ppo_throughput import env_only_rate  # pylint: disable=import-outside-toplevel
  from reflex_jax import envs  # pylint: disable=import-outside-toplevel
  num_envs = pick(args, args.num_envs, RL_DEFAULTS["num_envs"])
  steps = pick(args, args.rl_updates, RL_DEFAULTS["updates"]) * pick(
      args, args.rl_unroll, RL_DEFAULTS["unroll"])
  sim = envs.make_simulator(args.rl_env)
  return {"env": args.rl_env, "num_envs": num_envs, "steps": steps,
          "env_steps_per_s": env_only_rate(sim, num_envs, max(steps, 100))}


def section_ppo(args) -> dict:
  sys.path.insert(0, HERE)
  from ppo_throughput import brax_rate, matched_configs, ours_rate  # pylint: disable=import-outside-toplevel
  from reflex_jax import envs  # pylint: disable=import-outside-toplevel
  num_envs = pick(args, args.num_envs, RL_DEFAULTS["num_envs"])
  # brax.training splits the envs into minibatches: the count must divide num_envs.
  minibatches = math.gcd(pick(args, args.rl_minibatches, RL_DEFAULTS["minibatches"]), num_envs)
  unroll = pick(args, args.rl_unroll, RL_DEFAULTS["unroll"])
  updates = pick(args, args.rl_updates, RL_DEFAULTS["updates"])
  epochs = pick(args, args.rl_epochs, RL_DEFAULTS["epochs"])
  seeds = pick(args, args.rl_seeds, RL_DEFAULTS["seeds"])
  base, reflex = matched_configs(num_envs, unroll, updates, num_minibatches=minibatches,
                                 num_epochs=epochs, episode_length=args.episode_length)
  sim = envs.make_simulator(args.rl_env)
  rates = {"brax": brax_rate(sim, base), "ours": ours_rate(sim, base, seeds),
           "reflex": ours_rate(sim, reflex, seeds)}
  return {"env": args.rl_env, "num_envs": num_envs, "unroll": unroll, "minibatches": minibatches,
          "epochs": epochs, "updates": updates, "seeds": seeds, "env_steps_per_s": rates,
          "ratios": {"ours_over_brax": rates["ours"] / rates["brax"],
                     "reflex_over_ours": rates["reflex"] / rates["ours"]}}


def section_sac(args) -> dict:
  import dataclasses  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, HERE)
  from sac_throughput import brax_rates, matched_config, ours_rates  # pylint: disable=import-outside-toplevel
  from reflex_jax import envs, sac  # pylint: disable=import-outside-toplevel
  env_id = args.sac_env or SAC_DEFAULTS["env"][args.small]
  num_envs = pick(args, args.sac_envs, SAC_DEFAULTS["num_envs"])
  base = matched_config(num_envs, SAC_DEFAULTS["updates_per_step"][args.small],
                        SAC_DEFAULTS["batch"][args.small],
                        pick(args, args.sac_iterations, SAC_DEFAULTS["iterations"]))
  sim = envs.make_simulator(env_id)
  rates = {"brax": brax_rates(sim, base), "ours": ours_rates(sim, base, 1),
           "reflex": ours_rates(sim, dataclasses.replace(base, reflex=sac.ReflexConfig()), 1)}
  updates = {k: v[1] for k, v in rates.items()}
  return {"env": env_id, "num_envs": num_envs, "updates_per_step": base.grad_updates_per_step,
          "batch_size": base.batch_size, "env_steps_per_s": {k: v[0] for k, v in rates.items()},
          "updates_per_s": updates,
          "ratios": {"ours_over_brax": updates["ours"] / updates["brax"],
                     "reflex_over_ours": updates["reflex"] / updates["ours"]}}


def synthetic_batch(rows: int, seq_len: int, vocab: int, seed: int = 0) -> dict:
  """One sample per row filling it; the first quarter is the PrefixLM prefix (no loss)."""
  import numpy as np  # pylint: disable=import-outside-toplevel
  from hrm_jax.data.layout import IGNORE  # pylint: disable=import-outside-toplevel
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
  import jax  # pylint: disable=import-outside-toplevel
  from hrm_model_throughput import best_seconds  # pylint: disable=import-outside-toplevel
  from hrm_jax.model.flops import train_flops  # pylint: disable=import-outside-toplevel
  from hrm_jax.train import sharding  # pylint: disable=import-outside-toplevel
  from hrm_jax.train.config import load_config, model_config  # pylint: disable=import-outside-toplevel
  from hrm_jax.train.loop import Program  # pylint: disable=import-outside-toplevel
  from hrm_jax.train.sharding import MeshConfig  # pylint: disable=import-outside-toplevel
  path = os.path.join(ROOT, "experiments", "hrm", f"{size}.yaml")
  train_cfg = (load_config([path]) if os.path.exists(path)
               else load_config([], [f"model.preset={size}"]))
  train_cfg.model.max_position_embeddings = max(train_cfg.model.max_position_embeddings, seq_len)
  config = model_config(train_cfg)
  bp_steps = config.window(bp_steps)

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
  return {"seq_len": seq_len, "rows_per_device": rows_per_device, "rows": rows,
          "devices": devices, "compute_dtype": config.compute_dtype, "remat": config.remat,
          "bp_steps": bp_steps, "compile_seconds": compile_seconds,
          "ms_per_step": seconds * 1e3, "tokens_per_s": tokens_per_s,
          "train_flops_per_token": per_token, "model_flops_per_s": tokens_per_s * per_token,
          "loss_first": losses[0], "loss_last": losses[-1]}


def section_hrm(args, size: str) -> dict:
  import jax.numpy as jnp  # pylint: disable=import-outside-toplevel
  from hrm_jax.train.devices import peak_flops  # pylint: disable=import-outside-toplevel
  from tpu_gpu_launch.preflight import matmul_flops_per_second  # pylint: disable=import-outside-toplevel
  sys.path.insert(0, HERE)
  seq_len, rows = HRM_SHAPES[size][args.small]
  r = hrm_benchmark(size, args.seq_len or seq_len, args.rows or rows, args.bp_steps,
                    pick(args, args.hrm_steps, HRM_RUN["steps"]),
                    pick(args, args.hrm_repeats, HRM_RUN["repeats"]))
  matmul = matmul_flops_per_second(pick(args, args.matmul_n, HRM_RUN["matmul_n"]),
                                   jnp.dtype(r["compute_dtype"]))
  r["matmul_flops_per_s"] = matmul
  r["of_matmul_rate"] = r["model_flops_per_s"] / (matmul * r["devices"])
  peak = peak_flops(r["compute_dtype"])
  if peak:
    r["peak_flops"] = peak
    r["mfu"] = r["model_flops_per_s"] / (peak * r["devices"])
  return r


def section_decode(args) -> dict:
  sys.path.insert(0, HERE)
  from hrm_decode import measure  # pylint: disable=import-outside-toplevel
  try:
    import torch  # noqa: F401  pylint: disable=import-outside-toplevel,unused-import
    import transformers  # pylint: disable=import-outside-toplevel
    reference = hasattr(transformers, "HrmTextForCausalLM") and not args.small
  except ImportError:
    reference = False
  r = measure(*(DECODE[k][args.small] for k in ("batch", "prompt", "new", "repeats")),
              reference=reference)
  cached = r["new_tokens_per_s"]["ours, KV cache"]
  r["ratios"] = {f"cached_over_{k.split(',')[-1].strip().split(' ')[0]}": cached / v
                 for k, v in r["new_tokens_per_s"].items() if k != "ours, KV cache"}
  return r


def section_info(_args) -> dict:
  import importlib.metadata as md  # pylint: disable=import-outside-toplevel
  import jax  # pylint: disable=import-outside-toplevel
  device = jax.devices()[0]
  versions = {}
  for dist in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "brax", "mujoco",
               "mujoco-mjx", "playground", "grain", "torch", "transformers"):
    try:
      versions[dist] = md.version(dist)
    except md.PackageNotFoundError:
      versions[dist] = None
  return {"backend": device.platform, "device_kind": device.device_kind,
          "xla_flags": {k: os.environ.get(k, "") for k in ("XLA_FLAGS", "HRM_XLA_FLAGS",
                                                           "REFLEX_XLA_FLAGS")},
          "device_count": jax.device_count(), "accelerator": device.platform in ("gpu", "tpu"),
          "versions": versions}


def run_section(args, name: str) -> dict:
  import jax  # pylint: disable=import-outside-toplevel
  args.small = args.small or jax.devices()[0].platform not in ("gpu", "tpu")
  if name == "info":
    return section_info(args)
  if name.startswith("hrm_"):
    return section_hrm(args, name[len("hrm_"):])
  return globals()[f"section_{name}"](args)


# --- the orchestrator --------------------------------------------------------------------------

def spawn(name: str, argv: list[str], timeout: float) -> dict:
  """Run one section in a fresh process; its result, or {"error": ...} / {"timed_out": ...}."""
  with tempfile.TemporaryDirectory() as directory:
    out = os.path.join(directory, "section.json")
    cmd = [sys.executable, os.path.abspath(__file__), *argv, "--section", name,
           "--section-json", out]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (ROOT, os.environ.get("PYTHONPATH")) if p), "PYTHONUNBUFFERED": "1"}
    # The flags tpu_gpu_launch/env.sh recommends for each half, where it was sourced.
    extra = ("" if name == "info" else os.environ.get(
        "HRM_XLA_FLAGS" if name.startswith(("hrm", "decode")) else "REFLEX_XLA_FLAGS", ""))
    env["XLA_FLAGS"] = " ".join(f for f in (os.environ.get("XLA_FLAGS", ""), extra) if f)
    t0 = time.perf_counter()
    try:
      proc = subprocess.run(cmd, env=env, cwd=ROOT, timeout=max(timeout, 1), check=False,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    except subprocess.TimeoutExpired as expired:
      tail = (expired.stdout or b"")
      tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
      return {"timed_out": True, "seconds": time.perf_counter() - t0,
              "error": f"stopped at the budget after {timeout:.0f} s", "log_tail": tail[-2000:]}
    seconds = time.perf_counter() - t0
    if proc.returncode != 0 or not os.path.exists(out):
      lines = [l for l in proc.stdout.splitlines() if l.strip()]
      oom = "RESOURCE_EXHAUSTED" in proc.stdout or "out of memory" in proc.stdout.lower()
      return {"error": "out of device memory" if oom else (lines[-1] if lines else
              f"exit {proc.returncode}"), "seconds": seconds, "log_tail": proc.stdout[-4000:]}
    with open(out, encoding="utf-8") as f:
      result = json.load(f)
    result["seconds"] = seconds
    return result


def orchestrate(args, argv: list[str], save=lambda summary: None) -> dict:
  """Every section in turn within the budget; `save(summary)` after each (a run killed from
  outside keeps what it measured)."""
  budget = args.budget_minutes * 60
  start = time.perf_counter()
  info = spawn("info", argv, timeout=max(budget, 60))
  if "error" in info:
    raise SystemExit(f"cannot start JAX: {info['error']}\n{info.get('log_tail', '')}")
  small = args.small or not info["accelerator"]
  summary = {**{k: info[k] for k in ("accelerator", "backend", "device_kind", "device_count")},
             "versions": info["versions"], "xla_flags": info["xla_flags"], "small": small, "budget_minutes": args.budget_minutes,
             "sections": {}}
  print(f"jax {info['versions']['jax']} on {info['device_count']} × {info['device_kind']} "
        f"({info['backend']}){', reduced sizes (--small)' if small else ''}; budget "
        f"{args.budget_minutes:g} min", flush=True)
  if not info["accelerator"]:
    summary["note"] = ("no accelerator (CPU): reduced sizes, CPU smoke numbers, not "
                       "accelerator results")
    print("NO ACCELERATOR: no GPU or TPU found. These are CPU smoke numbers at reduced sizes, "
          "not accelerator results; MFU and the targets are not measured.", flush=True)
  for name in (args.sections.split(",") if args.sections else SECTIONS):
    left = budget - (time.perf_counter() - start)
    expected = EXPECTED_SECONDS[name][small]
    if expected > left:
      summary["sections"][name] = {"skipped": f"expected ~{expected} s, {max(left, 0):.0f} s "
                                              "left in the budget"}
      print(f"\n== {name}: SKIPPED (expected ~{expected} s, {max(left, 0):.0f} s left of the "
            "budget; raise --budget-minutes or pick --sections)", flush=True)
      continue
    print(f"\n== {name} (expected ~{expected} s, {left:.0f} s left)", flush=True)
    result = spawn(name, argv, timeout=left)
    summary["sections"][name] = result
    print(f"   {name}: " + (f"FAILED: {result['error']}" if "error" in result
                             else f"done in {result['seconds']:.0f} s"), flush=True)
    if "error" in result and not result.get("timed_out"):
      print(result.get("log_tail", "")[-1500:], flush=True)
    summary["seconds"] = time.perf_counter() - start
    summary["targets"] = targets(summary)
    save(summary)
  summary["seconds"] = time.perf_counter() - start
  summary["targets"] = targets(summary)
  return summary


def targets(summary: dict) -> dict:
  """The project's targets against the numbers; met is None where unmeasured."""
  out = {}
  b = summary["sections"].get("hrm_B", {})
  if not summary["accelerator"]:
    out["hrm_B_mfu"] = {"met": None, "why": "no accelerator"}
  elif "mfu" not in b:
    out["hrm_B_mfu"] = {"met": None, "why": b.get("error") or b.get("skipped") or (
        "B not run" if not b else f"peak FLOP/s of {summary['device_kind']} unknown")}
  else:
    out["hrm_B_mfu"] = {"met": b["mfu"] >= MFU_TARGET, "value": b["mfu"], "target": MFU_TARGET,
                        "device_kind": summary["device_kind"]}
  ppo = summary["sections"].get("ppo", {})
  if "ratios" not in ppo:
    out["ppo_ours_over_brax"] = {"met": None, "why": ppo.get("error") or ppo.get("skipped")
                                 or "ppo not run"}
  else:
    ratio = ppo["ratios"]["ours_over_brax"]
    out["ppo_ours_over_brax"] = {"met": ratio >= PPO_TARGET, "value": ratio,
                                 "target": PPO_TARGET, "env": ppo["env"]}
    if not summary["accelerator"]:
      out["ppo_ours_over_brax"]["note"] = "CPU smoke numbers, not the accelerator target"
  return out


def markdown(summary: dict) -> str:
  """The table a README or an issue note takes as it is."""
  s = summary["sections"]
  head = (f"{summary['device_count']} × {summary['device_kind']} ({summary['backend']}), jax "
          f"{summary['versions']['jax']}" + (", reduced sizes (CPU smoke)" if summary["small"]
                                             else ""))
  rows = ["| section | measured | peer / ceiling | ratio |", "|---|---|---|---:|"]

  def absent(name):
    r = s.get(name)
    if r is None:
      return None
    why = r.get("skipped") or r.get("error")
    return f"| {name} | {'skipped' if 'skipped' in r else 'failed'}: {why} | | |" if why else None

  for name in s:
    if absent(name):
      rows.append(absent(name))
  if "env_steps_per_s" in s.get("env_only", {}):
    e = s["env_only"]
    rows.append(f"| env-only {e['env']} ×{e['num_envs']} | {e['env_steps_per_s']:,.0f} "
                "env-steps/s | (the ceiling) | |")
  if "ratios" in s.get("ppo", {}):
    p, r = s["ppo"], s["ppo"]["env_steps_per_s"]
    ceiling = s.get("env_only", {}).get("env_steps_per_s")
    rows.append(f"| PPO {p['env']} ×{p['num_envs']}, ours | {r['ours']:,.0f} env-steps/s | "
                f"brax.training {r['brax']:,.0f} | {r['ours'] / r['brax']:.2f}× brax |")
    if ceiling:
      rows.append(f"| PPO, ours vs env-only | | {ceiling:,.0f} | {r['ours'] / ceiling:.0%} of "
                  "ceiling |")
    rows.append(f"| Reflex-PPO | {r['reflex']:,.0f} env-steps/s | ours plain {r['ours']:,.0f} "
                f"| {r['reflex'] / r['ours']:.2f}× |")
  if "ratios" in s.get("sac", {}):
    q, u = s["sac"], s["sac"]["updates_per_s"]
    rows.append(f"| SAC {q['env']} ×{q['num_envs']}, ours | {u['ours']:,.0f} updates/s | "
                f"brax.training {u['brax']:,.0f} | {u['ours'] / u['brax']:.2f}× brax |")
    rows.append(f"| Reflex-SAC | {u['reflex']:,.0f} updates/s | ours plain {u['ours']:,.0f} | "
                f"{u['reflex'] / u['ours']:.2f}× |")
  for size in ("tiny", "B"):
    h = s.get(f"hrm_{size}", {})
    if "tokens_per_s" in h:
      mfu = f", MFU {h['mfu']:.1%}" if "mfu" in h else ""
      rows.append(f"| HRM-Text {size} train ({h['compute_dtype']}, {h['rows']}×{h['seq_len']}, "
                  f"bp {h['bp_steps']}) | {h['tokens_per_s']:,.0f} tokens/s, "
                  f"{h['model_flops_per_s'] / 1e12:,.1f} TFLOP/s{mfu} | matmul "
                  f"{h['matmul_flops_per_s'] / 1e12:,.1f} TFLOP/s | {h['of_matmul_rate']:.0%} "
                  "of matmul |")
  d = s.get("decode", {})
  if "new_tokens_per_s" in d:
    t = d["new_tokens_per_s"]
    for path, rate in t.items():
      if path != "ours, KV cache":
        rows.append(f"| decode tiny {d['batch']}×{d['new']} new | "
                    f"{t['ours, KV cache']:,.0f} tokens/s (KV cache) | {path} {rate:,.0f} | "
                    f"{t['ours, KV cache'] / rate:.1f}× |")
  return f"{head}, budget {summary['budget_minutes']:g} min, {summary['seconds']:.0f} s\n\n" + \
      "\n".join(rows) + "\n"


def parse(argv=None):
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--budget-minutes", type=float, default=10.0,
                      help="the whole check's time (default 10); sections that would not fit "
                           "are skipped")
  parser.add_argument("--sections", help="comma-separated subset of " + ",".join(SECTIONS))
  parser.add_argument("--small", action="store_true",
                      help="reduced sizes (implied without a GPU/TPU)")
  parser.add_argument("--out", help="write the JSON summary here")
  parser.add_argument("--md", help="write the markdown table here")
  rl = parser.add_argument_group("RL")
  rl.add_argument("--rl-env", default="brax/ant", help="PPO/env-only task (default brax/ant)")
  rl.add_argument("--num-envs", type=int, help="parallel envs (default 4096; small: 64)")
  rl.add_argument("--rl-unroll", type=int, help="steps per env per update (default 5)")
  rl.add_argument("--rl-updates", type=int, help="PPO updates per run (default 20; small: 4)")
  rl.add_argument("--rl-minibatches", type=int,
                  help="minibatches per epoch (default 32; small: 8); reduced to divide num_envs")
  rl.add_argument("--rl-epochs", type=int, help="epochs per update (default 4)")
  rl.add_argument("--rl-seeds", type=int, help="runs pooled for our rates (default 1)")
  rl.add_argument("--episode-length", type=int, help="episode length (default the env's)")
  rl.add_argument("--sac-env", help="SAC task (default brax/inverted_double_pendulum)")
  rl.add_argument("--sac-envs", type=int, help="SAC parallel envs (default 128; small: 16)")
  rl.add_argument("--sac-iterations", type=int, help="timed SAC iterations (default 150)")
  hrm = parser.add_argument_group("HRM-Text")
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
  parser.add_argument("--section", choices=("info", *SECTIONS), help=argparse.SUPPRESS)
  parser.add_argument("--section-json", help=argparse.SUPPRESS)
  args = parser.parse_args(argv)
  if args.sections:
    unknown = set(args.sections.split(",")) - set(SECTIONS)
    if unknown:
      parser.error(f"unknown section(s) {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
  if args.budget_minutes <= 0:
    parser.error(f"--budget-minutes must be positive, got {args.budget_minutes}")
  return args


def main(argv=None):
  argv = list(sys.argv[1:] if argv is None else argv)
  args = parse(argv)
  if args.section:
    result = run_section(args, args.section)
    with open(args.section_json, "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)
    return
  # The sections get this run's flags, less those only the orchestrator reads.
  passthrough, skip = [], {"--out", "--md", "--budget-minutes", "--sections"}
  it = iter(argv)
  for a in it:
    if a.split("=")[0] in skip:
      if "=" not in a:
        next(it, None)
      continue
    passthrough.append(a)

  def save(summary):
    for path, text in ((args.out, lambda: json.dumps(summary, indent=2)),
                       (args.md, lambda: markdown(summary))):
      if path:
        with open(path, "w", encoding="utf-8") as f:
          f.write(text())

  summary = orchestrate(args, passthrough, save)
  save(summary)
  table = markdown(summary)
  print("\n" + table)
  for name, target in summary["targets"].items():
    print(f"target {name}: " + ("not measured (" + target["why"] + ")" if target["met"] is None
                                else f"{'met' if target['met'] else 'missed'} "
                                     f"({target['value']:.2f} vs {target['target']})"))
  for path in (args.out, args.md):
    if path:
      print(f"wrote {path}")


if __name__ == "__main__":
  main()
