"""SwiGLU feed-forward: down(silu(gate(x)) * up(x)), no biases."""

import jax
from flax import nnx

from hrm_jax.model.config import ModelConfig
from hrm_jax.model.linear import dense


class SwiGLU(nnx.Module):

  def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
    d, f = config.hidden_size, config.mlp_width
    self.gate_proj = dense(config, d, f, rngs)
    self.up_proj = dense(config, d, f, rngs)
    self.down_proj = dense(config, f, d, rngs)

  def __call__(self, x_BTD: jax.Array) -> jax.Array:
    # Token-flattened 2-D matmuls: XLA-CPU's weight gradient contracting over two batch-like
    # dims ([B, T, D]) runs ~2× slower than over one ([B·T, D]).
    x_RD = x_BTD.reshape(-1, x_BTD.shape[-1])
    out_RD = self.down_proj(jax.nn.silu(self.gate_proj(x_RD)) * self.up_proj(x_RD))
    return out_RD.reshape(x_BTD.shape)
