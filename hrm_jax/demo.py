"""The HRM-Text demo: train a tiny model on the built-in generator on CPU (a few minutes),
logging the loss and the exact-match accuracy of its greedy answers as it learns, then show
a few answers. Re-running continues from the last checkpoint in the run directory.

    python -m hrm_jax.demo                      # experiments/hrm/tiny.yaml
    python -m hrm_jax.demo schedule.steps=300   # any key=value override
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from hrm_jax.data.synthetic import Record, example
from hrm_jax.data.tokenizer import load_tokenizer
from hrm_jax.eval.answers import last_boxed
from hrm_jax.generate import greedy_answers

TINY_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                           "experiments", "hrm", "tiny.yaml")
def held_out(count: int, tasks, seed: int) -> list[Record]:
  return [example(i, seed=seed, tasks=tuple(tasks)) for i in range(count)]


def exact_match(model, tokenizer, records: list[Record], *, max_new_tokens: int = 48,
                batch: int = 64) -> dict:
  """Fraction of records whose generated boxed answer equals the reference's, overall and
  per task."""
  hits: dict[str, list[bool]] = {}
  for start in range(0, len(records), batch):
    chunk = records[start:start + batch]
    for tags in {r.tags for r in chunk}:
      group = [r for r in chunk if r.tags == tags]
      answers = greedy_answers(model, tokenizer, [r.instruction for r in group], tags,
                               max_new_tokens=max_new_tokens)
      for record, answer in zip(group, answers):
        hits.setdefault(record.task, []).append(last_boxed(answer) == last_boxed(record.response))
  every = [h for task_hits in hits.values() for h in task_hits]
  metrics = {"eval/exact_match": sum(every) / max(len(every), 1)}
  metrics.update({f"eval/exact_match/{task}": sum(h) / len(h) for task, h in hits.items()})
  return metrics


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m hrm_jax.demo", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", default=TINY_CONFIG, help="YAML config (default: tiny)")
  parser.add_argument("--eval-examples", type=int, default=96,
                      help="held-out generator examples scored at each evaluation")
  parser.add_argument("overrides", nargs="*", metavar="key=value")
  args = parser.parse_intermixed_args(argv)
  from hrm_jax.train.config import ConfigError, load_config  # pylint: disable=import-outside-toplevel
  try:
    config = load_config([args.config], args.overrides)
  except (ConfigError, FileNotFoundError) as error:
    parser.exit(2, f"config error: {error}\n")
  logging.basicConfig(level=logging.WARNING, format="%(message)s", force=True)
  from hrm_jax.train.checkpoint import CheckpointError  # pylint: disable=import-outside-toplevel
  from hrm_jax.train.loop import train  # pylint: disable=import-outside-toplevel
  from hrm_jax.train.metrics import read_metrics  # pylint: disable=import-outside-toplevel

  source = config.eval_sources[0]
  records = held_out(args.eval_examples, source.get("tasks", ()) or ("addition",),
                     seed=int(source.get("seed", 12345)))
  tokenizer = load_tokenizer(config.data.tokenizer)
  try:
    result = train(config, extra_eval=lambda model: exact_match(model, tokenizer, records))
  except ConfigError as error:  # found before the first step: nothing was written
    parser.exit(2, f"config error: {error}\n")
  except CheckpointError as error:
    parser.exit(2, f"checkpoint error: {error}\n")

  print(f"\n{'step':>6} {'train loss':>11} {'eval loss (EMA)':>16} {'exact match':>12}")
  for line in read_metrics(os.path.join(config.log.dir, "metrics.jsonl")):
    if "eval/exact_match" in line:
      print(f"{int(line['step']):6d} {line['loss']:11.3f} {line['eval/loss_ema']:16.3f} "
            f"{line['eval/exact_match']:12.1%}")
  model = result.model(ema=True)
  print("\nsample answers (EMA weights, greedy):")
  for record in records[:4]:
    answer = greedy_answers(model, tokenizer, [record.instruction], record.tags)[0]
    mark = "✓" if last_boxed(answer) == last_boxed(record.response) else "✗"
    print(f"  {mark} Q: {record.instruction}\n    A: {answer}")
  print(f"\nmetrics: {os.path.join(config.log.dir, 'metrics.jsonl')} "
        f"(TensorBoard: {os.path.join(config.log.dir, 'tensorboard')})")
  return 0


if __name__ == "__main__":
  sys.exit(main())
