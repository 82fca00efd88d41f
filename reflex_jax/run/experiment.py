"""One experiment: a task × an algorithm × variants × seeds, written to a run directory.

    run_dir/
      config.yaml            the resolved configuration
      metrics.jsonl, .csv    one row per logging interval, variant and seed
      tensorboard/           event files per variant/seed
      checkpoints/<group>/   Orbax checkpoints (everything needed to continue exactly)
      results.json           curves and final evaluation; written last (marks the run done)

Running the same experiment again resumes each variant group from its latest readable
checkpoint; a finished experiment (results.json present) is not rerun. Another configuration in
the same directory is refused, naming the keys that differ, unless `force_new_config` (the
CLIs' `--force-new-config`) deletes the old run first.
"""

from __future__ import annotations

import json
import os
import shutil
import sys

import jax
import numpy as np
from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from reflex_jax import driver
from reflex_jax.algorithms import ALGORITHMS
from reflex_jax.run import config as run_config
from reflex_jax.run.checkpoint import RunCheckpoints
from reflex_jax.run.logging import MetricLog
from reflex_jax.symmetry import registry

CURVES = ("episode_return", "policy_symmetry_error", "value_symmetry_error")


class RunDirectoryError(OSError):
  """The run directory cannot be created or written; the message names it."""


