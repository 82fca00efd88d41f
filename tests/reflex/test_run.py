"""Experiments as users run them: config errors, checkpoints and exact resume, the non-finite
guard, metric files."""

import dataclasses
import json
import os
import sys
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from reflex_jax import driver, envs, ppo
from reflex_jax.algorithms import ALGORITHMS
from reflex_jax.envs.base import Wrapper
from reflex_jax.run import RunCheckpoints
from reflex_jax.run import config as run_config
from reflex_jax.run.cli import main as cli_main
from reflex_jax.run.experiment import load_params
from reflex_jax.run.logging import MetricLog
from runkit.metrics import read_metrics
from tests.helpers import corrupt_arrays, kill_at_checkpoint, run_to_completion, xla_flags

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
    (["ppo.gamma=2.0"], "ppo.gamma must be in [0, 1], got 2.0"),
    (["ppo.gae_lambda=-0.1"], "ppo.gae_lambda must be in [0, 1], got -0.1"),
    (["ppo.learning_rate=-1"], "ppo.learning_rate must be finite and > 0, got -1.0"),
    (["ppo.clip_epsilon=-0.2"], "ppo.clip_epsilon must be finite and > 0, got -0.2"),
    (["ppo.entropy_coef=-0.01"], "ppo.entropy_coef must be finite and >= 0, got -0.01"),
    (["reflex.weight=-5"], "reflex.weight must be finite and >= 0, got -5.0"),
    (["reflex.value_coef=-1"], "reflex.value_coef must be finite and >= 0, got -1.0"),
    # w0 has one home, reflex.weight: the algorithm sections do not take it.
    (["ppo.reflex_weight=0.3"], "reflex_weight"),
    (["algo=sac", "sac.reflex_weight=0.3"], "reflex_weight"),
    (["algo=sac", "sac.gamma=1.5"], "sac.gamma must be in [0, 1], got 1.5"),
    (["algo=sac", "sac.learning_rate=0"], "sac.learning_rate must be finite and > 0, got 0.0"),
    (["algo=sac", "sac.init_alpha=-1"], "sac.init_alpha must be finite and > 0, got -1.0"),
    # A budget that whole iterations would overshoot by far: the smallest valid one is named.
    (["env=brax/inverted_pendulum", "steps=10", "ppo.num_envs=8", "ppo.num_logs=3"],
     "steps=10 is less than one iteration of 8 envs × unroll 32 × 3 logs = 768; ask for ≥ 768"),
    (["ppo.num_timesteps=1000", "ppo.num_envs=8", "ppo.num_logs=3"],
     "ppo.num_timesteps=1000 would train 1,536 env steps (+54%)"),
    (["algo=sac", "steps=100"], "steps=100 is less than the 3,008-step prefill + one iteration "
     "of 16 envs × 10 logs = 3,168; ask for ≥ 3168 or fewer sac.num_envs / sac.num_logs"),
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


def test_cli_rejects_a_budget_it_would_overshoot_by_far(capsys):
  with pytest.raises(SystemExit) as done:
    cli_main(["env=brax/inverted_pendulum", "steps=10", "ppo.num_envs=8", "ppo.num_logs=3"])
  err = capsys.readouterr().err
  assert done.value.code == 2 and "steps=10 is less than one iteration" in err


def test_a_budget_rounded_a_little_is_noted_in_one_line(capsys):
  budget = ppo.PPOConfig(num_timesteps=600_000, num_envs=64, num_logs=20).budget()
  assert budget.check("steps", notify=True) == 614_400
  note = capsys.readouterr().err.strip().splitlines()
  assert note == ["note: training 614,400 env steps, 2.4% more than the 600,000 asked for: "
                  "whole iterations of 64 envs × unroll 32 × 20 logs = 40,960"]
  assert dataclasses.replace(budget, requested=614_400).check("steps", notify=True) == 614_400
  assert not capsys.readouterr().err  # exact: nothing to say


def test_yaml_configs_in_experiments_load():
  directory = os.path.join(ROOT, "experiments", "reflex")
  files = [f for f in os.listdir(directory) if f.endswith(".yaml")]
  assert files
  for name in files:
    if name.startswith("grid"):
      continue
    run_config.load_config([os.path.join(directory, name)])


