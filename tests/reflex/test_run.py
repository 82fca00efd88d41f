"""Experiments as users run them: config errors, checkpoints and exact resume, the non-finite
guard, metric files."""

import dataclasses
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reflex_jax import envs, ppo, runs
from reflex_jax.envs.base import Wrapper
from reflex_jax.run import RunCheckpoints
from reflex_jax.run import config as run_config
from reflex_jax.run.cli import main as cli_main
from reflex_jax.run.experiment import load_params
from tests.helpers import kill_at_checkpoint, run_to_completion

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.parametrize("override, message", [
    (["ppo.num_envz=3"], "num_envz"),
    (["env=brax/antt"], "unknown env 'brax/antt'"),
    (["algo=dqn"], "choose one of ['ppo', 'sac']"),
    (["variants=[baseline,reflx]"], "unknown variants ['reflx']"),
    (["ppo.lr_schedule=cosine"], "expected one of ['constant', 'linear']"),
    (["seeds=many"], "seeds"),
    (["env=brax/hopper", "variants=[reflex]"], "need a reflection"),
    (["reflex.schedule=cubic"], "schedule"),
    (["ppo.num_minibatches=7"], "divisible"),
])
def test_bad_keys_and_values_fail_fast_naming_them(override, message):
  with pytest.raises(run_config.ConfigError) as error:
    run_config.load_config([], override)
  assert message in str(error.value)


def test_cli_help_and_bad_override_exit_with_the_problem(capsys):
  with pytest.raises(SystemExit) as done:
    cli_main(["--help"])
  assert done.value.code == 0 and "reflex.weight" in capsys.readouterr().out
  with pytest.raises(SystemExit) as done:
    cli_main(["seeds"])
  assert done.value.code == 2 and "key=value" in capsys.readouterr().err


def test_yaml_configs_in_experiments_load():
  directory = os.path.join(ROOT, "experiments", "reflex")
  files = [f for f in os.listdir(directory) if f.endswith(".yaml")]
  assert files
  for name in files:
    if name.startswith("grid"):
      continue
    run_config.load_config([os.path.join(directory, name)])


def test_variants_group_by_program():
  config = run_config.load_config([], ["variants=[baseline,reflex,augment,symmetrize]",
                                       "reflex.weight=0.3"])
  groups = {g.name: g for g in run_config.variant_groups(config)}
  assert set(groups) == {"baseline+reflex", "augment", "symmetrize"}
  assert groups["baseline+reflex"].weights == (0.0, 0.3)
  assert groups["augment"].weights == (0.0,) and groups["augment"].algorithm_config.reflex.augment
  alone = run_config.variant_groups(run_config.load_config([], ["variants=[baseline]"]))
  assert alone[0].algorithm_config.reflex is None  # plain PPO, no regularizer computed


class BlowsUpWhenBalancing(Wrapper):
  """Inverted pendulum whose observations turn NaN once an episode lasts `steps` steps: a
  simulator blow-up that only a policy that has learned something reaches."""

  def __init__(self, env, steps: int):
    super().__init__(env)
    self.seconds = steps * env.dt

  def step(self, state, action):
    nxt = self.env.step(state, action)
    bad = nxt.native.pipeline_state.time > self.seconds
    return nxt.replace(obs=jnp.where(bad, jnp.nan, nxt.obs))


SMALL_PPO = ppo.PPOConfig(num_timesteps=16 * 32 * 8 * 6, num_envs=16, unroll_length=32,
                          num_minibatches=4, num_epochs=2, num_logs=6, num_eval_envs=2,
                          episode_length=200)


def test_non_finite_simulator_state_stops_naming_the_step_and_keeps_the_last_checkpoint(
    tmp_path):
  sim = BlowsUpWhenBalancing(envs.make_simulator("brax/inverted_pendulum"), steps=60)
  checkpoints = RunCheckpoints(str(tmp_path / "ckpt"))
  with pytest.raises(runs.NonFiniteError) as error:
    ppo.train(sim, SMALL_PPO, seed=[0, 1], checkpoints=checkpoints)
  message = str(error.value)
  assert "non-finite" in message and "between env steps" in message and "seed" in message
  kept = RunCheckpoints(str(tmp_path / "ckpt"))
  assert kept.latest() is not None and kept.latest() < SMALL_PPO.num_logs
  assert f"({kept.latest()} logging intervals)" in message

  # Masking the blow-ups instead: training goes on and counts them.
  _, params, metrics = ppo.train(
      sim, dataclasses.replace(SMALL_PPO, mask_nonfinite=True), seed=[0, 1])
  assert metrics["masked_steps"].sum() > 0
  assert all(np.isfinite(x).all() for x in jax.tree.leaves(params))


