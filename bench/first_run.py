"""The first-run cost of a training call: compiling `init`, the training chunk and the final
evaluation, each timed on its own (lower + compile), for PPO and SAC on the README's
quick-start settings. A new user waits for all of it before the first step.

    .venv/bin/python bench/first_run.py                       # the README quick-starts
    .venv/bin/python bench/first_run.py --envs brax/walker2d --algos ppo --runs 8
    .venv/bin/python bench/first_run.py --json bench/results/cpu_first_run.json

Each row compiles from scratch: JAX's in-memory cache is cleared and the persistent cache is
off, so a second row of the same program is not a cache hit.
"""

from __future__ import annotations

import argparse
import json
import time

import jax

from reflex_jax import driver, ppo, sac


def _timed(fn) -> float:
  t0 = time.perf_counter()
  fn()
  return time.perf_counter() - t0


def measure(env_id: str, algo: str, runs: int) -> dict:
  """Seconds to compile init, one training chunk and the final evaluation for `runs` runs
  (half plain, half Reflex) of the README's quick-start config of `algo`."""
  jax.clear_caches()
  if algo == "ppo":
    module = ppo
    config = ppo.PPOConfig(num_timesteps=300_000, num_envs=64, reflex=ppo.ReflexConfig())
  else:
    module = sac
    config = sac.SACConfig(num_timesteps=30_000, num_envs=16, learning_starts=5_000,
                           reflex=sac.ReflexConfig())
  seeds = list(range(max(1, runs // 2)))
  grid = driver.RunGrid.create(seeds, [0.0, 0.1], config.reflex, algo.upper())
  sim, trainer = module.make_trainer(env_id, config, regularize=grid.regularize)
  init = jax.jit(jax.vmap(trainer.init))
  row = dict(env=env_id, algo=algo, runs=len(grid.seeds))
  row["init_s"] = _timed(lambda: init.lower(grid.keys, grid.weights).compile())
  state = init(grid.keys, grid.weights)
  if algo == "sac":  # the prefill is its own compiled call before the first chunk
    prefill = jax.jit(jax.vmap(trainer.prefill))
    row["prefill_s"] = _timed(lambda: prefill.lower(state).compile())
  chunk = jax.jit(jax.vmap(trainer.train_chunk), donate_argnums=0)
  row["chunk_s"] = _timed(lambda: chunk.lower(state).compile())
  policy = driver.make_policy(trainer.net)
  # compile + one evaluation episode per env (the evaluation is one compiled call)
  row["eval_s"] = _timed(lambda: driver.final_evaluation(sim, config, policy, state.params, grid))
  row["total_s"] = sum(v for k, v in row.items() if k.endswith("_s"))
  return row


def main(argv=None):
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("--envs", nargs="+", default=["brax/inverted_double_pendulum", "brax/walker2d"])
  p.add_argument("--algos", nargs="+", default=["ppo", "sac"], choices=["ppo", "sac"])
  p.add_argument("--runs", type=int, default=8, help="runs vmapped (half plain, half Reflex)")
  p.add_argument("--json", help="write the rows here")
  args = p.parse_args(argv)
  jax.config.update("jax_enable_compilation_cache", False)
  rows = []
  for env_id in args.envs:
    for algo in args.algos:
      row = measure(env_id, algo, args.runs)
      rows.append(row)
      print(" ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                     for k, v in row.items()), flush=True)
  if args.json:
    with open(args.json, "w") as f:
      json.dump(dict(backend=jax.default_backend(), jax=jax.__version__, rows=rows), f, indent=1)


if __name__ == "__main__":
  main()
