"""The ALGORITHMS registry: every entry meets the contract, and the experiment config and the
compare CLI take each algorithm from it (no compile: nothing here trains)."""

import pytest

from reflex_jax import compare
from reflex_jax.algorithms import ALGORITHMS, Algorithm, AlgorithmConfig
from reflex_jax.run import config as run_config


@pytest.mark.parametrize("name", list(ALGORITHMS))
def test_every_registered_algorithm_meets_the_contract_and_has_its_config_section(name):
  entry = ALGORITHMS[name]
  assert isinstance(entry.module, Algorithm)  # make_trainer and train
  assert isinstance(entry.experiment_config(), AlgorithmConfig)
  config = run_config.load_config([], [f"algo={name}"])
  assert getattr(config, name) == entry.experiment_config()
  assert run_config.algorithm_config(config) == entry.experiment_config()
  # The section's own checks name the key as the user writes it.
  with pytest.raises(run_config.ConfigError, match=f"^{name}.num_envs must be positive, got 0"):
    run_config.load_config([], [f"algo={name}", f"{name}.num_envs=0"])


class Stop(Exception):
  """Raised instead of training, once compare has made its experiment config."""


@pytest.mark.parametrize("algo,learning_starts", [("sac", 8_192), ("ppo", None)])
def test_compare_takes_the_algorithms_rule_for_its_step_budget(monkeypatch, tmp_path, algo,
                                                               learning_starts):
  seen = []

  def run_experiment(config, run_dir, force_new_config):
    del run_dir, force_new_config
    seen.append(config)
    raise Stop
  monkeypatch.setattr(compare, "run_experiment", run_experiment)
  with pytest.raises(Stop):
    compare.main(["--algo", algo, "--steps", "81920", "--out", str(tmp_path)])
  section = run_config.algorithm_config(seen[0])
  assert seen[0].algo == algo and section.num_timesteps == 81_920
  # SAC's prefill follows the budget (a tenth of it); PPO has no such rule.
  assert getattr(section, "learning_starts", None) == learning_starts
