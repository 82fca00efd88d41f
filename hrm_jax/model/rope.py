"""Rotary position embeddings in float32 (the Llama "rotate half" convention of the reference)."""

import jax
import jax.numpy as jnp


def rotary_tables(positions_BT: jax.Array, head_dim: int, theta: float):
  """cos, sin of shape [B, T, head_dim] for integer positions."""
  inv_freq = 1.0 / theta ** (jnp.arange(0, head_dim, 2, dtype=jnp.float32) / head_dim)
  angles = positions_BT.astype(jnp.float32)[..., None] * inv_freq
  angles = jnp.concatenate([angles, angles], axis=-1)
  return jnp.cos(angles), jnp.sin(angles)


def apply_rotary(x_BTNK: jax.Array, cos_BTK: jax.Array, sin_BTK: jax.Array) -> jax.Array:
  x = x_BTNK.astype(jnp.float32)
  first, second = jnp.split(x, 2, axis=-1)
  rotated = jnp.concatenate([-second, first], axis=-1)
  out = x * cos_BTK[:, :, None, :] + rotated * sin_BTK[:, :, None, :]
  return out.astype(x_BTNK.dtype)
