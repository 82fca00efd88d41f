"""The brax.training peer: settings mapped so that brax runs the same env-step stream and
gradient steps as ours."""

import dataclasses

import filelock
import pytest

from reflex_jax import peer, ppo, sac
from reflex_jax.networks import PolicyConfig
from reflex_jax.run import config as run_config

TANH = PolicyConfig(hidden=(32, 32), activation="swish", std="state_dependent", squash="tanh")


def test_ppo_mapping_keeps_steps_per_update_minibatch_and_gradient_steps():
  ours = ppo.PPOConfig(num_envs=128, unroll_length=80, num_minibatches=32, num_epochs=4,
                       max_grad_norm=1e6, policy=TANH, value_hidden=(64,),
                       value_activation="swish")
  kw = peer.ppo_kwargs(ours, brax_unroll_length=5)
  k = 80 // 5  # consecutive unrolls per brax update
  assert kw["unroll_length"] == 5 and kw["batch_size"] == k * 128 // 32
  # env steps per update: brax batch_size·num_minibatches sequences of unroll_length steps
  assert kw["batch_size"] * kw["num_minibatches"] * kw["unroll_length"] == 128 * 80
  # one minibatch: batch_size sequences × unroll = ours' transitions per minibatch
  assert kw["batch_size"] * kw["unroll_length"] == 128 * 80 // 32
  assert kw["num_updates_per_batch"] == 4 and kw["max_grad_norm"] is None
  assert kw["network_factory"].keywords["policy_hidden_layer_sizes"] == (32, 32)
  assert peer.ppo_kwargs(dataclasses.replace(ours, max_grad_norm=0.5))["max_grad_norm"] == 0.5


def test_ppo_mapping_refuses_what_brax_cannot_run():
  ours = ppo.PPOConfig(num_envs=128, unroll_length=80, num_minibatches=32, policy=TANH)
  with pytest.raises(ValueError, match="unroll_length 7 does not map"):
    peer.ppo_kwargs(ours, brax_unroll_length=7)
  with pytest.raises(ValueError, match="tanh-Gaussian"):
    peer.ppo_kwargs(dataclasses.replace(ours, policy=PolicyConfig(squash="clip")))
  with pytest.raises(ValueError, match="share one activation"):
    peer.ppo_kwargs(dataclasses.replace(ours, value_activation="tanh"), brax_unroll_length=5)


def test_sac_mapping():
  ours = sac.SACConfig(num_envs=8, grad_updates_per_step=8, batch_size=128, learning_starts=8192,
                       buffer_size=1 << 20, q_layer_norm=True)
  kw = peer.sac_kwargs(ours)
  assert (kw["min_replay_size"], kw["max_replay_size"], kw["grad_updates_per_step"]) == (
      8192, 1 << 20, 8)
  assert kw["network_factory"].keywords["q_network_layer_norm"] is True
  with pytest.raises(ValueError, match="two critics"):
    peer.sac_kwargs(dataclasses.replace(ours, num_q=3))


def test_peer_kwargs_use_the_published_unroll_and_refuse_the_equalized_model():
  from reflex_jax.run.peer import peer_kwargs
  config = run_config.load_config(overrides=[
      "env=brax/ant", "algo=ppo", "steps=102400", "ppo.num_envs=128", "ppo.unroll_length=80",
      "ppo.num_minibatches=32", "ppo.num_logs=10", "ppo.policy.squash=tanh",
      "ppo.policy.std=state_dependent"])
  kw = peer_kwargs(config)
  assert kw["unroll_length"] == 5 and kw["num_evals"] == 11 and kw["num_timesteps"] == 102400
  # brax's own estimator: its segments are the peer's unrolls
  segments = dataclasses.replace(config, ppo=dataclasses.replace(
      config.ppo, advantage_estimator="brax", advantage_segment=20))
  assert peer_kwargs(segments)["unroll_length"] == 20
  equalized = dataclasses.replace(config, ppo=dataclasses.replace(config.ppo,
                                                                  equalize_asymmetries=True))
  with pytest.raises(run_config.ConfigError, match="equalize_asymmetries"):
    peer_kwargs(equalized)


def test_a_peer_run_in_progress_elsewhere_is_skipped_and_a_dead_ones_lock_is_not(tmp_path,
                                                                                 capsys):
  from reflex_jax.run.peer import run_peer
  with filelock.FileLock(str(tmp_path / "peer.json.lock")):  # another process's run
    assert run_peer(str(tmp_path), 3) is None  # nothing read or trained: no config.yaml needed
  assert "another process runs the peer" in capsys.readouterr().err
  # The lock file a killed run left behind holds no lock: the next run goes on (and here
  # stops at the missing config.yaml).
  assert (tmp_path / "peer.json.lock").exists()
  with pytest.raises(FileNotFoundError, match="config.yaml"):
    run_peer(str(tmp_path), 3)


@pytest.mark.slow
@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_the_peer_trains_brax_on_a_finished_experiments_settings(tmp_path, algo):
  import json  # pylint: disable=import-outside-toplevel
  from reflex_jax.run.experiment import _write_config  # pylint: disable=import-outside-toplevel
  from reflex_jax.run.peer import run_peer  # pylint: disable=import-outside-toplevel
  settings = {"ppo": ["steps=8192", "ppo.num_envs=16", "ppo.unroll_length=16",
                      "ppo.num_minibatches=4", "ppo.num_logs=2", "ppo.policy.squash=tanh",
                      "ppo.policy.std=state_dependent", "ppo.num_eval_envs=4"],
              "sac": ["steps=2048", "sac.num_envs=8", "sac.learning_starts=1024",
                      "sac.num_logs=2", "sac.num_eval_envs=4", "sac.batch_size=32"]}[algo]
  config = run_config.load_config(overrides=["env=brax/inverted_pendulum", f"algo={algo}",
                                             "seeds=2", *settings])
  _write_config(str(tmp_path), config)
  result = run_peer(str(tmp_path), 2)
  assert result["seeds"] == [0, 1] and len(result["final"]) == 2
  assert len(result["curves"][0]) == 3 and result["env_steps"][-1] >= config.steps
  assert json.loads((tmp_path / "peer.json").read_text())["final"] == result["final"]
  assert run_peer(str(tmp_path), 2)["seeds"] == [0, 1]  # finished seeds are not rerun


def test_the_peer_cli_refuses_settings_brax_cannot_run_in_one_line(tmp_path, capsys):
  from reflex_jax.run.experiment import _write_config  # pylint: disable=import-outside-toplevel
  from reflex_jax.run.peer import main  # pylint: disable=import-outside-toplevel
  config = run_config.load_config(overrides=["env=brax/inverted_pendulum", "algo=ppo",
                                             "ppo.policy.std=state_independent"])
  _write_config(str(tmp_path), config)
  assert main([str(tmp_path)]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err == [err[0]] and "ppo, peer: brax's PPO policy is a tanh-Gaussian" in err[0]
  with filelock.FileLock(str(tmp_path / "peer.json.lock"), timeout=0):
    pass  # released
