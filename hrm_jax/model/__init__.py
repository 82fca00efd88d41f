"""HRM-Text model and baselines (Flax NNX)."""

from hrm_jax.model.attention import Segments, attention_mask
from hrm_jax.model.baselines import Looped, build, matched_flops
from hrm_jax.model.config import PRESETS, ModelConfig, preset
from hrm_jax.model.hrm import Buffer, HrmText, LanguageModel, gradient_window

__all__ = ["Buffer", "HrmText", "LanguageModel", "Looped", "ModelConfig", "PRESETS", "Segments",
           "attention_mask", "build", "gradient_window", "matched_flops", "preset"]
