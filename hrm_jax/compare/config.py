"""The comparison's configuration: a YAML file and `key=value` overrides onto these dataclasses,
through the same typed config system as training (runkit.config): a misspelt key or a bad
value fails at once, naming the key.

The `model` section is the HRM's size (a preset plus ModelConfig fields, as in training);
every baseline is the authors' configuration at that size (`authors_baseline`). `optimizer`
and `schedule` are training's sections: `schedule.steps` is the HRM's step count, which sets
the budget, and its bp fields are the HRM's gradient-window warm-up (the baselines keep the
authors' fixed windows, AUTHORS_BP_STEPS).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from omegaconf import OmegaConf

from hrm_jax.data import synthetic
from hrm_jax.model import ARCHITECTURES, AUTHORS_BP_STEPS, ModelConfig, authors_baseline
from hrm_jax.train.config import (ModelSection, OptimizerConfig, ScheduleConfig, model_config,
                                  model_section, preset_of)
from runkit import config as runkit_config
from runkit.errors import ConfigError

# objective → (attention mode, which labels carry loss). Table 3 of the paper.
OBJECTIVES = {
    "prefix_response": ("prefix_lm", "labels"),   # the paper's: PrefixLM, response-only loss
    "causal_response": ("causal", "labels"),      # causal mask, response-only loss
    "causal_full": ("causal", "full_labels"),     # causal mask, loss on every next token
}
MATCHES = ("flops", "params")


@dataclasses.dataclass
class TaskConfig:
  """One task of the built-in generator with its difficulty options (synthetic.py's
  docstring lists them), the row length and the split sizes (distinct examples)."""
  task: str = "addition"
  options: dict[str, Any] = dataclasses.field(default_factory=dict)
  seq_len: int = 64
  train_size: int = 20_000
  test_size: int = 256
  batch_size: int | None = None  # rows per step; null: the study's batch_size


@dataclasses.dataclass
class CompareConfig:
  out_dir: str = "runs/hrm-compare"
  model: ModelSection = dataclasses.field(default_factory=ModelSection)
  optimizer: OptimizerConfig = dataclasses.field(default_factory=lambda: OptimizerConfig(
      learning_rate=1e-3, warmup_steps=20, ema_decay=0.99))
  schedule: ScheduleConfig = dataclasses.field(default_factory=lambda: ScheduleConfig(steps=240))
  architectures: list[str] = dataclasses.field(
      default_factory=lambda: ["hrm", "transformer", "ut", "trm", "rins"])
  objectives: list[str] = dataclasses.field(default_factory=lambda: list(OBJECTIVES))
  # The other objectives than the first run on these tasks and architectures (Table 3 compares
  # the Transformer and the HRM); null: all of them.
  objective_tasks: list[str] | None = None
  objective_architectures: list[str] | None = None
  # flops: each architecture trains until it has spent the HRM's training FLOPs (cheaper
  # models take more steps); params: every architecture (all have the HRM's parameter count)
  # takes the HRM's steps on the same data.
  match: str = "flops"
  seeds: int = 5
  batch_size: int = 16   # packed rows per optimizer step
  evals: int = 8         # evaluation points along each run (at equal fractions of its steps)
  blocks_per_eval: int = 2  # compiled blocks of steps between evaluations
  eval_batch: int = 64   # held-out rows per forward pass; divides every test_size
  threshold: float = 0.5  # exact match a seed must reach to count as solving a task
  tasks: dict[str, TaskConfig] = dataclasses.field(default_factory=dict)


def load_config(files=(), overrides=()) -> CompareConfig:
  """Defaults ← the model preset ← each YAML file ← `key=value` overrides; checked."""
  layers = [*runkit_config.yaml_layers(files), runkit_config.override_layer(overrides)]
  config = runkit_config.build(CompareConfig(model=model_section(preset_of(layers))), layers)
  validate(config)
  return config


def arch_config(config: CompareConfig, arch: str, objective: str, seq_len: int) -> ModelConfig:
  """The `arch` model of a cell: the authors' configuration at the HRM's size, with the
  objective's attention mode and room for the task's rows."""
  base = model_config(config).replace(architecture="hrm", attention=OBJECTIVES[objective][0],
                                    max_position_embeddings=seq_len)
  return authors_baseline(base, arch)


def bp_steps(config: CompareConfig, arch: str, update: int) -> int:
  """The gradient window of update k (1, 2, … of the HRM's schedule; the baselines' windows
  are fixed), clamped to the model's calls."""
  fixed = AUTHORS_BP_STEPS[arch]
  scheduled = config.schedule.bp_steps(update) if fixed is None else fixed
  return authors_baseline(model_config(config), arch).window(scheduled)