def test_checkpoint_round_trip_keeps_keys_and_zero_size_leaves(tmp_path):
  state = {"key": jax.random.split(jax.random.key(3), 2), "w": jnp.arange(6.0).reshape(2, 3),
           "empty": jnp.zeros((2, 0)), "step": jnp.array([4, 5])}
  checkpoints = RunCheckpoints(str(tmp_path))
  checkpoints.save(1, state, {"loss": [np.array([1.0, np.nan])]}, force=True)
  checkpoints.close()
  restored, history, done = RunCheckpoints(str(tmp_path)).restore(jax.eval_shape(lambda: state))
  assert done == 1 and np.isnan(history["loss"][0][1])
  np.testing.assert_array_equal(jax.random.key_data(restored["key"]),
                                jax.random.key_data(state["key"]))
  np.testing.assert_array_equal(restored["w"], state["w"])
  assert restored["empty"].shape == (2, 0)


def _train_command(run_dir):
  return [sys.executable, "-m", "reflex_jax.train", f"--out-dir={run_dir}",
          "env=brax/inverted_pendulum", "algo=ppo", "seeds=2", "steps=98304", "ppo.num_envs=32",
          "ppo.num_logs=12", "ppo.num_eval_envs=2", "progress=false", "tensorboard=false"]


@pytest.mark.slow  # three CLI runs, ~5 min on 2 cores; `make test-all` runs it
def test_sigkill_and_rerun_ends_with_the_same_parameters(tmp_path):
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu")
  run_to_completion(_train_command(tmp_path / "straight"), env=env, cwd=ROOT)

  run_dir = tmp_path / "killed"
  kill_at_checkpoint(_train_command(run_dir), run_dir / "checkpoints" / "baseline+reflex", 3, 12,
                     env=env, cwd=ROOT)
  assert not (run_dir / "results.json").exists()

  resumed = run_to_completion(_train_command(run_dir), env=env, cwd=ROOT)
  assert "resumed from" in resumed.stderr

  config = run_config.load_config([], _train_command(run_dir)[4:])
  group = run_config.variant_groups(config)[0]
  want = load_params(str(tmp_path / "straight"), group, config)
  got = load_params(str(run_dir), group, config)
  jax.tree.map(np.testing.assert_array_equal, got, want)
  rows = lambda d: [json.loads(line) for line in open(d / "metrics.jsonl", encoding="utf-8")]
  assert rows(run_dir) == rows(tmp_path / "straight")  # the log reads as one run
  results = lambda d: json.load(open(d / "results.json", encoding="utf-8"))
  assert results(run_dir)["final"] == results(tmp_path / "straight")["final"]


@pytest.mark.slow  # three SAC compiles, ~2.5 min on 2 cores
def test_interrupted_sac_resumes_to_the_same_parameters_and_replay_buffer(tmp_path):
  from reflex_jax import sac  # pylint: disable=import-outside-toplevel
  config = sac.SACConfig(num_timesteps=4 * 8 * 12, num_envs=4, learning_starts=32,
                         grad_updates_per_step=2, batch_size=32, num_logs=4, num_eval_envs=2,
                         policy=dataclasses.replace(sac.SACConfig().policy, hidden=(32, 32)),
                         q_hidden=(32, 32), reflex=sac.ReflexConfig())
  run = lambda directory, **kw: sac.train("brax/inverted_pendulum", config, seed=[0, 1],
                                          reflex_weight=[0.0, 0.1],
                                          checkpoints=RunCheckpoints(str(directory)), **kw)
  _, want, straight = run(tmp_path / "straight")

  class Interrupt(Exception):
    pass

  def stop_after_two(env_steps, metrics):
    if len(stop_after_two.seen) == 1:
      raise Interrupt  # after the second interval's checkpoint was written
    stop_after_two.seen.append(env_steps)
  stop_after_two.seen = []
  with pytest.raises(Interrupt):
    run(tmp_path / "cut", progress_fn=stop_after_two)
  assert RunCheckpoints(str(tmp_path / "cut")).latest() == 2
  _, got, resumed = run(tmp_path / "cut")
  jax.tree.map(np.testing.assert_array_equal, got, want)
  np.testing.assert_array_equal(resumed["episode_return"], straight["episode_return"])
  np.testing.assert_array_equal(resumed["buffer_size"], straight["buffer_size"])
