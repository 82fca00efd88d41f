"""Metric lines to `metrics.jsonl`, `metrics.csv`, TensorBoard event files (runkit.metrics,
shared with Reflex) and optionally a W&B run: one line per logging step, on the first
process only."""

from __future__ import annotations

import os

from runkit.metrics import read_metrics, summary_writer, write_csv, write_metrics

__all__ = ["MetricWriter", "read_metrics"]  # read_metrics: this half's callers import it here


class MetricWriter:
  """One JSON object per line in `metrics.jsonl`, mirrored to `metrics.csv` (its columns are
  all lines' keys: evaluation lines add some), TensorBoard and a W&B run (`wandb_run`)."""

  def __init__(self, directory: str, *, tensorboard: bool = True, enabled: bool = True,
               resume_step: int | None = None, wandb_run=None):
    """`resume_step`: lines a killed run wrote after its last checkpoint are dropped, so a
    resumed run's file reads as one uninterrupted run."""
    self.enabled = enabled
    self._wandb = wandb_run
    if not enabled:
      return
    os.makedirs(directory, exist_ok=True)
    self.path = os.path.join(directory, "metrics.jsonl")
    self.csv_path = os.path.join(directory, "metrics.csv")
    self._rows = [m for m in (read_metrics(self.path) if os.path.exists(self.path) else [])
                  if resume_step is not None and m["step"] <= resume_step]
    write_metrics(self.path, self._rows)  # creates the file: a fresh run has one from the start
    write_csv(self.csv_path, self._rows, ("step",))
    self._tensorboard = (summary_writer(os.path.join(directory, "tensorboard"))
                         if tensorboard else None)

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    scalars = {k: float(v) for k, v in metrics.items()}
    row = {"step": step, **scalars}
    self._rows.append(row)
    write_metrics(self.path, [row], append=True)
    write_csv(self.csv_path, self._rows, ("step",))
    if self._tensorboard is not None:
      for name, value in scalars.items():
        self._tensorboard.add_scalar(name, value, step)
    if self._wandb is not None:
      self._wandb.log(scalars, step=step)

  def close(self) -> None:
    if self.enabled and self._tensorboard is not None:
      self._tensorboard.close()
    if self._wandb is not None:
      self._wandb.finish()
