"""The peer baseline: brax.training's PPO or SAC on a finished experiment's settings, so that a
Reflex gain is measured over a baseline as strong as the one the field uses.

    python -m reflex_jax.run.peer runs/bilateral/brax_ant/ppo --seeds 3

Reads RUN_DIR/config.yaml, runs brax.training on the same simulator and budget with the
settings mapped by `reflex_jax.peer` (seeds first_seed, first_seed+1, …, one after another:
brax.training runs one seed per call), evaluating deterministically at each of our logging
intervals, and writes RUN_DIR/peer.json (after every seed: a rerun resumes). The report
(`reflex_jax.run.report`) then adds a brax.training row to that experiment's table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import filelock

from reflex_jax import envs, peer
from reflex_jax.run import config as run_config
from reflex_jax.run.cli import report_errors
from reflex_jax.run.experiment import PEER_FILE, load_peer

# brax's published unroll_length u per task (docs/reflex_published_hparams.md); ours is
# k·u, and the peer runs u with k = ours/u consecutive unrolls per update.
PUBLISHED_UNROLL = {
    "brax/inverted_pendulum": 5, "brax/inverted_double_pendulum": 5, "brax/ant": 5,
    "brax/humanoid": 10, "brax/humanoidstandup": 15,
    **{f"playground/{t}": 30 for t in ("WalkerWalk", "WalkerRun", "HumanoidWalk",
                                       "HumanoidStand", "CartpoleBalance")},
}


def peer_kwargs(config: run_config.ExperimentConfig) -> dict:
  """brax.training's arguments for the experiment's algorithm section and budget;
  ConfigError, naming the cell, for settings brax.training cannot run."""
  section = run_config.algorithm_config(config)
  try:
    if config.algo == "ppo":
      unroll = PUBLISHED_UNROLL.get(config.env)
      if section.advantage_estimator == "brax":  # brax's segments are its unrolls
        unroll = section.segment_length
      elif unroll is None or section.unroll_length % unroll:
        unroll = section.unroll_length
      kwargs = peer.ppo_kwargs(section, unroll)
    elif config.algo == "sac":
      kwargs = peer.sac_kwargs(section)
    else:
      raise ValueError(f"no brax.training peer for algo {config.algo!r}")
  except ValueError as error:
    raise run_config.ConfigError(f"{config.env} × {config.algo}, peer: {error}") from None
  if section.equalize_asymmetries:
    raise run_config.ConfigError("the peer runs brax's own model: equalize_asymmetries=false")
  kwargs["num_evals"] = section.num_logs + 1  # an evaluation at start and after each interval
  return kwargs


def run_peer(run_dir: str, seeds: int = 3) -> dict | None:
  """brax.training for `seeds` seeds on RUN_DIR's experiment; the peer.json dict (None when
  another process holds RUN_DIR's peer lock: it is running them)."""
  # An OS file lock: it dies with its holder, so a killed run leaves nothing to clean up.
  lock = filelock.FileLock(os.path.join(run_dir, PEER_FILE + ".lock"))
  try:
    lock.acquire(timeout=0)
  except filelock.Timeout:
    print(f"{run_dir}: another process runs the peer (it holds {lock.lock_file}); skipped",
          file=sys.stderr)
    return None
  try:
    return _run_peer(run_dir, seeds)
  finally:
    lock.release()


def _run_peer(run_dir: str, seeds: int) -> dict:
  config = run_config.from_yaml(os.path.join(run_dir, "config.yaml"))
  kwargs = peer_kwargs(config)
  done = load_peer(run_dir) or {}
  if done and done.get("kwargs") != _describe(kwargs):
    raise run_config.ConfigError(f"{run_dir}/{PEER_FILE} holds a peer run with other "
                                 "settings; delete it to rerun")
  result = done or {"peer": "brax.training", "env": config.env, "algo": config.algo,
                    "kwargs": _describe(kwargs), "seeds": [], "env_steps": [], "curves": [],
                    "final": [], "seconds": []}
  sim = envs.make_simulator(config.env)
  for seed in config.seed_list[:seeds]:
    if seed in result["seeds"]:
      continue
    print(f"{run_dir}: brax.training {config.algo} seed {seed}", file=sys.stderr, flush=True)
    steps, returns = [], []

    def progress(step, metrics, steps=steps, returns=returns):
      if "eval/episode_reward" in metrics:
        steps.append(int(step))
        returns.append(float(metrics["eval/episode_reward"]))
    start = time.perf_counter()
    peer.train(sim, config.algo, kwargs, seed, progress)
    result["seeds"].append(seed)
    result["env_steps"] = steps
    result["curves"].append(returns)
    result["final"].append(returns[-1])
    result["seconds"].append(time.perf_counter() - start)
    with open(os.path.join(run_dir, PEER_FILE + ".tmp"), "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)
    os.replace(os.path.join(run_dir, PEER_FILE + ".tmp"), os.path.join(run_dir, PEER_FILE))
  return result


def _describe(kwargs: dict) -> dict:
  """The settings as JSON (the network factory by its arguments)."""
  out = {k: v for k, v in kwargs.items() if k != "network_factory"}
  factory = kwargs.get("network_factory")
  if factory is not None:
    out["network"] = {k: getattr(v, "__name__", v) if callable(v) else list(v)
                      if isinstance(v, tuple) else v for k, v in factory.keywords.items()}
  return json.loads(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m reflex_jax.run.peer", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("run_dir", help="a run directory with config.yaml")
  parser.add_argument("--seeds", type=int, default=3, help="brax.training seeds (default 3)")
  args = parser.parse_args(argv)
  if not os.path.exists(os.path.join(args.run_dir, "config.yaml")):
    parser.error(f"{args.run_dir}: no config.yaml (not a run directory)")
  if args.seeds < 1:
    parser.error("--seeds must be positive")
  def run():
    result = run_peer(args.run_dir, args.seeds)
    if result is not None:
      print(json.dumps({k: result[k] for k in ("env", "algo", "seeds", "final")}))
  return report_errors(run)


if __name__ == "__main__":
  sys.exit(main())
