"""Orbax checkpoints of a training run: the whole vmapped train state (parameters, optimizer
states, observation normalizer, environment states, RNG keys, step counters and, for SAC, the
replay buffer) plus the metric history so far, keyed by the number of logging intervals done.

Saves are atomic and a damaged newest checkpoint is skipped for the previous readable one
(runkit.checkpoints, shared with HRM); what is Reflex's here is how the state is stored (typed
PRNG keys as key data, zero-size leaves as nothing) and the history as the JSON item.
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from runkit import checkpoints


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
    self.restored: int | None = None  # logging intervals done at the checkpoint last restored
    self._checkpoints = checkpoints.Checkpoints(self.directory, json_item="history", keep=keep)

  def latest(self) -> int | None:
    """Logging intervals done at the latest complete checkpoint (None: no checkpoint)."""
    return self._checkpoints.latest_step()

  def save(self, logs_done: int, state, history: dict[str, list], *, force: bool = False):
    if not force and logs_done % self.every:
      return
    self._checkpoints.save(logs_done, jax.tree.map(_storable, state),
                           {k: np.asarray(v).tolist() for k, v in history.items()}, force=force)

  def restore(self, abstract_state, logs_done: int | None = None, *, set_aside: bool = False):
    """(state, history {name: list of per-interval arrays}, logs_done) of checkpoint
    `logs_done` (default: the latest readable one; with `set_aside`, newer unreadable ones
    are moved aside so that a resumed run writes them again), with the layout (and typed
    keys) of `abstract_state`."""
    abstract_raw = jax.tree.map(
        lambda x: jax.eval_shape(_storable, x) if x.size else None, abstract_state)
    if logs_done is None:
      logs_done, raw, history = self._checkpoints.restore_latest(abstract_raw,
                                                                 set_aside=set_aside)
    else:
      raw, history = self._checkpoints.restore(abstract_raw, logs_done)
    stored = iter(jax.tree.leaves(raw))
    state = jax.tree.map(lambda x: _unstored(x, next(stored) if x.size else None),
                         abstract_state)
    history = {k: [np.asarray(v, np.float64 if k != "env_steps" else np.int64) for v in values]
               for k, values in history.items()}
    self.restored = logs_done
    return state, history, logs_done

  def close(self):
    self._checkpoints.close()  # waits for a save in flight
