"""Metric lines to JSONL and TensorBoard event files (tensorboardX: TensorBoard itself is not
needed to write them)."""

from __future__ import annotations

import json
import os


class MetricWriter:
  """One JSON object per line in `metrics.jsonl`; scalars mirrored to TensorBoard."""

  def __init__(self, directory: str, *, tensorboard: bool = True, enabled: bool = True,
               resume_step: int | None = None):
    """`resume_step`: lines a killed run wrote after its last checkpoint are dropped, so a
    resumed run's file reads as one uninterrupted run."""
    self.enabled = enabled
    if not enabled:
      return
    os.makedirs(directory, exist_ok=True)
    self.path = os.path.join(directory, "metrics.jsonl")
    if os.path.exists(self.path):
      kept = [m for m in read_metrics(self.path)
              if resume_step is not None and m["step"] <= resume_step]
      with open(self.path, "w", encoding="utf-8") as f:
        f.writelines(json.dumps(m) + "\n" for m in kept)
    self._file = open(self.path, "a", encoding="utf-8")
    self._tensorboard = None
    if tensorboard:
      from tensorboardX import SummaryWriter  # imported lazily: optional at run time
      self._tensorboard = SummaryWriter(os.path.join(directory, "tensorboard"))

  def write(self, step: int, metrics: dict) -> None:
    if not self.enabled:
      return
    scalars = {k: float(v) for k, v in metrics.items()}
    self._file.write(json.dumps({"step": step, **scalars}) + "\n")
    self._file.flush()
    if self._tensorboard is not None:
      for name, value in scalars.items():
        self._tensorboard.add_scalar(name, value, step)

  def close(self) -> None:
    if self.enabled:
      self._file.close()
      if self._tensorboard is not None:
        self._tensorboard.close()


def read_metrics(path: str) -> list[dict]:
  """The metric lines; a torn last line (the run was killed mid-write) is dropped, a bad line
  before it raises ValueError naming the file and line."""
  with open(path, encoding="utf-8", errors="replace") as f:  # a cut may split a character
    lines = [(n, line) for n, line in enumerate(f, start=1) if line.strip()]
  out = []
  for i, (number, line) in enumerate(lines):
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError as error:
      if i == len(lines) - 1:
        break  # cut mid-write by a kill: the resumed run writes that step again
      raise ValueError(f"{path}:{number}: not a JSON metric line ({error.msg})") from None
  return out
