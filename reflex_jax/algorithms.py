"""The algorithms an experiment can run (ALGORITHMS), and what each must provide to be driven.

To add one: write its package (a config dataclass, `make_trainer` and `train` meeting the
`Algorithm` protocol below; `ppo/` is the model, and `driver` holds what trainers share) and
add its entry to ALGORITHMS. The experiment config (`algo=<name>`, a `<name>.*` section),
the CLIs, the grid runner, checkpoints and reports then take it with no other edit.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Protocol, Sequence, runtime_checkable

import jax

from reflex_jax import driver, ppo, sac
from reflex_jax.envs import Env, EnvState
from reflex_jax.networks import Network, NetworkFactory
from reflex_jax.regularizer import ReflexConfig
from reflex_jax.symmetry import Reflection


@runtime_checkable
class AlgorithmConfig(Protocol):
  """What the driver and the experiment layer read of an algorithm's config: a frozen
  dataclass (typed fields: YAML and key=value overrides reach every one) with these fields,
  checked in its __post_init__ with messages that start "<ClassName>.<field>"."""

  num_timesteps: int                # env steps per run; the experiment's `steps` replaces it
  num_envs: int
  num_logs: int                     # logging intervals: host calls, checkpoints, metric rows
  num_eval_envs: int
  episode_length: int | None
  action_repeat: int | None
  equalize_asymmetries: bool
  mask_nonfinite: bool
  num_devices: int | None
  reflex: ReflexConfig | None       # None: the plain algorithm; set by the experiment's variants

  def budget(self) -> driver.Budget:
    """The env steps a run takes for `num_timesteps` (checked before anything is built)."""


class TrainState(Protocol):
  """One run's state (a pytree; vmapped over runs, checkpointed whole)."""

  params: Any            # checked finite after every interval; `train` returns it
  env_state: EnvState    # checked finite after every interval


class Trainer(Protocol):
  """The pure functions of one run that `driver.drive` vmaps and compiles."""

  net: Network           # holds the task's reflection; `driver.make_policy` acts with it

  def init(self, key: jax.Array, reflex_weight: jax.Array) -> TrainState:
    """The initial state of a run with Reflex weight w0 = reflex_weight."""

  def train_chunk(self, state: TrainState) -> tuple[TrainState, dict[str, jax.Array]]:
    """One logging interval. Metrics: `driver.summarize_chunk`'s (episode_return, ...), the
    symmetry errors when there is a reflection, losses (keys with "loss", checked finite)."""


@runtime_checkable
class Algorithm(Protocol):
  """An algorithm's module (e.g. `reflex_jax.ppo`)."""

  def make_trainer(self, env: str | Env, config: AlgorithmConfig,
                   reflection: Reflection | None = None, *, regularize: bool | None = None,
                   network_factory: NetworkFactory = ...) -> tuple[Env, Trainer]:
    """(the simulator, the Trainer of `config`); the experiment layer rebuilds runs with it."""

  def train(self, env: str | Env, config: AlgorithmConfig, seed: int | Sequence[int] = 0, *,
            reflex_weight: float | Sequence[float] | None = None,
            reflection: Reflection | None = None,
            progress_fn: Callable[[int, dict], None] | None = None, checkpoints=None,
            progress_bar: bool = True, network_factory: NetworkFactory = ...
            ) -> tuple[Callable, Any, dict]:
    """(make_policy, params, metrics), as `ppo.train` documents. metrics hold at least
    env_steps, episode_return, eval/return, eval/return_std, eval/length,
    eval_stochastic/return (driver.drive and driver.final_evaluation make them),
    compile_seconds, train_seconds, env_steps_per_second and total_env_steps."""


@dataclasses.dataclass(frozen=True)
class Entry:
  """An algorithm as the experiment layer knows it."""

  module: Algorithm
  config: type                          # its AlgorithmConfig dataclass: the `<name>.*` section
  experiment_defaults: dict[str, Any]   # the section's defaults in an experiment (CPU-sized)
  # compare's settings that follow from its --steps (e.g. SAC's prefill), as {field: value}
  compare_overrides: Callable[[int], dict[str, Any]] = lambda steps: {}

  def experiment_config(self) -> AlgorithmConfig:
    return self.config(**self.experiment_defaults)


ALGORITHMS: dict[str, Entry] = {
    "ppo": Entry(ppo, ppo.PPOConfig, dict(num_envs=64, num_timesteps=600_000, num_logs=20)),
    "sac": Entry(sac, sac.SACConfig,
                 dict(num_envs=16, num_timesteps=30_000, learning_starts=3_000, num_logs=10),
                 # a tenth of the budget with random actions, at most 10,000 steps
                 compare_overrides=lambda steps: {"learning_starts": min(10_000, steps // 10)}),
}