def run_experiment(config: run_config.ExperimentConfig, run_dir: str | None = None, *,
                   force_new_config: bool = False) -> dict:
  """Trains every variant group (resuming from checkpoints) and returns the results dict
  (also written to run_dir/results.json).

  Raises run_config.ConfigError, before anything is written, when run_dir holds a run with
  other settings; `force_new_config=True` deletes that run and starts this one instead.
  Raises RunDirectoryError when run_dir cannot be created or written."""
  run_dir = run_dir or run_config.out_dir(config)
  results_path = os.path.join(run_dir, "results.json")
  changed = check_run_dir(config, run_dir, force_new_config=force_new_config)
  if changed:
    print(f"{run_dir}: deleting the run with another configuration ({', '.join(changed)})",
          file=sys.stderr, flush=True)
    _guard_writes(run_dir, _delete_run, run_dir)
  elif os.path.exists(results_path):
    print(f"{run_dir}: finished earlier; results.json kept", file=sys.stderr)
    return load_results(run_dir)
  _guard_writes(run_dir, _write_config, run_dir, config)
  seeds = config.seed_list
  log = MetricLog(run_dir, tensorboard=config.tensorboard, wandb=dict(
      project=config.wandb_project, mode=config.wandb_mode,
      config=OmegaConf.to_container(OmegaConf.structured(config))) if config.wandb else None)
  results = {"env": config.env, "algo": config.algo, "kind": _kind(config.env),
             "model": model_label(config), "variants": list(config.variants), "seeds": seeds,
             "curves": {}, "final": {}, "timing": {}}
  try:
    for group in run_config.variant_groups(config):
      checkpoints = RunCheckpoints(os.path.join(run_dir, "checkpoints", group.name),
                                   keep=config.keep_checkpoints, every=config.checkpoint_every)
      print(f"{config.env} {config.algo}: {', '.join(group.variants)} × {len(seeds)} seeds",
            file=sys.stderr, flush=True)
      logs_written = [None]

      def progress(env_steps, m, group=group, logs_written=logs_written,
                   checkpoints=checkpoints):
        if logs_written[0] is None:  # first interval: drop rows beyond the checkpoint resumed
          # (the one the driver read back: a damaged latest one is skipped)
          logs_written[0] = checkpoints.restored or 0
          log.keep(group.variants, logs_written[0])
        logs_written[0] += 1
        log.write(logs_written[0], env_steps, group.variants, seeds,
                  {k: np.reshape(v, (len(group.variants), len(seeds))) for k, v in m.items()
                   if k != "env_steps"})

      _, _, metrics = ALGORITHMS[config.algo].module.train(
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


def model_label(config: run_config.ExperimentConfig) -> str:
  """"standard" (the benchmark's model) or "equalized" (its asymmetries removed: an exactly
  symmetric MDP)."""
  return ("equalized" if run_config.algorithm_config(config).equalize_asymmetries
          else "standard")


def _json(x: np.ndarray) -> list:
  return np.where(np.isfinite(x), x, np.nan).tolist()  # NaN: no episode finished yet


def _kind(env_id: str) -> str | None:
  try:
    return registry.get(env_id).kind
  except registry.UnknownEnvironmentError:
    return None


# What an experiment writes into its run directory (and --force-new-config deletes).
RUN_FILES = ("results.json", "results.json.tmp", "peer.json", "peer.json.tmp", "peer.json.lock",
             "config.yaml", "metrics.jsonl", "metrics.csv", "tensorboard", "checkpoints")
# Settings that do not change the results may differ between a run and its resume.
DISPLAY_KEYS = ("progress", "tensorboard", "wandb", "wandb_mode", "wandb_project")


def check_run_dir(config: run_config.ExperimentConfig, run_dir: str | None = None, *,
                  force_new_config: bool = False) -> list[str]:
  """The settings (`key: old → new`) in which config differs from the run already in run_dir;
  run_config.ConfigError naming them, unless `force_new_config`. Reads only."""
  run_dir = run_dir or run_config.out_dir(config)
  changed = _changed_settings(run_dir, config)
  if changed and not force_new_config:
    raise run_config.ConfigError(
        f"{run_dir} holds a run with another configuration ({', '.join(changed)}); rerun with "
        "the same settings to resume it, use another out_dir / --out-dir, or pass "
        "--force-new-config to delete that run and start this one")
  return changed


def _changed_settings(run_dir: str, config: run_config.ExperimentConfig) -> list[str]:
  """`key: old → new` for each setting of config that differs from the run already in
  run_dir (none when there is none). A run directory holds one experiment: resuming or
  reporting with other settings would mix runs or show results of settings not asked for."""
  path = os.path.join(run_dir, "config.yaml")
  if not os.path.exists(path):
    return []
  try:
    saved = _flat(OmegaConf.to_container(OmegaConf.load(path)))
  except (OmegaConfBaseException, OSError, ValueError) as error:
    raise run_config.ConfigError(f"{path} cannot be read ({error}); use another out_dir or "
                                 "delete that directory") from None
  # Through the same YAML as the saved file, so that e.g. tuples and lists compare equal.
  wanted = _flat(OmegaConf.to_container(OmegaConf.create(run_config.to_yaml(config))))
  missing = "(absent)"
  return [f"{key}: {saved.get(key, missing)} → {wanted.get(key, missing)}"
          for key in sorted(set(saved) | set(wanted))
          if key not in DISPLAY_KEYS and saved.get(key, missing) != wanted.get(key, missing)]


def _flat(tree, prefix: str = "") -> dict:
  if not isinstance(tree, dict):
    return {prefix.rstrip("."): tree}
  out = {}
  for key, value in tree.items():
    out.update(_flat(value, f"{prefix}{key}."))
  return out


def _guard_writes(run_dir: str, fn, *args) -> None:
  try:
    fn(*args)
  except OSError as error:
    raise RunDirectoryError(f"cannot write the run directory {run_dir}: "
                            f"{error.strerror or error}"
                            + (f" ({error.filename})" if error.filename else "")) from None


def _write_config(run_dir: str, config: run_config.ExperimentConfig) -> None:
  os.makedirs(run_dir, exist_ok=True)
  with open(os.path.join(run_dir, "config.yaml"), "w", encoding="utf-8") as f:
    f.write(run_config.to_yaml(config))


def _delete_run(run_dir: str) -> None:
  """Only what an experiment writes: the directory may hold other files of the user's."""
  for name in RUN_FILES:
    path = os.path.join(run_dir, name)
    if os.path.isdir(path):
      shutil.rmtree(path)
    elif os.path.exists(path):
      os.remove(path)


def load_results(run_dir: str) -> dict:
  """results.json, with the peer's (`run.peer`, peer.json) under "peer" when there is one."""
  with open(os.path.join(run_dir, "results.json"), encoding="utf-8") as f:
    results = json.load(f)
  peer = load_peer(run_dir)
  if peer is not None:
    results["peer"] = peer
  return results


PEER_FILE = "peer.json"  # brax.training on the run's settings (reflex_jax.run.peer)


def load_peer(run_dir: str) -> dict | None:
  path = os.path.join(run_dir, PEER_FILE)
  if not os.path.exists(path):
    return None
  with open(path, encoding="utf-8") as f:
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
  sim, trainer = ALGORITHMS[config.algo].module.make_trainer(config.env, group.algorithm_config)
  params = load_params(run_dir, group, config, trainer)
  run = group.variants.index(variant) * len(seeds) + seeds.index(seed)
  run_params = jax.tree.map(lambda x: x[run], params)
  return driver.make_policy(trainer.net)(run_params, deterministic=True), sim


def load_params(run_dir: str, group: run_config.VariantGroup,
                config: run_config.ExperimentConfig, trainer=None):
  """The parameters of every run of `group` ([runs, ...] leaves) at its latest checkpoint.
  `trainer`: the group's Trainer when the caller has built it already."""
  if trainer is None:
    _, trainer = ALGORITHMS[config.algo].module.make_trainer(config.env, group.algorithm_config)
  weights = group.weights if group.algorithm_config.reflex is not None else None
  grid = driver.RunGrid.create(config.seed_list, list(weights) if weights else None,
                               group.algorithm_config.reflex, config.algo.upper())
  abstract = jax.eval_shape(jax.vmap(trainer.init), grid.keys, grid.weights)
  checkpoints = RunCheckpoints(os.path.join(run_dir, "checkpoints", group.name))
  if checkpoints.latest() is None:
    raise FileNotFoundError(f"no checkpoint for {group.name} in {run_dir}")
  state, _, _ = checkpoints.restore(abstract)
  checkpoints.close()
  return state.params


__all__ = ["RunDirectoryError", "check_run_dir", "load_params", "load_peer", "load_policy",
           "load_results", "run_experiment"]
