"""Per-run metrics of an experiment: `metrics.jsonl` and `metrics.csv` (one row per logging
interval, variant and seed), TensorBoard event files (one run per variant/seed, written
by tensorboardX: TensorBoard itself is not needed to write them) and optionally W&B runs
(one per variant/seed, grouped by the experiment).
"""

from __future__ import annotations

import math
import os

import numpy as np

from runkit import wandb_log
from runkit.metrics import read_metrics, summary_writer, write_csv, write_metrics

KEY_COLUMNS = ("log", "env_steps", "variant", "seed")


class MetricLog:
  """Appends rows; on resume, rows a killed run wrote after its last checkpoint are dropped so
  the files read as one uninterrupted run. Unlike HRM's one stream of steps, rows are per
  (interval, variant, seed) and mirrored to a CSV whose columns are all rows', so they are
  held in memory."""

  def __init__(self, directory: str, *, tensorboard: bool = True, wandb: dict | None = None):
    """wandb: None, or runkit.wandb_log.start's keywords but name (project, mode, config)."""
    os.makedirs(directory, exist_ok=True)
    self.directory = directory
    self.jsonl_path = os.path.join(directory, "metrics.jsonl")
    self.csv_path = os.path.join(directory, "metrics.csv")
    self._rows = read_metrics(self.jsonl_path) if os.path.exists(self.jsonl_path) else []
    self._rewrite()  # without a torn last line (killed mid-write) before anything is appended
    self._tensorboard = tensorboard
    self._writers: dict[tuple[str, int], object] = {}
    self._wandb = wandb
    self._wandb_runs: dict[tuple[str, int], object] = {}

  def keep(self, variants, logs_done: int) -> None:
    """Forgets rows of `variants` beyond `logs_done` intervals (what their checkpoint holds)."""
    self._rows = [r for r in self._rows if r["variant"] not in variants or r["log"] <= logs_done]
    self._rewrite()

  def write(self, log: int, env_steps: int, variants, seeds, metrics: dict) -> None:
    """`metrics` {name: [len(variants), len(seeds)]} of one logging interval."""
    new = []
    for i, variant in enumerate(variants):
      for j, seed in enumerate(seeds):
        row = {"log": log, "env_steps": int(env_steps), "variant": variant, "seed": int(seed)}
        row.update({k: _scalar(v[i, j]) for k, v in metrics.items() if k != "env_steps"})
        new.append(row)
    self._rows.extend(new)
    write_metrics(self.jsonl_path, new, append=True)
    self._write_csv()
    if self._tensorboard:
      for row in new:
        writer = self._writer(row["variant"], row["seed"])
        for k, v in row.items():
          if k not in KEY_COLUMNS and v is not None:
            writer.add_scalar(k, v, row["env_steps"])
        writer.flush()
    if self._wandb is not None:
      for row in new:
        self._wandb_run(row["variant"], row["seed"]).log(
            {k: v for k, v in row.items() if k not in KEY_COLUMNS and v is not None},
            step=row["env_steps"])

  def _wandb_run(self, variant: str, seed: int):
    if (variant, seed) not in self._wandb_runs:
      self._wandb_runs[variant, seed] = wandb_log.start(
          self.directory, f"{variant}_seed{seed}", group=os.path.normpath(self.directory),
          **self._wandb)
    return self._wandb_runs[variant, seed]

  def _writer(self, variant: str, seed: int):
    if (variant, seed) not in self._writers:
      self._writers[variant, seed] = summary_writer(
          os.path.join(self.directory, "tensorboard", f"{variant}_seed{seed}"))
    return self._writers[variant, seed]

  def _rewrite(self) -> None:
    write_metrics(self.jsonl_path, self._rows)
    self._write_csv()

  def _write_csv(self) -> None:
    write_csv(self.csv_path, self._rows, KEY_COLUMNS)

  def close(self) -> None:
    for writer in self._writers.values():
      writer.close()
    for run in self._wandb_runs.values():
      run.finish()


def _scalar(x) -> float | None:
  x = float(np.asarray(x))
  return x if math.isfinite(x) else None  # JSON has no NaN; None = not measured yet
