"""The training configuration: typed dataclasses, YAML files and `key=value` overrides.

OmegaConf checks every key and value against the dataclasses, so a misspelt key fails at
once with the valid choice named ("Key 'seqlen' not in 'DataConfig'. Did you mean ...").

The `model` section is `preset` (a name in hrm_jax.model.PRESETS) plus every ModelConfig
field: the preset is the first layer, and a field given anywhere (file or command line) wins
over it, as in `model.preset=B model.remat=full`.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf

from hrm_jax.data.config import DataConfig
from hrm_jax.model.config import PRESETS, ModelConfig, preset
from hrm_jax.train.optimizer import SCHEDULES
from hrm_jax.train.sharding import MeshConfig
from runkit import config as runkit_config
from runkit import config_help as runkit_config_help
from runkit import wandb_log
from runkit.errors import ConfigError  # shared with Reflex; callers catch config.ConfigError


MODEL_FIELDS = tuple(f.name for f in dataclasses.fields(ModelConfig))
DEFAULT_PRESET = "tiny"


def _model_section_schema() -> type:
  """The `model` section's dataclass: `preset`, then ModelConfig's fields with their types
  (defined once, by ModelConfig), each defaulting to the default preset's value."""
  default, types = preset(DEFAULT_PRESET), typing.get_type_hints(ModelConfig)
  return dataclasses.make_dataclass("ModelSection", [
      ("preset", str, dataclasses.field(default=DEFAULT_PRESET)),
      *((name, types[name], dataclasses.field(default=getattr(default, name)))
        for name in MODEL_FIELDS)])


ModelSection = _model_section_schema()


def model_section(name: str):
  """The `model` section of preset `name`, every field at the preset's value."""
  if name not in PRESETS:
    raise ConfigError(f"unknown model.preset {name!r}; choose one of {sorted(PRESETS)}")
  model = preset(name)
  return ModelSection(preset=name, **{f: getattr(model, f) for f in MODEL_FIELDS})


@dataclasses.dataclass
class OptimizerConfig:
  learning_rate: float = 2.2e-4  # the peak, reached after warmup_steps (AdamW)
  # After warm-up: constant (the paper's pre-training) or cosine down to lr_min_ratio × peak
  # (the authors' fine-tuning uses 0.1; their code writes constant as lr_min_ratio 1.0).
  schedule: str = "constant"
  lr_min_ratio: float = 0.1  # cosine: the final learning rate as a fraction of the peak
  warmup_steps: int = 2000  # linear warm-up from 0 to the peak learning rate
  b1: float = 0.9  # AdamW's first-moment decay
  b2: float = 0.95  # AdamW's second-moment decay
  weight_decay: float = 0.1  # AdamW's decoupled weight decay (matrices only)
  ema_decay: float = 0.9999  # the evaluated weights: an exponential moving average


BP_SCHEDULES = ("staircase", "fixed")


@dataclasses.dataclass
class ScheduleConfig:
  steps: int = 10_000  # optimizer steps to train
  accumulation: int = 1  # microbatches per optimizer step
  bp_schedule: str = "staircase"  # staircase (2→3→4→5 over the first 20 %) or fixed (bp_end)
  bp_start: int = 2  # staircase: the gradient window (module calls) at the start
  bp_end: int = 5  # the gradient window after the warm-up (fixed: always)
  bp_warmup_fraction: float = 0.2  # staircase: the fraction of steps it climbs over

  def bp_steps(self, update: int) -> int:
    """The scheduled gradient window of update k = `update` (1, 2, …; a Python int: each
    value is its own compiled program), the authors' formula; a model runs
    ModelConfig.window of it.

    staircase: p = min(1, k / (bp_warmup_fraction · steps)); bp = bp_start + floor((bp_end −
    bp_start) p), 2 → 3 → 4 → 5 over the first 20 % by default. fixed: always bp_end.
    """
    if self.bp_schedule == "fixed":
      return self.bp_end
    if self.bp_schedule != "staircase":
      raise ValueError(f"unknown bp_steps schedule {self.bp_schedule!r}; choose one of "
                       f"{BP_SCHEDULES}")
    warmup = self.bp_warmup_fraction * self.steps
    p = 1.0 if warmup <= 0 else min(1.0, update / warmup)
    return min(self.bp_end, self.bp_start + int((self.bp_end - self.bp_start) * p))


