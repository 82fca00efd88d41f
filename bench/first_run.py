"""The first-run cost of a training call: compiling `init`, the training chunk and the final
evaluation, each timed on its own (trace, lower and compile; for init the compile alone), for PPO and SAC on the README's
quick-start settings. A new user waits for all of it: before the first step, and (before
this was changed) again for the evaluation's compile after training.

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
  """Seconds to compile each program of `runs` runs (half plain, half Reflex) of the README's
  quick-start config of `algo`, and the wait before the first training step both ways:
  `before_s` (init compiled with full optimization, then the chunk, the evaluation compiled
  after training) and `after_s` (as `train` does now: init at -O0 on CPU, the evaluation
  compiled beside the chunk)."""
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
  policy = driver.make_policy(trainer.net)
  row = dict(env=env_id, algo=algo, runs=len(grid.seeds))
  # init: the compile alone (its trace and lowering, the same both ways, are left out)
  init = jax.jit(jax.vmap(trainer.init)).lower(grid.keys, grid.weights)
  jax.clear_caches()
  row["init_O2_s"] = _timed(init.compile)
  options = driver.RUN_ONCE_COMPILER_OPTIONS.get(jax.default_backend())
  row["init_O0_s"] = _timed(lambda: init.compile(compiler_options=options))
  state = driver.run_once(jax.vmap(trainer.init), grid.keys, grid.weights)
  if algo == "sac":  # the prefill is its own compiled call before the first chunk
    prefill = jax.jit(jax.vmap(trainer.prefill))
    row["prefill_s"] = _timed(lambda: prefill.lower(state).compile())
  chunk = jax.jit(jax.vmap(trainer.train_chunk), donate_argnums=0)
  row["chunk_s"] = _timed(lambda: chunk.lower(state).compile())
  jax.clear_caches()
  evaluation = driver.FinalEvaluation(sim, config, policy, grid)
  row["eval_s"] = _timed(lambda: (evaluation.compile_in_background(state.params),
                                  evaluation.wait_compiled()))
  jax.clear_caches()

  def together():  # as driver.drive does it
    evaluation = driver.FinalEvaluation(sim, config, policy, grid)
    evaluation.compile_in_background(state.params)
    jax.jit(jax.vmap(trainer.train_chunk), donate_argnums=0).lower(state).compile()
    evaluation.wait_compiled()
  row["chunk_and_eval_s"] = _timed(together)
  before = row["init_O2_s"] + row.get("prefill_s", 0.0) + row["chunk_s"] + row["eval_s"]
  row["before_s"] = before
  row["after_s"] = row["init_O0_s"] + row.get("prefill_s", 0.0) + row["chunk_and_eval_s"]
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
