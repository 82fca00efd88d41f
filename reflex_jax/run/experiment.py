"""One experiment: a task × an algorithm × variants × seeds, written to a run directory.

    run_dir/
      config.yaml            the resolved configuration
      metrics.jsonl, .csv    one row per logging interval, variant and seed
      tensorboard/           event files per variant/seed
      checkpoints/<group>/   Orbax checkpoints (everything needed to continue exactly)
      results.json           curves and final evaluation; written last (marks the run done)

Running the same experiment again resumes each variant group from its latest checkpoint;
a finished experiment (results.json present) is not rerun.
"""

from __future__ import annotations

import json
import os
import sys

import jax
import numpy as np

from reflex_jax import ppo, runs, sac
from reflex_jax.run import config as run_config
from reflex_jax.run.checkpoint import RunCheckpoints
from reflex_jax.run.logging import MetricLog
from reflex_jax.symmetry import registry

TRAINERS = {"ppo": ppo, "sac": sac}
CURVES = ("episode_return", "policy_symmetry_error", "value_symmetry_error")


def run_experiment(config: run_config.ExperimentConfig, run_dir: str | None = None) -> dict:
  """Trains every variant group (resuming from checkpoints) and returns the results dict
  (also written to run_dir/results.json)."""
  run_dir = run_dir or run_config.out_dir(config)
  results_path = os.path.join(run_dir, "results.json")
  if os.path.exists(results_path):
    print(f"{run_dir}: finished earlier; results.json kept", file=sys.stderr)
    return load_results(run_dir)
  os.makedirs(run_dir, exist_ok=True)
  _check_same_config(run_dir, config)
  seeds = config.seed_list
  log = MetricLog(run_dir, tensorboard=config.tensorboard)
  results = {"env": config.env, "algo": config.algo, "kind": _kind(config.env),
             "variants": list(config.variants), "seeds": seeds, "curves": {}, "final": {},
             "timing": {}}
  try:
    for group in run_config.variant_groups(config):
      checkpoints = RunCheckpoints(os.path.join(run_dir, "checkpoints", group.name),
                                   keep=config.keep_checkpoints, every=config.checkpoint_every)
      log.keep(group.variants, checkpoints.latest() or 0)
      print(f"{config.env} {config.algo}: {', '.join(group.variants)} × {len(seeds)} seeds",
            file=sys.stderr, flush=True)
      logs_written = [checkpoints.latest() or 0]

      def progress(env_steps, m, group=group, logs_written=logs_written):
        logs_written[0] += 1
        log.write(logs_written[0], env_steps, group.variants, seeds,
                  {k: np.reshape(v, (len(group.variants), len(seeds))) for k, v in m.items()
                   if k != "env_steps"})

      _, _, metrics = TRAINERS[config.algo].train(
          config.env, group.algorithm_config, seed=seeds, reflex_weight=list(group.weights)
          if group.algorithm_config.reflex is not None else None,
          progress_fn=progress, checkpoints=checkpoints, progress_bar=config.progress)
      _collect(results, group, metrics)
  finally:
    log.close()
  with open(results_path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(results, f, indent=1)
  os.replace(results_path + ".tmp", results_path)  # atomic: present means finished
  return results


def _collect(results: dict, group: run_config.VariantGroup, metrics: dict) -> None:
  """Per-variant curves [logs][seeds] and final values [seeds] from one group's metrics,
  whose arrays are [logs, variants, seeds] (or [logs, seeds] for a plain group)."""
  def per_variant(x, leading):
    x = np.asarray(x, np.float64)
    return x.reshape(x.shape[:leading] + (len(group.variants), -1))

  results["env_steps"] = np.asarray(metrics["env_steps"]).tolist()
  for name in CURVES:
    if name in metrics:
      x = per_variant(metrics[name], 1)
      for i, v in enumerate(group.variants):
        results["curves"].setdefault(name, {})[v] = _json(x[:, i])
  for name in ("eval/return", "eval/return_std", "eval/length", "eval_stochastic/return"):
    x = per_variant(metrics[name], 0)
    for i, v in enumerate(group.variants):
      results["final"].setdefault(name, {})[v] = _json(x[i])
  results["timing"][group.name] = {
      k: float(metrics[k]) for k in ("compile_seconds", "train_seconds", "env_steps_per_second",
                                     "total_env_steps")}


def _json(x: np.ndarray) -> list:
  return np.where(np.isfinite(x), x, np.nan).tolist()  # NaN: no episode finished yet


def _kind(env_id: str) -> str | None:
  try:
    return registry.get(env_id).kind
  except registry.UnknownEnvironmentError:
    return None


def _check_same_config(run_dir: str, config: run_config.ExperimentConfig) -> None:
  """A run directory holds one experiment: resuming with other settings would mix runs."""
  path = os.path.join(run_dir, "config.yaml")
  text = run_config.to_yaml(config)
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      saved = f.read()
    if _without_display(saved) != _without_display(text):
      raise run_config.ConfigError(
          f"{run_dir} holds a run with another configuration ({path}); use another out_dir "
          "or delete that directory")
  with open(path, "w", encoding="utf-8") as f:
    f.write(text)


def _without_display(yaml_text: str) -> list[str]:
  """Settings that do not change the results may differ between a run and its resume."""
  return [line for line in yaml_text.splitlines()
          if not line.startswith(("progress:", "tensorboard:"))]


def load_results(run_dir: str) -> dict:
  with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as f:
    return json.load(f)


def load_policy(run_dir: str, variant: str, seed: int):
  """(policy(obs, key=None) → action, the simulator) of one trained run, from its checkpoint."""
  config = run_config.from_yaml(os.path.join(run_dir, "config.yaml"))
  if variant not in config.variants:
    raise ValueError(f"{run_dir} has variants {config.variants}, not {variant!r}")
  seeds = config.seed_list
  if seed not in seeds:
    raise ValueError(f"{run_dir} has seeds {seeds}, not {seed}")
  group = next(g for g in run_config.variant_groups(config) if variant in g.variants)
  sim, trainer = TRAINERS[config.algo].make_trainer(config.env, group.algorithm_config)
  params = load_params(run_dir, group, config, trainer)
  run = group.variants.index(variant) * len(seeds) + seeds.index(seed)
  run_params = jax.tree.map(lambda x: x[run], params)
  return runs.make_policy(trainer.net)(run_params, deterministic=True), sim


def load_params(run_dir: str, group: run_config.VariantGroup,
                config: run_config.ExperimentConfig, trainer=None):
  """The parameters of every run of `group` ([runs, ...] leaves) at its latest checkpoint.
  `trainer`: the group's Trainer when the caller has built it already."""
  if trainer is None:
    _, trainer = TRAINERS[config.algo].make_trainer(config.env, group.algorithm_config)
  weights = group.weights if group.algorithm_config.reflex is not None else None
  grid = runs.RunGrid.create(config.seed_list, list(weights) if weights else None,
                             group.algorithm_config.reflex_weight,
                             group.algorithm_config.reflex is not None, config.algo.upper())
  abstract = jax.eval_shape(jax.vmap(trainer.init), grid.keys, grid.weights)
  checkpoints = RunCheckpoints(os.path.join(run_dir, "checkpoints", group.name))
  if checkpoints.latest() is None:
    raise FileNotFoundError(f"no checkpoint for {group.name} in {run_dir}")
  state, _, _ = checkpoints.restore(abstract)
  checkpoints.close()
  return state.params


__all__ = ["load_params", "load_policy", "load_results", "run_experiment"]
