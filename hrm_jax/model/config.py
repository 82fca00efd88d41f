"""Model configuration: the HRM-Text sizes of the paper and a tiny one for tests."""

from __future__ import annotations

import dataclasses
import math

ATTENTION_MODES = ("prefix_lm", "causal", "bidirectional")
LOOP_INITS = ("zeros", "z_L_init")
REMAT_POLICIES = ("none", "full", "dots", "dots_no_batch")
COMPUTE_DTYPES = ("float32", "bfloat16", "float16")
ATTENTION_IMPLS = (None, "auto", "xla", "dense", "blockwise", "pallas", "splash", "cudnn")


def swiglu_width(hidden_size: int) -> int:
  """round_up_256(round(8D/3)), the reference's SwiGLU intermediate size."""
  return 256 * math.ceil(round(8 * hidden_size / 3) / 256)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """One HRM-Text model. Field names follow the Hugging Face `HrmTextConfig` where one exists.

  `num_layers_per_stack` blocks in each of the H and L stacks; the recurrence runs H_cycles
  outer cycles of L_cycles L calls and one H call. `bp_steps` is the spec's gradient window
  (module calls counted from the end that carry gradient); it is static, so each value is
  its own compiled program.
  """
  vocab_size: int = 65_536  # token ids 0 … vocab_size − 1 (the tokenizer's size, rounded up)
  hidden_size: int = 1536  # the residual stream's width D
  num_attention_heads: int = 12  # query and key/value heads per attention layer
  head_dim: int = 128  # per-head width (even: rotary embeddings rotate pairs)
  intermediate_size: int | None = None  # the MLP's width; None: swiglu_width(hidden_size)
  num_layers_per_stack: int = 16  # blocks in each of the H and L stacks
  H_cycles: int = 2  # outer cycles, each L_cycles L calls then one H call
  L_cycles: int = 3  # L calls per H cycle
  max_position_embeddings: int = 4096  # the longest sequence the rotary tables cover
  rms_norm_eps: float = 1e-6  # the epsilon inside every RMS norm
  rope_theta: float = 10_000.0  # the rotary embedding's base frequency
  embedding_scale: float | None = None  # the input embeddings' factor; None: sqrt(hidden_size)
  attention: str = "prefix_lm"  # the mask: prompt tokens see the whole prompt (prefix_lm)
  compute_dtype: str = "float32"  # activations and matmuls; bfloat16 on accelerators
  remat: str = "none"  # what the backward recomputes instead of storing (jax.checkpoint policy)
  # Unroll the layer and recurrence scans: faster on CPU for shallow stacks (measured −30 %
  # step time on the tiny config), at the cost of compile time and program size.
  scan_unroll: bool = False
  # "auto": per backend, attention.AUTO_IMPL; "xla": jax.nn.dot_product_attention's XLA path
  # over a dense [B, 1, T, T] mask (what JAX's own choice, None, is on every backend in jax
  # 0.9–0.11; None here means "auto"); "dense": the same function with a hand-written
  # backward, faster on CPU (dense_attention.py); "blockwise": memory-linear, over key blocks
  # (blockwise.py); "pallas": the same as fused GPU kernels (pallas_gpu.py); "splash": jax's
  # splash attention TPU kernels in two passes (splash_tpu.py); "cudnn" cannot take packed-row
  # masks.
  attention_impl: str | None = "auto"
  # Positions per chunk of the output head and the loss (training and evaluation): the
  # [B, T, vocabulary] logits never exist whole, and the backward recomputes each chunk's
  # (MaxText's vocabulary tiling, over positions). 0: the whole row at once.
  loss_chunk: int = 0
  pad_token_id: int = 0  # the id padding rows are filled with
  # A name in hrm_jax.model.ARCHITECTURES. The baselines (baselines.py): "trm" shares one stack
  # between the H and L roles; "ut" loops one stack `num_loops` times; "transformer" is one
  # pass; "rins" loops the L stack `num_loops` times, then makes one H pass. `loop_init` is the
  # state the loops of ut, transformer and rins start from: zeros, or a fixed random z_L_init
  # as HRM's z_L (the authors' UT and RINS).
  architecture: str = "hrm"
  num_loops: int = 8  # ut and rins: how many times the looped stack runs
  loop_init: str = "zeros"  # ut, transformer, rins: the state their loops start from

  def __post_init__(self):
    for name in ("vocab_size", "hidden_size", "num_attention_heads", "head_dim",
                 "num_layers_per_stack", "H_cycles", "L_cycles", "max_position_embeddings",
                 "num_loops"):
      if getattr(self, name) < 1:
        raise ValueError(f"ModelConfig.{name} must be positive, got {getattr(self, name)}")
    if self.loss_chunk < 0:
      raise ValueError(f"ModelConfig.loss_chunk must be ≥ 0 (0: no chunking), got {self.loss_chunk}")
    if self.head_dim % 2:
      raise ValueError(f"ModelConfig.head_dim must be even for rotary embeddings, got {self.head_dim}")
    arch = self.model_class  # an unknown architecture is named here
    if self.loop_init not in LOOP_INITS:
      raise ValueError(f"ModelConfig.loop_init={self.loop_init!r}; choose one of {LOOP_INITS}")
    if self.loop_init != "zeros" and not arch.takes_loop_init:
      raise ValueError(f"ModelConfig.loop_init={self.loop_init!r}: {self.architecture!r} takes "
                       "no loop_init (its start is fixed)")
    if self.attention not in ATTENTION_MODES:
      raise ValueError(f"ModelConfig.attention={self.attention!r}; choose one of {ATTENTION_MODES}")
    if self.remat not in REMAT_POLICIES:
      raise ValueError(f"ModelConfig.remat={self.remat!r}; choose one of {REMAT_POLICIES}")
    if self.compute_dtype not in COMPUTE_DTYPES:
      raise ValueError(f"ModelConfig.compute_dtype={self.compute_dtype!r}; "
                       f"choose one of {COMPUTE_DTYPES}")
    if self.attention_impl not in ATTENTION_IMPLS:
      raise ValueError(f"ModelConfig.attention_impl={self.attention_impl!r}; "
                       f"choose one of {ATTENTION_IMPLS}")

  @property
  def mlp_width(self) -> int:
    return self.intermediate_size or swiglu_width(self.hidden_size)

  @property
  def attention_width(self) -> int:
    return self.num_attention_heads * self.head_dim

  @property
  def input_scale(self) -> float:
    return self.embedding_scale if self.embedding_scale is not None else math.sqrt(self.hidden_size)

  @property
  def model_class(self) -> type:
    """The LanguageModel subclass registered for `architecture`: it answers the questions
    below."""
    # Imported here: the registry imports the model classes, which import this module.
    from hrm_jax.model import architecture  # pylint: disable=import-outside-toplevel
    return architecture(self.architecture)

  @property
  def num_calls(self) -> int:
    """Stack calls per forward pass, each of num_layers_per_stack blocks: H_cycles ·
    (L_cycles + 1) for HRM/TRM, num_loops for UT, 1 for the transformer, num_loops + 1 for
    RINS."""
    return self.model_class.num_calls(self)

  def gradient_calls(self, bp_steps: int | None) -> tuple[bool, ...]:
    """Which stack calls carry gradient at `bp_steps` (None: every call): one flag per call,
    in call order. The one answer the forward passes, the optimizer's skipped parameters,
    FLOPs and the memory plan all ask for; sum() of it is the window's calls."""
    if bp_steps is None:
      return (True,) * self.num_calls
    return self.model_class.gradient_calls(self, bp_steps)

  def window(self, bp_steps: int) -> int:
    """The gradient window this model runs for a scheduled `bp_steps`: clamped to its calls
    (a one-pass transformer has one). The one place every caller (training loop, estimate,
    plan, preflight, bench) asks."""
    return min(bp_steps, self.num_calls)

  @property
  def num_stacks(self) -> int:
    """Distinct parameter sets of blocks: H and L for HRM and RINS, one otherwise."""
    return self.model_class.num_stacks

  def replace(self, **changes) -> ModelConfig:
    return dataclasses.replace(self, **changes)


def _size(n: int, d: int, heads: int, width: int) -> dict:
  return dict(hidden_size=d, num_attention_heads=heads, intermediate_size=width,
              num_layers_per_stack=n, compute_dtype="bfloat16")


# name → the ModelConfig fields it sets (kept as fields: a ModelConfig built while this module
# is first imported could not reach the architecture registry yet).
PRESETS = {
    # Small enough for CPU tests and the built-in training demo.
    "tiny": dict(vocab_size=512, hidden_size=128, num_attention_heads=4, head_dim=32,
                 num_layers_per_stack=2, max_position_embeddings=512),
    "B": _size(6, 1024, 8, 2816),
    "L": _size(12, 1280, 10, 3584),
    "XL": _size(16, 1536, 12, 4096),  # the released HRM-Text-1B
    "XXL": _size(36, 1792, 14, 4864),
}


def preset(name: str, **overrides) -> ModelConfig:
  if name not in PRESETS:
    raise ValueError(f"unknown model preset {name!r}; choose one of {sorted(PRESETS)}")
  return ModelConfig(**{**PRESETS[name], **overrides})
