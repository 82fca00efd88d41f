"""An experiment's configuration: typed dataclasses, YAML files and `key=value` overrides.

    python -m reflex_jax.train env=brax/ant algo=ppo reflex.weight=0.1 seeds=8

OmegaConf checks every key and value against the dataclasses (each registered algorithm's
config included), so a misspelt key or a bad choice fails at load time, before anything runs,
with the valid ones named.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import OmegaConf

from reflex_jax import envs
from reflex_jax.algorithms import ALGORITHMS
from reflex_jax.regularizer import ReflexConfig
from reflex_jax.symmetry import registry
from runkit import config as runkit_config
from runkit import wandb_log
from runkit.errors import ConfigError  # shared with HRM; callers catch run_config.ConfigError

# variant → its overrides of the experiment's `reflex` section (a ReflexConfig). Variants whose
# settings differ only in the weight run in one program (their weights are vmapped like seeds).
VARIANTS: dict[str, dict[str, Any]] = {
    "baseline": {"weight": 0.0, "augment": False, "symmetrize": False},  # the plain algorithm
    "reflex": {},                                  # the paper's regularizer
    "reflex_kl": {"actor_loss": "kl"},             # KL instead of MSE actor term
    "reflex_actor_only": {"value_coef": 0.0},      # no critic invariance term
    "reflex_critic_only": {"actor_coef": 0.0},     # no actor equivariance term
    "augment": {"augment": True, "weight": 0.0},   # mirrored-sample augmentation only
    "reflex_augment": {"augment": True},
    "symmetrize": {"symmetrize": True, "weight": 0.0},  # hard-equivariant networks
}


@dataclasses.dataclass
class ExperimentSettings:
  """An experiment's settings but the algorithms' sections (ExperimentConfig adds those)."""
  env: str = "brax/inverted_double_pendulum"  # the task id
  algo: str = "ppo"  # the algorithm (a name in reflex_jax.algorithms.ALGORITHMS)
  seeds: int = 5                  # seeds first_seed … first_seed + seeds − 1, vmapped
  first_seed: int = 0  # the first seed of the seeds run
  # the variants trained, each a named override of `reflex` (VARIANTS)
  variants: list[str] = dataclasses.field(default_factory=lambda: ["baseline", "reflex"])
  steps: int | None = None        # env steps per run; None: <algo>.num_timesteps
  reflex: ReflexConfig = dataclasses.field(default_factory=ReflexConfig)  # w0 = reflex.weight
  out_dir: str = "runs/reflex/{env}/{algo}"  # {env} and {algo} are filled in
  checkpoint_every: int = 1       # logging intervals between checkpoints
  keep_checkpoints: int = 2  # checkpoints kept
  tensorboard: bool = True  # TensorBoard event files per variant and seed
  wandb: bool = False             # also W&B runs (runkit.wandb_log), one per variant/seed
  wandb_mode: str = "offline"     # offline (written under out_dir; `wandb sync`), online
  wandb_project: str = "reflex"  # the W&B project name
  progress: bool = True  # the progress bar (compiling, then steps/s, ETA and return)

  @property
  def seed_list(self) -> list[int]:
    return list(range(self.first_seed, self.first_seed + self.seeds))


# The settings and a section per registered algorithm (`ppo.*`, `sac.*`, ...): its config
# dataclass with the experiment's defaults. Every section is there whichever `algo` is chosen,
# so that YAML layers and overrides merge in any order.
ExperimentConfig = dataclasses.make_dataclass(
    "ExperimentConfig",
    [(name, entry.config, dataclasses.field(default_factory=entry.experiment_config))
     for name, entry in ALGORITHMS.items()],
    bases=(ExperimentSettings,), namespace={"__module__": __name__})

# Dataclasses whose __post_init__ checks name fields "Owner.field", → the key's section.
CHECKED_SECTIONS = {"ReflexConfig.": "reflex.", **{
    f"{entry.config.__name__}.": f"{name}." for name, entry in ALGORITHMS.items()}}


def load_config(files=(), overrides=(), layers=(), *, check_budget: bool = True
                ) -> ExperimentConfig:
  """Defaults ← each YAML file in order ← each dict of `layers` ← `key=value` overrides,
  validated. `check_budget=False` accepts a step budget that rounds up by a lot (reading
  back a run that was started before such budgets were refused)."""
  config = runkit_config.build(
      ExperimentConfig, [*runkit_config.yaml_layers(files), *layers,
                         runkit_config.override_layer(overrides)], sections=CHECKED_SECTIONS)
  validate(config, check_budget=check_budget)
  return config


def validate(config: ExperimentConfig, *, check_budget: bool = True) -> None:
  if config.algo not in ALGORITHMS:
    raise ConfigError(f"unknown algo {config.algo!r}; choose one of {list(ALGORITHMS)}")
  if not envs.is_known(config.env):
    raise ConfigError(f"unknown env {config.env!r}; known: {', '.join(envs.known_env_ids())}")
  unknown = [v for v in config.variants if v not in VARIANTS]
  if unknown or not config.variants:
    raise ConfigError(f"unknown variants {unknown or '(none given)'}; choose from "
                      f"{list(VARIANTS)}")
  if len(set(config.variants)) != len(config.variants):
    raise ConfigError(f"variants repeat: {config.variants}")
  if config.seeds < 1:
    raise ConfigError(f"seeds must be positive, got {config.seeds}")
  if config.steps is not None and config.steps < 1:
    raise ConfigError(f"steps must be positive, got {config.steps}")
  if config.wandb_mode not in wandb_log.MODES:
    raise ConfigError(f"wandb_mode {config.wandb_mode!r}; choose one of {wandb_log.MODES}")
  if config.checkpoint_every < 1 or config.keep_checkpoints < 1:
    raise ConfigError("checkpoint_every and keep_checkpoints must be positive")
  if getattr(config, config.algo).reflex is not None:
    raise ConfigError(f"set Reflex through `variants` and `reflex.*`, not {config.algo}.reflex")
  if any(v != "baseline" for v in config.variants):
    try:
      registry.get(config.env).require()
    except (registry.UnknownEnvironmentError, registry.NoReflectionError) as error:
      raise ConfigError(f"variants {config.variants} need a reflection: {error}") from None
  if check_budget:
    name = "steps" if config.steps is not None else f"{config.algo}.num_timesteps"
    try:
      algorithm_config(config).budget().check(name, f"{config.algo}.")
    except ValueError as error:
      raise ConfigError(str(error)) from None


def algorithm_config(config: ExperimentConfig):
  """The chosen algorithm's section, with `steps` (when set) as its num_timesteps."""
  section = getattr(config, config.algo)
  return (section if config.steps is None
          else dataclasses.replace(section, num_timesteps=config.steps))


