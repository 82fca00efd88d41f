"""Orbax checkpoints of a training run: the whole vmapped train state (parameters, optimizer
states, observation normalizer, environment states, RNG keys, step counters and, for SAC, the
replay buffer) plus the metric history so far, keyed by the number of logging intervals done.

Orbax writes each checkpoint to a temporary directory and renames it when complete, so a run
killed mid-save resumes from the previous complete one.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp


def _is_key(x) -> bool:
  return hasattr(x, "dtype") and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _storable(x):
  """Typed PRNG keys are stored as their raw key data; zero-size arrays (some simulator
  fields), which Orbax cannot save, as nothing."""
  if x.size == 0:
    return None
  return jax.random.key_data(x) if _is_key(x) else x


def _unstored(template, value):
  if template.size == 0:
    return jnp.zeros(template.shape, template.dtype)
  return jax.random.wrap_key_data(value) if _is_key(template) else value


class RunCheckpoints:
  """`save(logs_done, state, history)` / `restore(abstract_state)` for `driver.drive`."""

  def __init__(self, directory: str, *, keep: int = 2, every: int = 1):
    if every < 1 or keep < 1:
      raise ValueError(f"checkpoint every ({every}) and keep ({keep}) must be positive")
    self.directory = os.path.abspath(directory)
    self.every = every
    self._manager = ocp.CheckpointManager(
        self.directory, options=ocp.CheckpointManagerOptions(max_to_keep=keep, create=True))

  def latest(self) -> int | None:
    """Logging intervals done at the latest complete checkpoint (None: no checkpoint)."""
    return self._manager.latest_step()

  def save(self, logs_done: int, state, history: dict[str, list], *, force: bool = False):
    if not force and logs_done % self.every:
      return
    raw = jax.tree.map(_storable, state)
    self._manager.save(logs_done, args=ocp.args.Composite(
        state=ocp.args.StandardSave(raw),
        history=ocp.args.JsonSave({k: np.asarray(v).tolist() for k, v in history.items()})),
        force=force)

  def restore(self, abstract_state, logs_done: int | None = None):
    """(state, history {name: list of per-interval arrays}, logs_done) of the latest
    checkpoint, with the layout (and typed keys) of `abstract_state`."""
    logs_done = self.latest() if logs_done is None else logs_done
    if logs_done is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    abstract_raw = jax.tree.map(
        lambda x: jax.eval_shape(_storable, x) if x.size else None, abstract_state)
    restored = self._manager.restore(logs_done, args=ocp.args.Composite(
        state=ocp.args.StandardRestore(abstract_raw), history=ocp.args.JsonRestore()))
    stored = iter(jax.tree.leaves(restored["state"]))
    state = jax.tree.map(lambda x: _unstored(x, next(stored) if x.size else None),
                         abstract_state)
    history = {k: [np.asarray(v, np.float64 if k != "env_steps" else np.int64) for v in values]
               for k, values in restored["history"].items()}
    return state, history, logs_done

  def close(self):
    self._manager.wait_until_finished()
    self._manager.close()