def test_grid_files_in_experiments_load():
  from reflex_jax.run import grid  # pylint: disable=import-outside-toplevel
  directory = os.path.join(ROOT, "experiments", "reflex")
  files = [os.path.join(directory, f) for f in os.listdir(directory) if f.startswith("grid")]
  files.append(os.path.join(directory, "bilateral", "study.yaml"))
  for path in files:
    _, configs = grid.load_grid(path)
    assert configs
  # the study's settings are brax's: the defaults file under the published task settings
  _, (walker, ant, _) = grid.load_grid(files[-1])
  assert ant.ppo.value_hidden == (256,) * 5 and ant.ppo.entropy_estimate == "squashed"
  assert walker.sac.learning_rate == 6e-4 and walker.sac.target_entropy == -3.0


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
  """The toy balancing task whose observations turn NaN once an episode lasts `steps` steps:
  a simulator blow-up that only a policy that has learned something reaches."""

  def __init__(self, env, steps: int):
    super().__init__(env)
    self.seconds = steps * env.dt

  def step(self, state, action):
    nxt = self.env.step(state, action)
    bad = nxt.native.time > self.seconds
    return nxt.replace(obs=jnp.where(bad, jnp.nan, nxt.obs))


SMALL_PPO = ppo.PPOConfig(num_timesteps=16 * 32 * 8 * 6, num_envs=16, unroll_length=32,
                          num_minibatches=4, num_epochs=2, num_logs=6, num_eval_envs=2,
                          episode_length=200)


@pytest.mark.long
def test_non_finite_simulator_state_stops_naming_the_step_and_keeps_the_last_checkpoint(
    tmp_path):
  sim = BlowsUpWhenBalancing(envs.make_simulator("toy/point_mass"), steps=60)
  checkpoints = RunCheckpoints(str(tmp_path / "ckpt"))
  with pytest.raises(driver.NonFiniteError) as error:
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


def test_a_damaged_newest_checkpoint_is_skipped_and_trained_again(tmp_path, capsys):
  grid = driver.RunGrid.create([0, 1], None, None, "PPO")
  init = lambda: Counter(jnp.zeros(2), jnp.zeros(2))  # two runs

  def chunk(state):  # one logging interval of one run: count it
    state = Counter(state.params + 1, state.env_state)
    return state, {"episode_return": state.params}
  drive = lambda num_logs: driver.drive(init, chunk, grid, num_logs, 10,
                                        checkpoints=RunCheckpoints(str(tmp_path), keep=3))
  drive(2)
  corrupt_arrays(tmp_path / "2")
  state, history, _, _ = drive(3)
  assert "after 1/3 logging intervals" in capsys.readouterr().err
  np.testing.assert_array_equal(state.params, [3, 3])
  np.testing.assert_array_equal(history["episode_return"], [[1, 1], [2, 2], [3, 3]])
  assert (tmp_path / "unreadable.2").is_dir()  # set aside, not deleted
  assert RunCheckpoints(str(tmp_path)).latest() == 3


class Counter(NamedTuple):
  params: jax.Array
  env_state: jax.Array


def test_metric_log_resumes_after_a_torn_last_line(tmp_path):
  interval = lambda log, value: log.write(value, 10 * value, ["reflex"], [0],
                                          {"episode_return": np.array([[value]])})
  log = MetricLog(str(tmp_path), tensorboard=False)
  interval(log, 1)
  log.close()
  with open(tmp_path / "metrics.jsonl", "a", encoding="utf-8") as f:
    f.write('{"log": 2, "env_steps": 2')  # killed mid-write
  log = MetricLog(str(tmp_path), tensorboard=False)
  interval(log, 2)
  log.close()
  rows = read_metrics(str(tmp_path / "metrics.jsonl"))
  assert [(r["log"], r["episode_return"]) for r in rows] == [(1, 1.0), (2, 2.0)]
  assert (tmp_path / "metrics.csv").read_text().count("\n") == 3  # header + 2 rows


def _train_command(run_dir, env_id, size):
  return [sys.executable, "-m", "reflex_jax.train", f"--out-dir={run_dir}",
          f"env={env_id}", "algo=ppo", "seeds=2", *size, "ppo.num_eval_envs=2",
          "progress=false", "tensorboard=false"]


# Three CLI runs: under a minute on the pure-JAX task, ~5 min on an MJX one (`make test-all`).
@pytest.mark.long
@pytest.mark.parametrize("env_id,size", [
    ("toy/point_mass", ["steps=4096", "ppo.num_envs=16", "ppo.num_logs=8",
                        "ppo.episode_length=100", "ppo.policy.hidden=[32,32]"]),
    pytest.param("brax/inverted_pendulum", ["steps=98304", "ppo.num_envs=32", "ppo.num_logs=12"],
                 marks=pytest.mark.slow)])
