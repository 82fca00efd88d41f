"""Orbax checkpoints of everything a run needs to continue exactly: the train state
(params, optimizer state, EMA, step) and the Grain iterator's position (the JSON item `data`).

Saves are asynchronous (log.async_checkpoints) and atomic; a damaged newest checkpoint is
skipped for the previous readable one (log.keep of them are kept), and the trainer moves it
aside to `unreadable.<step>`: runkit.checkpoints, shared with Reflex.
"""

from __future__ import annotations

import os

from runkit import checkpoints
from runkit.checkpoints import CheckpointError, has_checkpoints

# CheckpointError and has_checkpoints re-exported: this half's callers import them from here.
__all__ = ["CheckpointError", "Checkpoints", "checkpoint_directory", "has_checkpoints"]


def checkpoint_directory(run_dir: str, checkpoint_dir: str | None = None) -> str:
  """`checkpoint_dir` as given when it is a bucket URI (gs://, s3://: Orbax writes there through
  etils.epath and TensorStore), else an absolute local path; default `run_dir/checkpoints`."""
  directory = checkpoint_dir or os.path.join(run_dir, "checkpoints")
  return directory if "://" in directory else os.path.abspath(directory)


class Checkpoints(checkpoints.Checkpoints):
  """(state, data iterator state) per step: `restore` and `restore_latest` return the
  iterator's state as the JSON item."""

  def __init__(self, directory: str, *, keep: int, async_save: bool):
    """`directory`: from `checkpoint_directory`."""
    super().__init__(directory, json_item="data", keep=keep, async_save=async_save)
