"""Orbax checkpoints of a run: per step, the state (a pytree of arrays) and one JSON item
beside it (what each half adds: Reflex's metric history, HRM's data-iterator position).

Saves are atomic (Orbax writes to a temporary directory and renames), so a run killed
mid-save resumes from the previous complete checkpoint. A complete checkpoint that cannot be
read back (damaged storage: a TensorStore DATA_LOSS error, a missing item) is skipped for the
previous readable one, with a warning; a resuming run moves it aside to `unreadable.<step>`
so that it can write that step again.
"""

from __future__ import annotations

import logging

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


# What a damaged checkpoint raises on restore: TensorStore DATA_LOSS, a missing item, I/O.
UNREADABLE = (ValueError, KeyError, OSError)


class Checkpoints:
  """Steps of (state, JSON item `json_item`) in `directory` (a local path or a bucket URI),
  the last `keep` kept."""

  def __init__(self, directory: str, *, json_item: str, keep: int, async_save: bool = True):
    self.directory = directory
    self._json_item = json_item
    self._manager = ocp.CheckpointManager(
        directory, options=ocp.CheckpointManagerOptions(
            max_to_keep=keep, enable_async_checkpointing=async_save, create=True))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state, json_value, *, force: bool = False) -> None:
    self._manager.save(step, args=ocp.args.Composite(**{
        "state": ocp.args.StandardSave(state), self._json_item: ocp.args.JsonSave(json_value)}),
        force=force)

  def restore(self, abstract_state, step: int | None = None):
    """(state with `abstract_state`'s layout and shardings, JSON item) at `step` (default:
    the latest readable one)."""
    if step is None:
      _, state, value = self.restore_latest(abstract_state)
      return state, value
    try:
      return self._restore(abstract_state, step)
    except UNREADABLE as error:
      raise CheckpointError(f"checkpoint step {step} in {self.directory} cannot be read: "
                            f"{_reason(error)}") from error

  def restore_latest(self, abstract_state, *, set_aside: bool = False):
    """(step, state, JSON item) of the newest checkpoint that reads back; a newer unreadable
    one is skipped with a warning and, with `set_aside`, renamed to `unreadable.<step>` (a
    resumed run writes that step again)."""
    steps = sorted(self._manager.all_steps(), reverse=True)
    if not steps:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    bad = []
    for step in steps:
      try:
        state, value = self._restore(abstract_state, step)
      except UNREADABLE as error:
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
      return step, state, value
    raise CheckpointError(
        f"no readable checkpoint in {self.directory}: steps {steps} all fail to restore; the "
        f"oldest failed with {_reason(last_error)}") from last_error

  def _restore(self, abstract_state, step: int):
    restored = self._manager.restore(step, args=ocp.args.Composite(**{
        "state": ocp.args.StandardRestore(abstract_state),
        self._json_item: ocp.args.JsonRestore()}))
    return restored["state"], restored[self._json_item]

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
      ocp.multihost.sync_global_processes("runkit_set_aside_checkpoints")
    self._manager.reload()

  def close(self) -> None:
    """Waits for a save in flight, then closes."""
    self._manager.wait_until_finished()
    self._manager.close()