def test_sigkill_and_rerun_ends_with_the_same_parameters(tmp_path, env_id, size):
  # The three processes compile the same programs: JAX's persistent cache compiles them once.
  # One CPU device, as a user's machine has (8 make each process ~30 % slower).
  env = dict(os.environ, PYTHONPATH=ROOT, JAX_PLATFORMS="cpu", XLA_FLAGS=xla_flags(1),
             JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
             JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  command = lambda run_dir: _train_command(run_dir, env_id, size)
  run_to_completion(command(tmp_path / "straight"), env=env, cwd=ROOT)

  run_dir = tmp_path / "killed"
  logs = int(size[2].split("=")[1])
  kill_at_checkpoint(command(run_dir), run_dir / "checkpoints" / "baseline+reflex", 3, logs,
                     env=env, cwd=ROOT)
  assert not (run_dir / "results.json").exists()

  resumed = run_to_completion(command(run_dir), env=env, cwd=ROOT)
  assert "resumed from" in resumed.stderr

  config = run_config.load_config([], command(run_dir)[4:])
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


# --- the run directory: a changed config, an unwritable directory ------------------------------

RUN_ARGS = ["env=brax/inverted_pendulum", "seeds=2", "steps=40960", "progress=false",
            "tensorboard=false"]  # 64 envs × unroll 32 × 20 logs = 40,960: no rounding


@pytest.fixture
def fake_training(monkeypatch):
  """`ppo.train` replaced (in the registry) by instant fake results: the experiment's
  bookkeeping without a compile. Returns the list of configs it was called with."""
  calls = []

  class FakePPO:
    @staticmethod
    def train(env, config, seed, *, reflex_weight=None, progress_fn=None, checkpoints=None,
              progress_bar=False):
      del env, progress_fn, progress_bar
      calls.append(config)
      checkpoints.close()
      shape = (len(reflex_weight or [0.0]), len(seed))
      lr = np.full(shape, config.learning_rate)  # results that show which config made them
      metrics = {"env_steps": np.array([20480, 40960]), "episode_return": np.stack([lr, lr]),
                 "policy_symmetry_error": np.zeros((2,) + shape),
                 "value_symmetry_error": np.zeros((2,) + shape),
                 **{k: lr for k in ("eval/return", "eval/return_std", "eval/length",
                                    "eval_stochastic/return")},
                 **{k: 1.0 for k in ("compile_seconds", "train_seconds",
                                     "env_steps_per_second", "total_env_steps")}}
      return None, None, metrics

  monkeypatch.setitem(ALGORITHMS, "ppo", dataclasses.replace(ALGORITHMS["ppo"], module=FakePPO))
  return calls


def test_a_finished_run_is_reported_again_but_another_config_is_refused(tmp_path, capsys,
                                                                         fake_training):
  run_dir = tmp_path / "run"
  out = [f"--out-dir={run_dir}"]
  assert cli_main(out + RUN_ARGS) == 0 and len(fake_training) == 1
  results = (run_dir / "results.json").read_text()
  saved_config = (run_dir / "config.yaml").read_text()
  capsys.readouterr()

  # The same config (display settings aside) reports the finished run without training.
  assert cli_main(out + RUN_ARGS + ["progress=true"]) == 0 and len(fake_training) == 1
  assert "finished earlier" in capsys.readouterr().err

  # Another config is refused before anything is touched, naming each key old → new.
  assert cli_main(out + RUN_ARGS + ["seeds=3", "ppo.learning_rate=0.1"]) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert len(err) == 1 and err[0].startswith("error: ") and "--force-new-config" in err[0]
  assert "ppo.learning_rate: 0.0003 → 0.1" in err[0] and "seeds: 2 → 3" in err[0]
  assert len(fake_training) == 1
  assert (run_dir / "results.json").read_text() == results
  assert (run_dir / "config.yaml").read_text() == saved_config

  # --force-new-config deletes what the old run wrote (and nothing else) and trains anew.
  stale = run_dir / "checkpoints" / "baseline+reflex" / "stale"
  stale.parent.mkdir(parents=True, exist_ok=True)
  stale.write_text("old")
  (run_dir / "notes.txt").write_text("the user's")
  assert cli_main(out + RUN_ARGS + ["seeds=3", "ppo.learning_rate=0.1", "--force-new-config"]) == 0
  assert len(fake_training) == 2 and fake_training[-1].learning_rate == 0.1
  assert not stale.exists() and (run_dir / "notes.txt").exists()
  new = json.loads((run_dir / "results.json").read_text())
  assert new["seeds"] == [0, 1, 2] and new["final"]["eval/return"]["reflex"] == [0.1] * 3
  assert "learning_rate: 0.1" in (run_dir / "config.yaml").read_text()


def test_an_unwritable_run_directory_is_one_error_line(tmp_path, capsys, fake_training):
  blocker = tmp_path / "a_file"
  blocker.write_text("")  # a run directory under a file cannot be made, even by root
  assert cli_main([f"--out-dir={blocker / 'run'}"] + RUN_ARGS) == 2
  err = capsys.readouterr().err.strip().splitlines()
  assert err == [f"error: cannot write the run directory {blocker / 'run'}: Not a directory "
                 f"({blocker / 'run'})"]
  assert not fake_training


def test_a_grid_refuses_a_changed_cell_before_running_any(tmp_path, fake_training):
  from reflex_jax.run import grid  # pylint: disable=import-outside-toplevel
  grid_file = tmp_path / "grid.yaml"
  grid_file.write_text(
      f"out_dir: {tmp_path / 'g'}\nenvs: [brax/inverted_pendulum, brax/inverted_double_pendulum]"
      "\nalgos: [ppo]\ncommon: {seeds: 2, steps: 40960, progress: false, tensorboard: false}\n")
  out_dir, configs = grid.load_grid(str(grid_file))
  second = configs[1]
  os.makedirs(second.out_dir)
  old = dataclasses.replace(second, seeds=3)  # the second cell's directory holds another run
  (tmp_path / "g" / "brax_inverted_double_pendulum" / "ppo" / "config.yaml").write_text(
      run_config.to_yaml(old))
  with pytest.raises(run_config.ConfigError, match="seeds: 3 → 2"):
    grid.run_grid(out_dir, configs)
  assert not fake_training and not os.path.exists(configs[0].out_dir)


def test_a_grid_takes_cells_base_files_and_refuses_misspelt_overrides(tmp_path):
  from reflex_jax.run import grid  # pylint: disable=import-outside-toplevel
  (tmp_path / "defaults.yaml").write_text("ppo: {gamma: 0.97}\nsac: {tau: 0.01}\n")
  text = ("out_dir: g\nbase: [defaults.yaml]\ncells: [brax/ant/ppo, brax/walker2d/sac]\n"
          "overrides:\n  brax/ant/ppo: {steps: 40960, ppo: {num_envs: 64}}\n"
          "  sac: {steps: 20000}\n")
  grid_file = tmp_path / "grid.yaml"
  grid_file.write_text(text)
  _, configs = grid.load_grid(str(grid_file))  # base path relative to the grid file, not cwd
  assert [(c.env, c.algo) for c in configs] == [("brax/ant", "ppo"), ("brax/walker2d", "sac")]
  assert configs[0].ppo.gamma == 0.97 and configs[0].ppo.num_envs == 64
  assert configs[1].sac.tau == 0.01 and configs[1].steps == 20000
  # a command line may narrow the cells; the other cells' overrides are then unused, not stray
  _, configs = grid.load_grid(str(grid_file), ["cells=[brax/walker2d/sac]"])
  assert [c.env for c in configs] == ["brax/walker2d"]
  grid_file.write_text(text.replace("brax/ant/ppo: {", "brax/antt/ppo: {"))
  with pytest.raises(run_config.ConfigError, match=r"overrides for \['brax/antt/ppo'\]"):
    grid.load_grid(str(grid_file))
  grid_file.write_text(text.replace("defaults.yaml]", "nothere.yaml]"))
  with pytest.raises(run_config.ConfigError, match="nothere.yaml"):
    grid.load_grid(str(grid_file))
  grid_file.write_text(text + "envs: [brax/ant]\n")
  with pytest.raises(run_config.ConfigError, match="either cells or envs"):
    grid.load_grid(str(grid_file))
  grid_file.write_text(text + "peer_seeds: -1\n")
  with pytest.raises(run_config.ConfigError, match="peer_seeds"):
    grid.peer_seeds(str(grid_file))


def test_a_grid_runs_the_peer_on_the_standard_model_only(tmp_path, monkeypatch, fake_training):
  from reflex_jax.run import grid  # pylint: disable=import-outside-toplevel
  peers = []
  monkeypatch.setattr(grid, "run_peer", lambda run_dir, seeds: peers.append((run_dir, seeds)))
  grid_file = tmp_path / "grid.yaml"
  grid_file.write_text(
      f"out_dir: {tmp_path / 'g'}\ncells: [brax/inverted_double_pendulum/ppo]\npeer_seeds: 2\n"
      "common: {seeds: 2, steps: 40960, progress: false, tensorboard: false, "
      "ppo: {policy: {squash: tanh, std: state_dependent}}}\n")
  out_dir, configs = grid.load_grid(str(grid_file))
  grid.run_grid(out_dir, configs, peers=grid.peer_seeds(str(grid_file)))
  assert peers == [(configs[0].out_dir, 2)] and len(fake_training) == 1
  _, equalized = grid.load_grid(str(grid_file), [f"out_dir={tmp_path / 'e'}",
                                                 "common.ppo.equalize_asymmetries=true"])
  grid.run_grid(str(tmp_path / "e"), equalized, peers=2)
  assert len(peers) == 1 and len(fake_training) == 2
  clipped = [dataclasses.replace(configs[0], out_dir=str(tmp_path / "c"),
                                 ppo=dataclasses.replace(configs[0].ppo, value_clip=0.2))]
  with pytest.raises(run_config.ConfigError, match="peer: brax's PPO has no value clipping"):
    grid.run_grid(str(tmp_path / "c"), clipped, peers=2)