def variant_reflex(config: ExperimentConfig, variant: str) -> ReflexConfig:
  """The experiment's `reflex` section with the variant's overrides."""
  return dataclasses.replace(config.reflex, **VARIANTS[variant])


@dataclasses.dataclass(frozen=True)
class VariantGroup:
  """Variants trained in one program: one algorithm config, a Reflex weight per variant."""
  name: str
  variants: tuple[str, ...]
  weights: tuple[float, ...]
  algorithm_config: Any  # the algorithm's config (ALGORITHMS[algo].config)


def variant_groups(config: ExperimentConfig) -> list[VariantGroup]:
  """The experiment's variants grouped by program: variants whose Reflex settings differ only
  in the weight share one (e.g. `baseline` is `reflex` at weight 0). A group whose weights are
  all 0 and that neither augments nor symmetrizes is the plain algorithm (config.reflex None)."""
  base = algorithm_config(config)
  groups: dict[ReflexConfig, list[str]] = {}
  for variant in config.variants:
    groups.setdefault(dataclasses.replace(variant_reflex(config, variant), weight=0.0),
                      []).append(variant)
  out = []
  for key, variants in groups.items():
    weights = tuple(variant_reflex(config, v).weight for v in variants)
    plain = not any(weights) and not key.augment and not key.symmetrize
    out.append(VariantGroup("+".join(variants), tuple(variants), (0.0,) if plain else weights,
                            dataclasses.replace(base, reflex=None if plain else key)))
  return out


def out_dir(config: ExperimentConfig) -> str:
  return config.out_dir.format(env=config.env.replace("/", "_"), algo=config.algo)


def help_text() -> str:
  """Every key with its default, description and choices (`python -m reflex_jax.train --help`)."""
  # pylint: disable=import-outside-toplevel
  from reflex_jax.networks import ACTIVATIONS
  from reflex_jax.symmetry import registry
  from runkit import config_help, wandb_log
  classes = {"": [ExperimentSettings], "reflex": [ReflexConfig],
             **{name: [entry.config] for name, entry in ALGORITHMS.items()}}
  choices = {"env": registry.symmetric_env_ids(), "algo": list(ALGORITHMS),
             "variants": list(VARIANTS), "wandb_mode": wandb_log.MODES,
             **{f"{name}.{key}": sorted(ACTIVATIONS) for name in ALGORITHMS
                for key in ("value_activation", "q_activation")}}
  return config_help.describe(ExperimentConfig(), classes, choices)


def to_yaml(config: ExperimentConfig) -> str:
  return OmegaConf.to_yaml(OmegaConf.structured(config))


def from_yaml(path: str) -> ExperimentConfig:
  return load_config([path], check_budget=False)
