"""A replay buffer that lives on the device: a fixed-size circular pytree, insert and uniform
sample inside jit. Its state is an ordinary pytree, so it vmaps over runs, shards with the
environments and is saved in checkpoints with everything else.

Layout [rows, num_envs, ...]: one insert writes the transitions of every environment at one
step (a dynamic_update_slice, no scatter), so capacity = rows × num_envs transitions.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class ReplayBuffer:
  data: dict        # leaf [rows, num_envs, ...]
  position: jax.Array  # next row to write
  rows_filled: jax.Array

  @property
  def capacity(self) -> int:
    leaf = jax.tree.leaves(self.data)[0]
    return leaf.shape[0] * leaf.shape[1]


def create(example: dict, capacity: int) -> ReplayBuffer:
  """An empty buffer for transitions shaped like `example` (leaves [num_envs, ...])."""
  num_envs = jax.tree.leaves(example)[0].shape[0]
  rows = capacity // num_envs
  if rows < 1:
    raise ValueError(f"replay capacity {capacity} is smaller than one step of {num_envs} envs")
  data = jax.tree.map(lambda x: jnp.zeros((rows,) + x.shape, x.dtype), example)
  return ReplayBuffer(data, jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))


def insert(buffer: ReplayBuffer, transitions: dict) -> ReplayBuffer:
  """Writes one step of all environments, overwriting the oldest row once full."""
  rows = jax.tree.leaves(buffer.data)[0].shape[0]
  data = jax.tree.map(
      lambda store, x: jax.lax.dynamic_update_index_in_dim(store, x.astype(store.dtype),
                                                           buffer.position, 0),
      buffer.data, transitions)
  return ReplayBuffer(data, (buffer.position + 1) % rows,
                      jnp.minimum(buffer.rows_filled + 1, rows))


def sample(buffer: ReplayBuffer, key: jax.Array, batch_size: int) -> dict:
  """`batch_size` transitions drawn uniformly (with replacement) from those stored."""
  num_envs = jax.tree.leaves(buffer.data)[0].shape[1]
  k_row, k_env = jax.random.split(key)
  row = jax.random.randint(k_row, (batch_size,), 0, jnp.maximum(buffer.rows_filled, 1))
  env = jax.random.randint(k_env, (batch_size,), 0, num_envs)
  return jax.tree.map(lambda store: store[row, env], buffer.data)


def size(buffer: ReplayBuffer) -> jax.Array:
  """Transitions stored."""
  return buffer.rows_filled * jax.tree.leaves(buffer.data)[0].shape[1]
