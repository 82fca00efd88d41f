"""The HRM-Text language model: scaled embedding, H/L recurrence with MagicNorm stacks,
untied head, and the truncated-backprop window (warm-up deep credit assignment).

Recurrence (x = scale · E[tokens]):
  z_H ← x; z_L ← z_L_init
  H_cycles times: { L_cycles times: z_L ← L(z_L, z_H) }; z_H ← H(z_H, z_L)
  logits = W_out z_H
The gradient window is `HrmText.gradient_calls`; `Trm` shares one stack between both roles.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
from flax import nnx

from hrm_jax.model.attention import Segments, model_mask
from hrm_jax.model.config import ModelConfig
from hrm_jax.model.linear import dense
from hrm_jax.model.rope import rotary_tables
from hrm_jax.model.stack import Stack

EMBEDDING_INIT = nnx.initializers.variance_scaling(1.0, "fan_in", "truncated_normal",
                                                   in_axis=-1, out_axis=-2)  # std 1/sqrt(D)


@dataclasses.dataclass(frozen=True)
class KVCache:
  """Keys and values of every (module call, layer): [calls, layers, B, S, heads, head_dim].
  Every module call of a token (config.num_calls) attends over its own history."""
  k: jax.Array
  v: jax.Array

  @property
  def length(self) -> int:
    return self.k.shape[3]


jax.tree_util.register_dataclass(KVCache, data_fields=["k", "v"], meta_fields=[])


class Buffer(nnx.Variable):
  """A fixed tensor saved with the model but never trained (z_L_init)."""


def fixed_start(config: ModelConfig, rngs: nnx.Rngs) -> Buffer:
  """HRM's fixed random z_L_init: std 1, truncated at 2 std and rescaled back to unit std."""
  z = jax.random.truncated_normal(rngs.params(), -2.0, 2.0, (config.hidden_size,))
  return Buffer(z / 0.87962566)