@dataclasses.dataclass
class LogConfig:
  dir: str = "runs/hrm"  # config.yaml, metrics.jsonl, TensorBoard
  # Orbax checkpoints: a local path or a bucket (gs://bucket/run); default: dir/checkpoints.
  checkpoint_dir: str | None = None
  every: int = 50  # steps between metric lines
  eval_every: int = 500  # steps between evaluations on eval_sources; 0: none
  eval_batches: int = 4  # batches of eval_sources per evaluation
  checkpoint_every: int = 500  # steps between checkpoints (and one at the end)
  keep: int = 3  # checkpoints kept
  async_checkpoints: bool = True  # save in the background while training continues
  tensorboard: bool = True  # TensorBoard event files under dir
  wandb: bool = False  # also a W&B run (runkit.wandb_log), written under dir
  wandb_mode: str = "offline"  # offline (`wandb sync` uploads it later) or online
  wandb_project: str = "hrm-text"  # the W&B project name
  progress: bool = True  # the progress bar (compiling, then steps/s and ETA)
  peak_flops: float | None = None  # a device's peak FLOP/s, for MFU; None: looked up from its kind


INIT_WEIGHTS = ("ema", "params")


@dataclasses.dataclass
class InitConfig:
  """Warm start (fine-tuning): the first step starts from these weights with a fresh
  optimizer, as the authors' SFT does (their weights_only_resume_from_ema). The model's sizes
  must equal the source's. A run that has checkpoints of its own resumes from them."""
  from_run: str | None = None  # a training run directory (config.yaml + checkpoints)
  from_hf: str | None = None  # a Hugging Face HRM-Text directory (config.json + safetensors)
  weights: str = "ema"  # from_run: its EMA weights (as evaluated) or its raw params


@dataclasses.dataclass
class TrainConfig:
  model: ModelSection = dataclasses.field(default_factory=ModelSection)
  data: DataConfig = dataclasses.field(default_factory=DataConfig)
  # Held-out data for the evaluation loss; by default the generator with another seed.
  eval_sources: list[dict[str, Any]] = dataclasses.field(
      default_factory=lambda: [{"kind": "synthetic", "size": 10_000, "seed": 12345}])
  optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
  schedule: ScheduleConfig = dataclasses.field(default_factory=ScheduleConfig)
  mesh: MeshConfig = dataclasses.field(default_factory=MeshConfig)
  log: LogConfig = dataclasses.field(default_factory=LogConfig)
  init: InitConfig = dataclasses.field(default_factory=InitConfig)
  seed: int = 0  # parameter initialization (unless init names weights to start from)


def load_config(files=(), overrides=()) -> TrainConfig:
  """Defaults ← the model preset ← each YAML file in order ← `key=value` overrides."""
  command_line = runkit_config.override_layer(overrides)
  layers = [*runkit_config.yaml_layers(files), command_line]
  with runkit_config.naming_errors():
    for source, layer in zip([*map(str, files), "the command line"], layers):
      _reject_old_model_form(source, layer)
  config = runkit_config.build(TrainConfig(model=model_section(preset_of(layers))), layers)
  model_config(config)  # fail fast on a bad model field
  validate(config)
  return config


def preset_of(layers) -> str:
  """The model preset the layers choose: the last `model.preset` given, else the default."""
  with runkit_config.naming_errors():
    names = [OmegaConf.select(layer, "model.preset") for layer in layers]
  return next((n for n in reversed(names) if n is not None), DEFAULT_PRESET)


