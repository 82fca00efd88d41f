"""Parameterless RMSNorm (no learnable gain anywhere in HRM-Text), computed in float32."""

import jax
import jax.numpy as jnp


def rms_norm(x: jax.Array, eps: float) -> jax.Array:
  x32 = x.astype(jnp.float32)
  y = x32 * jax.lax.rsqrt(jnp.mean(jnp.square(x32), axis=-1, keepdims=True) + eps)
  return y.astype(x.dtype)
