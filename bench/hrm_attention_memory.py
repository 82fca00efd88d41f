"""Compiled temporary memory of one HRM-Text training step per attention path and length.

The B preset as experiments/hrm/B.yaml trains it (bf16 compute, remat dots_no_batch), bp 5,
one packed row per device with a quarter of it as the PrefixLM prefix: hrm_jax.train's own
jitted step, lowered on abstract state and compiled, never run. XLA's memory analysis gives
the temporaries (activations, attention scratch), the part that grows with the length.

    .venv/bin/python bench/hrm_attention_memory.py --impl xla blockwise --lengths 1024 2048 4096 8192
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import jax

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
ROOT = os.path.dirname(HERE)

from accelerator import synthetic_batch  # pylint: disable=wrong-import-position

from hrm_jax.train.config import load_config  # pylint: disable=wrong-import-position
from hrm_jax.train.loop import Program  # pylint: disable=wrong-import-position
from hrm_jax.train.sharding import MeshConfig  # pylint: disable=wrong-import-position


def temp_bytes(size: str, impl: str, seq_len: int, bp_steps: int) -> tuple[int, float]:
  """(compiled temporary bytes, compile seconds) of one training step."""
  train_cfg = load_config([os.path.join(ROOT, "experiments", "hrm", f"{size}.yaml")],
                          [f"model.attention_impl={impl}"])
  train_cfg.model.max_position_embeddings = max(train_cfg.model.max_position_embeddings, seq_len)
  train_cfg.mesh = MeshConfig(data=1, fsdp=-1, tensor=1)
  train_cfg.schedule.accumulation = 1
  program = Program.build(train_cfg)
  rows = program.mesh.devices.size
  batch = {k: jax.ShapeDtypeStruct(v.shape, v.dtype)
           for k, v in synthetic_batch(rows, seq_len, 8).items()}
  t0 = time.perf_counter()
  compiled = program.step(bp_steps).lower(program.buffers, program.abstract_state(),
                                          batch).compile()
  return compiled.memory_analysis().temp_size_in_bytes, time.perf_counter() - t0


def main() -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--size", default="B")
  parser.add_argument("--impl", nargs="+", default=["xla", "blockwise"])
  parser.add_argument("--lengths", nargs="+", type=int, default=[1024, 2048, 4096, 8192])
  parser.add_argument("--bp-steps", type=int, default=5)
  parser.add_argument("--json", default=None, help="also write the numbers here")
  args = parser.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.size}, bp {args.bp_steps}, "
        "one row per device, prefix T/4", flush=True)
  rows = []
  for seq_len in args.lengths:
    for impl in args.impl:
      size, seconds = temp_bytes(args.size, impl, seq_len, args.bp_steps)
      rows.append({"impl": impl, "seq_len": seq_len, "temp_bytes": size,
                   "compile_seconds": seconds})
      print(f"T={seq_len:6d} {impl:10s} {size / 2**30:8.2f} GiB  (compiled in {seconds:.0f} s)",
            flush=True)
  print("\n| T | " + " | ".join(args.impl) + " | " + " | ".join(
      f"{i}/{args.impl[0]}" for i in args.impl[1:]) + " |")
  print("|---:|" + "---:|" * (2 * len(args.impl) - 1))
  for seq_len in args.lengths:
    got = {r["impl"]: r["temp_bytes"] for r in rows if r["seq_len"] == seq_len}
    print(f"| {seq_len} | " + " | ".join(f"{got[i] / 2**30:.2f} GiB" for i in args.impl) + " | "
          + " | ".join(f"{got[i] / got[args.impl[0]]:.2f}" for i in args.impl[1:]) + " |")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"size": args.size, "bp_steps": args.bp_steps, "rows": rows}, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
