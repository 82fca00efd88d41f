"""Compiled temporary memory of one HRM-Text training step per attention path, output-head
chunk and length.

The B preset as experiments/hrm/B.yaml trains it (bf16 compute, remat dots_no_batch), bp 5,
one packed row per device with a quarter of it as the PrefixLM prefix: hrm_jax.train's own
jitted step, lowered on abstract state and compiled, never run. XLA's memory analysis gives
the temporaries (activations, attention scratch, logits), the part that grows with the length.
A variant is an attention path, or `path:chunk` for the loss over chunks of positions
(model.loss_chunk); the first variant is the reference of the ratio columns.

    .venv/bin/python bench/hrm_attention_memory.py --variants xla:0 blockwise:0 blockwise:1024 \
        --lengths 1024 2048 4096 8192
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


def temp_bytes(size: str, variant: str, seq_len: int, bp_steps: int,
               remat: str | None = None) -> tuple[int, float]:
  """(compiled temporary bytes, compile seconds) of one training step."""
  impl, _, chunk = variant.partition(":")
  overrides = [f"model.attention_impl={impl}"] + ([f"model.loss_chunk={chunk}"] if chunk else [])
  overrides += [f"model.remat={remat}"] if remat else []
  train_cfg = load_config([os.path.join(ROOT, "experiments", "hrm", f"{size}.yaml")], overrides)
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
  parser.add_argument("--variants", nargs="+", default=["xla:0", "blockwise:0", "blockwise:1024"],
                      help="attention path, or path:loss_chunk (0: the whole row at once; no "
                           "chunk: the config's)")
  parser.add_argument("--lengths", nargs="+", type=int, default=[1024, 2048, 4096, 8192])
  parser.add_argument("--bp-steps", type=int, default=5)
  parser.add_argument("--remat", default=None, help="model.remat (default: the config's)")
  parser.add_argument("--json", default=None, help="also write the numbers here")
  args = parser.parse_args()
  print(f"jax {jax.__version__} on {jax.devices()[0].platform}; {args.size}, bp {args.bp_steps}, "
        f"remat {args.remat or 'as configured'}, one row per device, prefix T/4", flush=True)
  rows = []
  variants = args.variants
  for seq_len in args.lengths:
    for variant in variants:
      size, seconds = temp_bytes(args.size, variant, seq_len, args.bp_steps, args.remat)
      rows.append({"variant": variant, "seq_len": seq_len, "temp_bytes": size,
                   "compile_seconds": seconds})
      print(f"T={seq_len:6d} {variant:16s} {size / 2**30:8.2f} GiB  (compiled in {seconds:.0f} s)",
            flush=True)
  print("\n| T | " + " | ".join(variants) + " | " + " | ".join(
      f"{v} / {variants[0]}" for v in variants[1:]) + " |")
  print("|---:|" + "---:|" * (2 * len(variants) - 1))
  for seq_len in args.lengths:
    got = {r["variant"]: r["temp_bytes"] for r in rows if r["seq_len"] == seq_len}
    print(f"| {seq_len} | " + " | ".join(f"{got[v] / 2**30:.2f} GiB" for v in variants) + " | "
          + " | ".join(f"{got[v] / got[variants[0]]:.2f}" for v in variants[1:]) + " |")
  if args.json:
    with open(args.json, "w", encoding="utf-8") as f:
      json.dump({"size": args.size, "bp_steps": args.bp_steps, "remat": args.remat or "config",
                 "rows": rows}, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
