"""HRM-Text model and baselines (Flax NNX)."""

from hrm_jax.model.attention import Segments, attention_mask
from hrm_jax.model.baselines import (AUTHORS_BASELINES, AUTHORS_BP_STEPS, Looped, Rins,
                                     authors_baseline, build, matched_flops)
from hrm_jax.model.config import PRESETS, ModelConfig, preset
from hrm_jax.model.hrm import Buffer, HrmText, LanguageModel, gradient_window

__all__ = ["AUTHORS_BASELINES", "AUTHORS_BP_STEPS", "Buffer", "HrmText", "LanguageModel",
           "Looped", "ModelConfig", "PRESETS", "Rins", "Segments", "attention_mask",
           "authors_baseline", "build", "gradient_window", "matched_flops", "preset"]