class LanguageModel(nnx.Module):
  """What every architecture shares: embedding, positions and mask, head. Subclasses
  implement `core(x, cos, sin, mask, bp_steps) -> z` (the final hidden state) and
  `cached_core`, and declare the facts ModelConfig answers for them (through the registry in
  hrm_jax/model/__init__.py): `num_calls`, `gradient_calls`, `num_stacks`, `takes_loop_init`.
  """

  num_stacks: int  # distinct parameter sets of blocks
  takes_loop_init: bool = False  # whether config.loop_init sets where its loops start

  @classmethod
  def num_calls(cls, config: ModelConfig) -> int:
    """Stack calls per forward pass (each runs num_layers_per_stack blocks)."""
    raise NotImplementedError

  @classmethod
  def gradient_calls(cls, config: ModelConfig, bp_steps: int) -> tuple[bool, ...]:
    """Per call in call order, whether it carries gradient at `bp_steps` (ask
    ModelConfig.gradient_calls). By default the last `bp_steps` calls."""
    calls = cls.num_calls(config)
    if not 1 <= bp_steps <= calls:
      raise ValueError(f"bp_steps must be in [1, {calls}], got {bp_steps}")
    return tuple(k >= calls - bp_steps for k in range(calls))

  def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
    self.config = config
    self.embed_tokens = nnx.Embed(config.vocab_size, config.hidden_size,
                                  embedding_init=EMBEDDING_INIT, param_dtype=jnp.float32,
                                  dtype=jnp.dtype(config.compute_dtype), rngs=rngs)
    self.lm_head = dense(config, config.hidden_size, config.vocab_size, rngs)

  def __call__(self, tokens_BT: jax.Array, segments: Segments | None = None, *,
               bp_steps: int | None = None) -> jax.Array:
    """Logits [B, T, V] in float32. `segments` defaults to one sample per row with no prefix
    (plain causal under prefix_lm); `bp_steps` None means full backprop."""
    z_BTD = self.hidden(tokens_BT, segments, bp_steps=bp_steps)
    logits_RV = self.lm_head(z_BTD.reshape(-1, z_BTD.shape[-1]))  # 2-D: see mlp.py
    return logits_RV.reshape(*z_BTD.shape[:2], -1).astype(jnp.float32)

  def hidden(self, tokens_BT, segments=None, *, bp_steps=None):
    c = self.config
    if tokens_BT.ndim != 2:
      raise ValueError(f"tokens must be [batch, length], got shape {tuple(tokens_BT.shape)}")
    if tokens_BT.shape[1] > c.max_position_embeddings:
      raise ValueError(f"sequence length {tokens_BT.shape[1]} exceeds max_position_embeddings "
                       f"{c.max_position_embeddings}")
    if segments is None:
      segments = Segments.single(tokens_BT)
    for name, value in vars(segments).items():
      if value.shape != tokens_BT.shape:
        raise ValueError(f"segments.{name} has shape {tuple(value.shape)}, tokens "
                         f"{tuple(tokens_BT.shape)}")
    x_BTD = self.embed_tokens(tokens_BT) * jnp.asarray(c.input_scale, self.embed_tokens.dtype)
    cos_BTK, sin_BTK = rotary_tables(segments.positions, c.head_dim, c.rope_theta)
    mask_B1TT = model_mask(segments, c)  # booleans, or ranks for the blockwise path
    return self.core(x_BTD, cos_BTK, sin_BTK, mask_B1TT, bp_steps)

  def core(self, x_BTD, cos_BTK, sin_BTK, mask_B1TT, bp_steps):
    raise NotImplementedError

  def gradient_free(self, bp_steps: int | None) -> frozenset[str]:
    """The top-level parameter groups (attribute names) that get no gradient at `bp_steps`:
    no call inside the gradient window reads them. The optimizer skips them in that step,
    as the authors' does a parameter whose gradient is None. None: full backprop."""
    del bp_steps
    return frozenset()

  # --- inference with a KV cache ----------------------------------------------------------------

  @property
  def num_cached_calls(self) -> int:
    """Module calls per token, each with its own cache slot."""
    return self.config.num_calls

  def init_cache(self, batch: int, length: int, dtype=None) -> KVCache:
    """An empty cache for `batch` rows of up to `length` positions."""
    c = self.config
    if length > c.max_position_embeddings:
      raise ValueError(f"cache length {length} exceeds max_position_embeddings "
                       f"{c.max_position_embeddings}")
    shape = (self.num_cached_calls, c.num_layers_per_stack, batch, length,
             c.num_attention_heads, c.head_dim)
    dtype = dtype or c.compute_dtype
    return KVCache(jnp.zeros(shape, dtype), jnp.zeros(shape, dtype))

  def cached_logits(self, tokens_Bt: jax.Array, start_B: jax.Array, prompt_lengths_B: jax.Array,
                    cache: KVCache) -> tuple[jax.Array, KVCache]:
    """Logits [B, t, V] (float32) of t new tokens per row placed at positions
    start_b … start_b + t − 1, attending over the cache; the cache with them written.

    The mask is PrefixLM over each row's prompt of length prompt_lengths_b (bidirectional
    among prompt positions, causal after), so a prefill of the whole prompt (start 0)
    followed by one-token steps reproduces the full forward pass.
    """
    c = self.config
    if c.attention == "bidirectional":
      raise ValueError("a bidirectional model cannot decode token by token")
    positions_Bt = start_B[:, None] + jnp.arange(tokens_Bt.shape[1], dtype=jnp.int32)
    x_BtD = self.embed_tokens(tokens_Bt) * jnp.asarray(c.input_scale, self.embed_tokens.dtype)
    cos_BtK, sin_BtK = rotary_tables(positions_Bt, c.head_dim, c.rope_theta)
    key_S = jnp.arange(cache.length, dtype=jnp.int32)
    query_Bt1 = positions_Bt[:, :, None]
    allowed_BtS = key_S <= query_Bt1  # causal; positions after the query are not written yet
    if c.attention == "prefix_lm":
      prompt_B11 = prompt_lengths_B[:, None, None]
      allowed_BtS = allowed_BtS | ((query_Bt1 < prompt_B11) & (key_S < prompt_B11))
    z_BtD, cache = self.cached_core(x_BtD, cos_BtK, sin_BtK, allowed_BtS[:, None], cache,
                                    start_B)
    logits = self.lm_head(z_BtD.reshape(-1, z_BtD.shape[-1]))
    return logits.reshape(*z_BtD.shape[:2], -1).astype(jnp.float32), cache

  def cached_core(self, x_BtD, cos_BtK, sin_BtK, mask_B1tS, cache: KVCache, start_B):
    raise NotImplementedError


def run_cached(stack, z, u, cos, sin, mask, cache: KVCache, call: int, start_B):
  """One module call against slot `call` of the cache: (output, updated cache)."""
  out, k, v = stack.cached(z, u, cos, sin, mask, cache.k[call], cache.v[call], start_B)
  return out, KVCache(cache.k.at[call].set(k), cache.v.at[call].set(v))


