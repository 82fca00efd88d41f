"""Orbax checkpoints of everything a run needs to continue exactly: the train state
(params, optimizer state, EMA, step) and the Grain iterator's position.

Saves are asynchronous and atomic (Orbax writes to a temporary directory and renames), so a
run killed mid-save resumes from the previous complete checkpoint. A complete checkpoint that
cannot be read back (damaged storage: a TensorStore DATA_LOSS error, a missing state/ item)
is skipped for the previous readable one (log.keep of them are kept), with a warning; the
trainer moves it aside to `unreadable.<step>` so the run can write that step again.
"""

from __future__ import annotations

import logging
import os

import jax
import orbax.checkpoint as ocp
from etils import epath

log = logging.getLogger(__name__)


class CheckpointError(ValueError):
  """No checkpoint could be read back; the message names the directory, steps and reasons."""


def has_checkpoints(directory: str) -> bool:
  """Whether `directory` holds a checkpoint step, without creating anything."""
  path = epath.Path(directory)
  return path.is_dir() and any(p.name.isdigit() for p in path.iterdir())


def _reason(error: Exception) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0][:300] if text else ''}"


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
    (default: the latest readable one)."""
    if step is None:
      _, state, data = self.restore_latest(abstract_state)
      return state, data
    try:
      return self._restore(abstract_state, step)
    except (ValueError, KeyError, OSError) as error:
      raise CheckpointError(f"checkpoint step {step} in {self.directory} cannot be read: "
                            f"{_reason(error)}") from error

  def restore_latest(self, abstract_state, *, set_aside: bool = False):
    """(step, state, data iterator state) of the newest checkpoint that reads back; a newer
    unreadable one is skipped with a warning and, with `set_aside`, renamed to
    `unreadable.<step>` (a resumed run writes that step again)."""
    steps = sorted(self._manager.all_steps(), reverse=True)
    if not steps:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    bad = []
    for step in steps:
      try:
        state, data = self._restore(abstract_state, step)
      except (ValueError, KeyError, OSError) as error:  # DATA_LOSS, a missing item, I/O
        bad.append(step)
        last_error = error
        log.warning("checkpoint step %d in %s cannot be read (%s); trying the previous one",
                    step, self.directory, _reason(error))
        continue
      if bad:
        log.warning("restored step %d in %s instead of the unreadable newer step(s) %s",
                    step, self.directory, bad)
        if set_aside:
          self._set_aside(bad)
      return step, state, data
    raise CheckpointError(
        f"no readable checkpoint in {self.directory}: steps {steps} all fail to restore; the "
        f"oldest failed with {_reason(last_error)}") from last_error

  def _restore(self, abstract_state, step: int):
    restored = self._manager.restore(step, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_state), data=ocp.args.JsonRestore()))
    return restored["state"], restored["data"]

  def _set_aside(self, steps) -> None:
    """Renames unreadable steps out of Orbax's view (kept for inspection, not deleted: a
    read error may be transient)."""
    if jax.process_index() == 0:
      root = epath.Path(self.directory)
      for step in steps:
        target, n = root / f"unreadable.{step}", 1
        while target.exists():
          target, n = root / f"unreadable.{step}.{n}", n + 1
        (root / str(step)).rename(target)
        log.warning("moved unreadable checkpoint step %d to %s", step, target)
    if jax.process_count() > 1:
      ocp.multihost.sync_global_processes("hrm_jax_set_aside_checkpoints")
    self._manager.reload()

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def close(self) -> None:
    self._manager.close()

