"""The training configuration: typed dataclasses, YAML files and `key=value` overrides.

OmegaConf checks every key and value against the dataclasses, so a misspelt key fails at
once with the valid choice named ("Key 'seqlen' not in 'DataConfig'. Did you mean ...").
"""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from hrm_jax.data.pipeline import DataConfig
from hrm_jax.model.config import PRESETS, ModelConfig, preset
from hrm_jax.train.sharding import MeshConfig


@dataclasses.dataclass
class ModelSpec:
  size: str = "tiny"  # a preset: tiny, B, L, XL, XXL
  overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # ModelConfig fields


@dataclasses.dataclass
class OptimizerConfig:
  learning_rate: float = 2.2e-4
  schedule: str = "constant"  # after warm-up: constant (the paper) or cosine
  warmup_steps: int = 2000
  b1: float = 0.9
  b2: float = 0.95
  weight_decay: float = 0.1
  ema_decay: float = 0.9999


@dataclasses.dataclass
class ScheduleConfig:
  steps: int = 10_000
  accumulation: int = 1  # microbatches per optimizer step
  bp_schedule: str = "staircase"  # staircase (2→3→4→5), jump (2→5 at 20 %), fixed
  bp_start: int = 2
  bp_end: int = 5
  bp_warmup_fraction: float = 0.2


@dataclasses.dataclass
class LogConfig:
  dir: str = "runs/hrm"  # config.yaml, metrics.jsonl, TensorBoard
  # Orbax checkpoints: a local path or a bucket (gs://bucket/run); default: dir/checkpoints.
  checkpoint_dir: str | None = None
  every: int = 50  # steps between metric lines
  eval_every: int = 500  # 0: no periodic evaluation
  eval_batches: int = 4
  checkpoint_every: int = 500
  keep: int = 3  # checkpoints kept
  async_checkpoints: bool = True
  tensorboard: bool = True
  progress: bool = True
  peak_flops: float | None = None  # per device; None: looked up from the device kind


@dataclasses.dataclass
class TrainConfig:
  model: ModelSpec = dataclasses.field(default_factory=ModelSpec)
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  # Held-out data for the evaluation loss; by default the generator with another seed.
  eval_sources: list[dict[str, Any]] = dataclasses.field(
      default_factory=lambda: [{"kind": "synthetic", "size": 10_000, "seed": 12345}])
  optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
  schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
  mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
  log: LogConfig = dataclasses.field(default_factory=LogConfig)
  seed: int = 0  # parameter initialization


class ConfigError(ValueError):
  """A bad config file, key or value; the message names it."""


def load_config(files=(), overrides=()) -> TrainConfig:
  """Defaults ← each YAML file in order ← `key=value` overrides."""
  merged = OmegaConf.structured(TrainConfig)
  try:
    for path in files:
      merged = OmegaConf.merge(merged, OmegaConf.load(path))
    bad = [o for o in overrides if "=" not in o]
    if bad:
      raise ConfigError(f"overrides must be key=value, got {bad}")
    merged = OmegaConf.merge(merged, OmegaConf.from_dotlist(list(overrides)))
  except OmegaConfBaseException as error:
    raise ConfigError(str(error).split("\n")[0] + _where(error)) from None
  config = OmegaConf.to_object(merged)
  model_config(config)  # fail fast on a bad model size or field
  return config


def _where(error) -> str:
  key = getattr(error, "full_key", None)
  return f" (key: {key})" if key else ""


def model_config(config: TrainConfig) -> ModelConfig:
  if config.model.size not in PRESETS:
    raise ConfigError(f"unknown model.size {config.model.size!r}; choose one of {sorted(PRESETS)}")
  fields = {f.name for f in dataclasses.fields(ModelConfig)}
  unknown = sorted(set(config.model.overrides) - fields)
  if unknown:
    raise ConfigError(f"unknown model.overrides keys {unknown}; valid: {sorted(fields)}")
  try:
    return preset(config.model.size, **config.model.overrides)
  except (ValueError, TypeError) as error:
    raise ConfigError(f"model: {error}") from None


def to_yaml(config: TrainConfig) -> str:
  return OmegaConf.to_yaml(OmegaConf.structured(config))
