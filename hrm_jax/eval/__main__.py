"""`python -m hrm_jax.eval`: evaluate a checkpoint on benchmarks read from local files.

    python -m hrm_jax.eval --model runs/hrm/tiny --task gsm8k=data/gsm8k/test.jsonl
    python -m hrm_jax.eval --model hf/HRM-Text-1B --task mmlu=mmlu/test.parquet \\
        --shots-path mmlu=mmlu/dev.parquet --task arc_challenge=arc/test.jsonl \\
        --shots-path arc_challenge=arc/validation.jsonl --limit 200 --out evals/1b

Files use each benchmark's public field names (the Hugging Face versions): JSONL, JSON or
Parquet. Writes OUT/results.json and OUT/results.md; OUT/<task>.predictions.jsonl caches every
scored item, so rerunning the command resumes an interrupted evaluation. The cache is kept per
model (its path, checkpoint step and config hash) and generation settings: evaluating another
model into the same OUT is refused before anything runs; give it its own --out.

The defaults are the paper authors' evaluation code (github.com/sapientinc/HRM-Text,
evaluation/): context = prompt + generated tokens (capped at the model's positions); a prompt
that does not fit is answered "" and counted in overlong_prompts, never cut.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from hrm_jax.eval.benchmarks import BENCHMARKS
from hrm_jax.eval.runner import (check_cache, evaluate, generation_settings,
                                 load_model_and_identity, markdown_table)


def _defaults() -> str:
  width = max(map(len, BENCHMARKS))
  return "defaults per benchmark (the authors'):\n" + "\n".join(
      f"  {name:<{width}}  {benchmark.protocol()}" for name, benchmark in BENCHMARKS.items())


def _pairs(values: list[str], flag: str, parser) -> dict[str, str]:
  out = {}
  for value in values:
    name, sep, path = value.partition("=")
    if not sep or name not in BENCHMARKS:
      parser.error(f"{flag} {value!r}: expected NAME=PATH with NAME one of {sorted(BENCHMARKS)}")
    out[name] = path
  return out


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m hrm_jax.eval", description=__doc__,
                                   epilog=_defaults(),
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--model", required=True,
                      help="a training run directory or a Hugging Face model directory")
  parser.add_argument("--task", action="append", default=[], metavar="NAME=PATH",
                      help=f"benchmark and its test file; NAME in {sorted(BENCHMARKS)}")
  parser.add_argument("--shots-path", action="append", default=[], metavar="NAME=PATH",
                      help="file of k-shot examples: MMLU dev, ARC-C validation, HellaSwag / "
                           "Winogrande / BoolQ train (DROP's three examples are built in)")
  parser.add_argument("--shots", type=int, default=None,
                      help="override k for the k-shot benchmarks")
  parser.add_argument("--limit", type=int, default=None, help="first N items per benchmark")
  parser.add_argument("--batch-size", type=int, default=16)
  parser.add_argument("--max-context", type=int, default=None,
                      help="override the context (prompt + generated tokens)")
  parser.add_argument("--max-new-tokens", type=int, default=None,
                      help="override the most generated tokens (default: the benchmark's)")
  parser.add_argument("--temperature", type=float, default=None,
                      help="override the temperature (0: greedy; AIME samples at 0.6)")
  parser.add_argument("--samples", type=int, default=None,
                      help="answers per problem for majority voting (AIME; default 256)")
  parser.add_argument("--seed", type=int, default=0, help="sampling seed")
  parser.add_argument("--out", default="evals")
  parser.add_argument("--no-progress", action="store_true")
  args = parser.parse_args(argv)
  tasks = _pairs(args.task, "--task", parser)
  shots = _pairs(args.shots_path, "--shots-path", parser)
  if not tasks:
    parser.error("give at least one --task NAME=PATH")
  for flag, value, least in (("--batch-size", args.batch_size, 1), ("--limit", args.limit, 1),
                             ("--max-new-tokens", args.max_new_tokens, 1),
                             ("--max-context", args.max_context, 2),
                             ("--samples", args.samples, 1), ("--shots", args.shots, 0),
                             ("--temperature", args.temperature, 0)):
    if value is not None and value < least:
      parser.error(f"{flag} {value}: must be at least {least}")
  try:
    model, tokenizer, identity = load_model_and_identity(args.model)
    # --shots changes the k of the k-shot benchmarks, --samples the n of the voting ones;
    # the others keep theirs.
    loaded = {name: BENCHMARKS[name].load(
        path, shots_path=shots.get(name), limit=args.limit,
        shots=args.shots if BENCHMARKS[name].default_shots else None,
        samples=args.samples if BENCHMARKS[name].default_samples > 1 else None)
              for name, path in tasks.items()}
    settings = {name: generation_settings(
        model, BENCHMARKS[name], max_context=args.max_context,
        max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
        batch_size=args.batch_size) for name in loaded}
    caches = {name: os.path.join(args.out, f"{name}.predictions.jsonl") for name in loaded}
    for name, path in caches.items():  # before any task runs: a stale cache stops them all
      check_cache(path, identity, settings[name])
  except (FileNotFoundError, ValueError) as error:  # StaleCacheError included
    parser.error(str(error))
  os.makedirs(args.out, exist_ok=True)
  results = []
  for name, items in loaded.items():
    results.append(evaluate(model, tokenizer, BENCHMARKS[name], items,
                            batch_size=args.batch_size, max_context=args.max_context,
                            max_new_tokens=args.max_new_tokens, temperature=args.temperature,
                            seed=args.seed, cache_path=caches[name], cache_key=identity,
                            progress=not args.no_progress))
  with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
    json.dump({"model": args.model, "model_identity": identity,
               "results": [{k: v for k, v in r.items() if k != "per_item"} for r in results]},
              f, indent=1)
  table = markdown_table(results)
  with open(os.path.join(args.out, "results.md"), "w", encoding="utf-8") as f:
    f.write(f"# {args.model}\n\n{table}\n")
  print(table)
  return 0


if __name__ == "__main__":
  sys.exit(main())