def validate(config: TrainConfig) -> None:
  """Rejects numbers that cannot make a run (a zero batch would hang the pipeline, a zero
  log.every divide by zero, a negative step count train nothing and exit 0)."""
  d, s, o, g = config.data, config.schedule, config.optimizer, config.log
  # (key, value, ok, requirement) in the order the keys appear in the config.
  checks = [
      ("data.seq_len", d.seq_len, d.seq_len >= 3, "at least 3 (BOQ, EOQ and one response "
       "token)"),
      ("data.batch_size", d.batch_size, d.batch_size >= 1, "positive"),
      ("data.packing_bins", d.packing_bins, d.packing_bins >= 1, "positive"),
      ("data.num_epochs", d.num_epochs, d.num_epochs is None or d.num_epochs >= 1,
       "positive or null (repeat forever)"),
      ("data.worker_count", d.worker_count, d.worker_count >= 0, "0 or more"),
      ("data.prefetch_buffer_size", d.prefetch_buffer_size, d.prefetch_buffer_size >= 1,
       "positive"),
      ("data.on_error", d.on_error, d.on_error in ("report", "fail"), "'report' or 'fail'"),
      ("optimizer.learning_rate", o.learning_rate,
       math.isfinite(o.learning_rate) and o.learning_rate > 0, "positive"),
      ("optimizer.schedule", o.schedule, o.schedule in SCHEDULES, " or ".join(SCHEDULES)),
      ("optimizer.lr_min_ratio", o.lr_min_ratio, 0 <= o.lr_min_ratio <= 1, "in [0, 1]"),
      ("optimizer.warmup_steps", o.warmup_steps, o.warmup_steps >= 0, "0 or more"),
      ("optimizer.b1", o.b1, 0 <= o.b1 < 1, "in [0, 1)"),
      ("optimizer.b2", o.b2, 0 <= o.b2 < 1, "in [0, 1)"),
      ("optimizer.weight_decay", o.weight_decay, o.weight_decay >= 0, "0 or more"),
      ("optimizer.ema_decay", o.ema_decay, 0 <= o.ema_decay <= 1, "in [0, 1]"),
      ("schedule.steps", s.steps, s.steps >= 1, "positive"),
      ("schedule.accumulation", s.accumulation, s.accumulation >= 1, "positive"),
      ("schedule.bp_schedule", s.bp_schedule, s.bp_schedule in BP_SCHEDULES,
       " or ".join(BP_SCHEDULES)),
      ("schedule.bp_start", s.bp_start, s.bp_start >= 1, "positive"),
      ("schedule.bp_end", s.bp_end, s.bp_end >= s.bp_start,
       f"at least schedule.bp_start ({s.bp_start})"),
      ("schedule.bp_warmup_fraction", s.bp_warmup_fraction, 0 <= s.bp_warmup_fraction <= 1,
       "in [0, 1]"),
      ("log.every", g.every, g.every >= 1, "positive"),
      ("log.eval_every", g.eval_every, g.eval_every >= 0, "0 (no evaluation) or more"),
      ("log.eval_batches", g.eval_batches, g.eval_batches >= 1 or not g.eval_every,
       "positive while log.eval_every > 0"),
      ("log.checkpoint_every", g.checkpoint_every, g.checkpoint_every >= 1, "positive"),
      ("log.keep", g.keep, g.keep >= 1, "positive"),
      ("log.peak_flops", g.peak_flops, g.peak_flops is None or g.peak_flops > 0,
       "positive or null"),
      ("log.wandb_mode", g.wandb_mode, g.wandb_mode in wandb_log.MODES,
       " or ".join(wandb_log.MODES)),
  ]
  for key, value, ok, requirement in checks:
    if not ok:
      raise ConfigError(f"{key}={value!r} is invalid: it must be {requirement}")
  if config.init.from_run and config.init.from_hf:
    raise ConfigError(f"init.from_run={config.init.from_run!r} and init.from_hf="
                      f"{config.init.from_hf!r}: give one source of initial weights")
  if config.init.weights not in INIT_WEIGHTS:
    raise ConfigError(f"init.weights={config.init.weights!r} is invalid: choose one of "
                      f"{INIT_WEIGHTS}")
  if d.batch_size % s.accumulation:
    raise ConfigError(f"data.batch_size={d.batch_size} does not split into "
                      f"schedule.accumulation={s.accumulation} microbatches; use a multiple")
  sizes = {"mesh.data": config.mesh.data, "mesh.fsdp": config.mesh.fsdp,
           "mesh.tensor": config.mesh.tensor}
  if any(v == 0 or v < -1 for v in sizes.values()) or list(sizes.values()).count(-1) > 1:
    raise ConfigError(f"mesh sizes {sizes} are invalid: each must be positive, and at most "
                      "one may be -1 (every device left over)")


