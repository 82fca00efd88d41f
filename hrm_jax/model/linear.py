"""The one bias-free projection every HRM-Text layer uses: fp32 parameters, compute dtype,
truncated LeCun-normal init (std 1/sqrt(fan_in))."""

import jax.numpy as jnp
from flax import nnx

from hrm_jax.model.config import ModelConfig

LECUN_TRUNCATED = nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal")


def dense(config: ModelConfig, fan_in: int, fan_out: int, rngs: nnx.Rngs) -> nnx.Linear:
  return nnx.Linear(fan_in, fan_out, use_bias=False, kernel_init=LECUN_TRUNCATED,
                    param_dtype=jnp.float32, dtype=jnp.dtype(config.compute_dtype), rngs=rngs)
