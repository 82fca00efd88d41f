"""Orbax checkpoints of everything a run needs to continue exactly: the train state
(params, optimizer state, EMA, step) and the Grain iterator's position.

Saves are asynchronous and atomic (Orbax writes to a temporary directory and renames), so a
run killed mid-save resumes from the previous complete checkpoint.
"""

from __future__ import annotations

import os

import orbax.checkpoint as ocp


def checkpoint_directory(run_dir: str, checkpoint_dir: str | None = None) -> str:
  """`checkpoint_dir` as given when it is a bucket URI (gs://, s3://: Orbax writes there through
  etils.epath and TensorStore), else an absolute local path; default `run_dir/checkpoints`."""
  directory = checkpoint_dir or os.path.join(run_dir, "checkpoints")
  return directory if "://" in directory else os.path.abspath(directory)


class Checkpoints:
  def __init__(self, directory: str, *, keep: int, async_save: bool):
    """`directory`: from `checkpoint_directory`."""
    self.directory = directory
    self._manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=async_save, create=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, data_state: dict) -> None:
    self._manager.save(step, args=ocp.args.Composite(
        state=ocp.args.StandardSave(state), data=ocp.args.JsonSave(data_state)))

  def restore(self, abstract_state, step: int | None = None):
    """(state placed as `abstract_state`'s shardings, data iterator state) at `step`
    (default: the latest)."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored["state"], restored["data"]

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()