def _reject_old_model_form(source: str, layer) -> None:
  """model.size / model.overrides were the section's old form: name the new one."""
  model = layer.get("model") if isinstance(layer, DictConfig) else None
  if not isinstance(model, DictConfig) or not {"size", "overrides"} & set(model):
    return
  old = OmegaConf.to_container(model)
  new = {**({"preset": old.pop("size")} if "size" in old else {}), **old.pop("overrides", {}),
         **old}
  flow = yaml.safe_dump(new, default_flow_style=True, sort_keys=False, width=1000).strip()
  raise ConfigError(f"{source}: model.size and model.overrides are the old form of the model "
                    f"section; write the preset and the fields directly (model: {flow} in "
                    "YAML, model.preset=… model.<field>=… on the command line)")


def model_config(config) -> ModelConfig:
  """The ModelConfig of a config's `model` section (training's, or the comparison's)."""
  try:
    return ModelConfig(**{f: getattr(config.model, f) for f in MODEL_FIELDS})
  except (ValueError, TypeError) as error:
    raise ConfigError(f"model: {str(error).replace('ModelConfig.', 'model.')}") from None


def help_text() -> str:
  """Every key with its default, description and choices (`python -m hrm_jax.train --help`)."""
  # pylint: disable=import-outside-toplevel
  from hrm_jax.data.sources import KINDS, ON_ERROR
  from hrm_jax.model import ARCHITECTURES
  from hrm_jax.model.attention import AUTO_IMPL, RANK_IMPLS
  from hrm_jax.model.config import ATTENTION_MODES, COMPUTE_DTYPES, LOOP_INITS, REMAT_POLICIES
  classes = {"model": [ModelConfig], "data": [DataConfig], "optimizer": [OptimizerConfig],
             "schedule": [ScheduleConfig], "mesh": [MeshConfig], "log": [LogConfig],
             "init": [InitConfig], "": [TrainConfig]}
  choices = {"model.preset": sorted(PRESETS), "model.attention": ATTENTION_MODES,
             "model.remat": REMAT_POLICIES, "model.attention_impl": ("auto", "xla", "dense") + RANK_IMPLS,
             "model.architecture": sorted(ARCHITECTURES), "model.loop_init": LOOP_INITS,
             "model.compute_dtype": COMPUTE_DTYPES,
             "optimizer.schedule": SCHEDULES, "schedule.bp_schedule": BP_SCHEDULES,
             "data.on_error": ON_ERROR, "log.wandb_mode": wandb_log.MODES,
             "init.weights": INIT_WEIGHTS}
  extra = {"model.preset": "the model size every other model key starts from (a field set in "
                           "a file or on the command line wins over it)",
           "data.sources": "the training data: one dict per source, {kind, its options, "
                           f"weight, cap}}; kinds: {', '.join(KINDS)}",
           "model.attention_impl": "the attention kernel; auto: per backend "
                                   f"{AUTO_IMPL}, blockwise elsewhere"}
  return runkit_config_help.describe(TrainConfig(), classes, choices, extra)


def to_yaml(config: TrainConfig) -> str:
  return OmegaConf.to_yaml(OmegaConf.structured(config))


# Keys a resumed run may change freely: how often and where it logs, evaluates and
# checkpoints, how long it trains (a longer schedule.steps also stretches the bp_steps
# warm-up and a cosine decay over the new length), and how it is laid out on the devices.
# log.checkpoint_dir is excepted: it is where the run's state lives.
FREE_ON_RESUME = ("log.", "schedule.steps", "mesh.")
NOT_FREE_ON_RESUME = ("log.checkpoint_dir",)


def _flat(tree, prefix: str = "") -> dict[str, Any]:
  if isinstance(tree, dict) and tree:
    return {k: v for key, value in tree.items() for k, v in _flat(value, f"{prefix}{key}.").items()}
  return {prefix[:-1]: tree}


def config_changes(old: TrainConfig, new: TrainConfig) -> dict[str, tuple[Any, Any]]:
  """{dotted key: (old value, new value)} for every key that differs; a key present in one
  config only pairs with None."""
  a, b = (_flat(OmegaConf.to_container(OmegaConf.structured(c))) for c in (old, new))
  return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}


def free_on_resume(key: str) -> bool:
  return key not in NOT_FREE_ON_RESUME and any(
      key == free or (free.endswith(".") and key.startswith(free)) for free in FREE_ON_RESUME)


def describe_changes(changes: dict[str, tuple[Any, Any]]) -> str:
  return "; ".join(f"{k}: {old!r} → {new!r}" for k, (old, new) in changes.items())
