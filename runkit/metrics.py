"""Metric files: JSON lines (one object a line, appended as a run goes) and TensorBoard event
files (written by tensorboardX: TensorBoard itself is not needed to write them)."""

from __future__ import annotations

import csv
import json
import math


def read_metrics(path: str) -> list[dict]:
  """The lines of a JSONL metric file; a torn last line (the run was killed mid-write) is
  dropped, a bad line before it raises ValueError naming the file and line."""
  with open(path, encoding="utf-8", errors="replace") as f:  # a cut may split a character
    lines = [(n, line) for n, line in enumerate(f, start=1) if line.strip()]
  out = []
  for i, (number, line) in enumerate(lines):
    try:
      out.append(json.loads(line))
    except json.JSONDecodeError as error:
      if i == len(lines) - 1:
        break  # cut mid-write by a kill: the resumed run writes that line again
      raise ValueError(f"{path}:{number}: not a JSON metric line ({error.msg})") from None
  return out


def write_metrics(path: str, rows, *, append: bool = False) -> None:
  """Writes `rows` (dicts) as JSON lines: the whole file, or appended to it. A non-finite
  number is written as null: JSON has no NaN, and other readers (jq, browsers) reject it."""
  with open(path, "a" if append else "w", encoding="utf-8") as f:
    f.writelines(json.dumps({k: _finite_or_none(v) for k, v in row.items()}, allow_nan=False)
                 + "\n" for row in rows)


def _finite_or_none(value):
  return None if isinstance(value, float) and not math.isfinite(value) else value


def summary_writer(directory: str):
  """A tensorboardX SummaryWriter into `directory`."""
  # Imported on first use: a run with TensorBoard off never loads it.
  from tensorboardX import SummaryWriter  # pylint: disable=import-outside-toplevel
  return SummaryWriter(directory)


def write_csv(path: str, rows, first_columns=()) -> None:
  """The whole of `rows` as CSV: `first_columns`, then every other key any row has, sorted
  (rows may differ in keys, e.g. evaluation lines; a missing value is an empty cell)."""
  columns = list(first_columns) + sorted({k for r in rows for k in r} - set(first_columns))
  with open(path, "w", newline="", encoding="utf-8") as f:
    writer = csv.DictWriter(f, columns)
    writer.writeheader()
    writer.writerows(rows)