class HrmText(LanguageModel):
  """Separate H (slow) and L (fast) stacks."""

  num_stacks = 2

  def __init__(self, config: ModelConfig, *, rngs: nnx.Rngs):
    super().__init__(config, rngs=rngs)
    n = config.num_layers_per_stack
    self.L_module = Stack(config, n, rngs=rngs)
    self.H_module = Stack(config, n, rngs=rngs) if self.num_stacks == 2 else self.L_module
    self.z_L_init = fixed_start(config, rngs)

  @classmethod
  def num_calls(cls, config: ModelConfig) -> int:
    return config.H_cycles * (config.L_cycles + 1)

  @classmethod
  def gradient_calls(cls, config: ModelConfig, bp_steps: int) -> tuple[bool, ...]:
    """The window with H prioritized, in call order L0 L1 L2 H0 L3 L4 L5 H1 (2×3 model).

    H_bp = min(H_cycles, bp − 1) of the H calls and L_bp = bp − H_bp of the L calls carry
    gradient, each counted from the last: bp 2 → {L5, H1}; 3 → {H0, L5, H1}; 5 → {H0, L3,
    L4, L5, H1}.
    """
    cycles, t = config.H_cycles, config.L_cycles
    total = cls.num_calls(config)
    if not 2 <= bp_steps <= total:
      raise ValueError(f"bp_steps must be in [2, {total}] (the gradient must reach the last H "
                       f"call), got {bp_steps}")
    h_bp = min(cycles, bp_steps - 1)
    l_bp = bp_steps - h_bp
    flags = []
    for i in range(cycles):
      flags += [i * t + k >= cycles * t - l_bp for k in range(t)] + [i >= cycles - h_bp]
    return tuple(flags)

  def _cycles(self, bp_steps: int | None) -> list[tuple[bool, ...]]:
    """The gradient flags of each cycle's calls: its L calls, then its H call."""
    flags, size = self.config.gradient_calls(bp_steps), self.config.L_cycles + 1
    return [flags[i:i + size] for i in range(0, len(flags), size)]

  def cached_core(self, x_BtD, cos_BtK, sin_BtK, mask_B1tS, cache, start_B):
    """The recurrence in call order (L0 L1 L2 H0 L3 …), call k using cache slot k."""
    c = self.config
    call = iter(range(self.num_cached_calls))
    z_H = x_BtD
    z_L = jnp.broadcast_to(self.z_L_init[...].astype(x_BtD.dtype), x_BtD.shape)
    for _ in range(c.H_cycles):
      for _ in range(c.L_cycles):
        z_L, cache = run_cached(self.L_module, z_L, z_H, cos_BtK, sin_BtK, mask_B1tS, cache,
                                next(call), start_B)
      z_H, cache = run_cached(self.H_module, z_H, z_L, cos_BtK, sin_BtK, mask_B1tS, cache,
                              next(call), start_B)
    return z_H, cache

  def gradient_free(self, bp_steps: int | None) -> frozenset[str]:
    """The embedding x is read only in the first cycle (as z_H, injected into its L calls and
    the residual of H call 0): it gets no gradient unless one of those calls is in the window
    (bp 2 of the paper's 2×3 model)."""
    return frozenset() if any(self._cycles(bp_steps)[0]) else frozenset({"embed_tokens"})

  def core(self, x_BTD, cos_BTK, sin_BTK, mask_B1TT, bp_steps):
    c = self.config
    t = c.L_cycles
    cycles = self._cycles(bp_steps)
    run = lambda stack, z, u, frozen: stack(z, u, cos_BTK, sin_BTK, mask_B1TT, frozen=frozen)
    unroll = c.scan_unroll or 1

    def l_calls(z_L, z_H, count, frozen):
      if count <= 1:
        return run(self.L_module, z_L, z_H, frozen) if count else z_L
      return jax.lax.scan(lambda z, _: (run(self.L_module, z, z_H, frozen), None), z_L, None,
                          length=count, unroll=unroll)[0]

    def frozen_cycle(carry, _):
      z_H, z_L = carry
      z_L = l_calls(z_L, z_H, t, True)
      return (run(self.H_module, z_H, z_L, True), z_L), None

    z_H = x_BTD
    z_L = jnp.broadcast_to(self.z_L_init[...].astype(x_BTD.dtype), x_BTD.shape)
    # Cycles wholly before the gradient window run as one scan; the (at most bp) cycles it
    # touches are laid out explicitly, so program size does not grow with H_cycles. Within a
    # cycle the window's L calls are its last ones.
    first = next(i for i, flags in enumerate(cycles) if any(flags))
    if first:
      (z_H, z_L), _ = jax.lax.scan(frozen_cycle, (z_H, z_L), None, length=first, unroll=unroll)
    for flags in cycles[first:]:
      with_grad = sum(flags[:t])
      z_L = l_calls(z_L, z_H, t - with_grad, True)
      z_L = l_calls(z_L, z_H, with_grad, False)
      z_H = run(self.H_module, z_H, z_L, not flags[t])
    return z_H


class Trm(HrmText):
  """TRM: HRM's recurrence with one stack playing both the H and the L role."""

  num_stacks = 1
