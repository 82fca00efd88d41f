"""Model FLOPs per token, for tokens/s → MFU. Multiply-adds count 2; the embedding lookup and
norms are free; attention counts QKᵀ and AV over the keys a query actually sees."""

from __future__ import annotations

from hrm_jax.model.config import ModelConfig


def layer_matmul_flops(config: ModelConfig) -> int:
  """Per token, one block: q, k, v, gate (D→W), o (W→D) and the three SwiGLU matrices."""
  d, w, f = config.hidden_size, config.attention_width, config.mlp_width
  return 2 * (5 * d * w + 3 * d * f)


def attended_keys(seq_len: int, mode: str) -> float:
  """Mean keys per query for one sample filling the row (causal: (T+1)/2; PrefixLM is
  counted as causal, a lower bound that keeps MFU honest)."""
  return float(seq_len) if mode == "bidirectional" else (seq_len + 1) / 2


def call_flops(config: ModelConfig, seq_len: int) -> float:
  """Per token, one call of an n-block stack."""
  attention = 4 * config.attention_width * attended_keys(seq_len, config.attention)
  return config.num_layers_per_stack * (layer_matmul_flops(config) + attention)


def forward_flops(config: ModelConfig, seq_len: int) -> float:
  """Per token: every stack call and the head."""
  return config.num_calls * call_flops(config, seq_len) + 2 * config.hidden_size * config.vocab_size


def train_flops(config: ModelConfig, seq_len: int, bp_steps: int | None = None) -> float:
  """Per token: the forward pass plus a backward (2× forward) through the calls inside the
  gradient window (config.gradient_calls) and the head. Calls outside the window cost forward
  only. Every call of every architecture runs num_layers_per_stack blocks, so calls cost
  alike."""
  in_window = sum(config.gradient_calls(bp_steps))
  head = 2 * config.hidden_size * config.vocab_size
  return forward_flops(config, seq_len) + 2 * (in_window * call_flops(config, seq_len) + head)


def parameter_count(config: ModelConfig) -> int:
  """Trainable parameters (z_L_init excluded)."""
  d, w, f = config.hidden_size, config.attention_width, config.mlp_width
  block = 5 * d * w + 3 * d * f
  return config.num_stacks * config.num_layers_per_stack * block + 2 * config.vocab_size * d