def cells(config: CompareConfig) -> list[tuple[str, str, str]]:
  """(task, objective, architecture) in run order: the paper's objective on every task
  first, then the other objectives on `objective_tasks`."""
  tasks = config.objective_tasks if config.objective_tasks is not None else list(config.tasks)
  archs = config.objective_architectures
  archs = config.architectures if archs is None else archs
  out = [(t, config.objectives[0], a) for t in config.tasks for a in config.architectures]
  out += [(t, o, a) for o in config.objectives[1:] for t in tasks for a in archs]
  return out


def batch_size(config: CompareConfig, task: str) -> int:
  return config.tasks[task].batch_size or config.batch_size


def fingerprint(config: CompareConfig, task: str) -> str:
  """A hash of every setting that shapes the cells of `task` (not out_dir nor which cells
  run): a finished or checkpointed cell with another fingerprint was run with other settings."""
  keys = ("model", "optimizer", "schedule", "match", "seeds", "batch_size", "evals",
          "blocks_per_eval", "eval_batch")
  chosen = {k: OmegaConf.to_container(OmegaConf.structured(getattr(config, k)))
            if dataclasses.is_dataclass(getattr(config, k)) else getattr(config, k) for k in keys}
  chosen["task"] = dataclasses.asdict(config.tasks[task])
  if config.match == "flops":  # the budget is the HRM's: its presence changes every cell
    chosen["budget_from"] = "hrm"
  return hashlib.sha256(json.dumps(chosen, sort_keys=True, default=str).encode()).hexdigest()[:16]


def validate(config: CompareConfig) -> None:
  model_config(config)
  checks = [
      ("architectures", config.architectures,
       config.architectures and set(config.architectures) <= set(AUTHORS_BP_STEPS) - {
           "trm_match_recurrence"} and set(config.architectures) <= set(ARCHITECTURES),
       f"a non-empty list from {sorted(set(ARCHITECTURES))}"),
      ("objectives", config.objectives,
       config.objectives and set(config.objectives) <= set(OBJECTIVES),
       f"a non-empty list from {list(OBJECTIVES)}"),
      ("match", config.match, config.match in MATCHES, " or ".join(MATCHES)),
      ("seeds", config.seeds, config.seeds >= 1, "positive"),
      ("batch_size", config.batch_size, config.batch_size >= 1, "positive"),
      ("evals", config.evals, config.evals >= 1, "positive"),
      ("blocks_per_eval", config.blocks_per_eval, config.blocks_per_eval >= 1, "positive"),
      ("eval_batch", config.eval_batch, config.eval_batch >= 1, "positive"),
      ("threshold", config.threshold, 0 < config.threshold <= 1, "in (0, 1]"),
      ("schedule.steps", config.schedule.steps, config.schedule.steps >= 1, "positive"),
      ("schedule.accumulation", config.schedule.accumulation, config.schedule.accumulation == 1,
       "1 (the comparison steps whole batches)"),
      ("tasks", list(config.tasks), bool(config.tasks), "at least one task"),
  ]
  for key, value, ok, requirement in checks:
    if not ok:
      raise ConfigError(f"{key}={value!r} is invalid: it must be {requirement}")
  stray = sorted(set(config.objective_tasks or []) - set(config.tasks))
  if stray:
    raise ConfigError(f"objective_tasks {stray} are not among the tasks {list(config.tasks)}")
  stray = sorted(set(config.objective_architectures or []) - set(config.architectures))
  if stray:
    raise ConfigError(f"objective_architectures {stray} are not among the architectures "
                      f"{config.architectures}")
  for name, task in config.tasks.items():
    try:
      synthetic.check_options((task.task,), {task.task: task.options} if task.options else None)
    except ValueError as error:
      raise ConfigError(f"tasks.{name}: {error}") from None
    for key in ("seq_len", "train_size", "test_size", "batch_size"):
      if getattr(task, key) is not None and getattr(task, key) < 1:
        raise ConfigError(f"tasks.{name}.{key}={getattr(task, key)} is invalid: it must be "
                          "positive")
    if task.test_size % config.eval_batch:
      raise ConfigError(f"tasks.{name}.test_size={task.test_size} is not a multiple of "
                        f"eval_batch={config.eval_batch}")
