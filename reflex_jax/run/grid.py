"""The grid runner: tasks × algorithms, each cell an experiment (variants × seeds vmapped in
one program), then the report.

    python -m reflex_jax.run.grid --config experiments/reflex/grid_cpu.yaml
    python -m reflex_jax.run.grid --config experiments/reflex/grid_cpu.yaml out_dir=runs/g2

Rerunning resumes the grid: finished cells (results.json) are skipped, an interrupted cell
continues from its checkpoints. `--shard i/n` runs cells i, i+n, i+2n, … so n machines (or n
GPUs, one process each) share a grid; `python -m reflex_jax.run.report OUT_DIR` then writes the
report of all of them. The grid file:

    out_dir: runs/grid
    base: [brax_defaults.yaml]                         # experiment YAMLs under every cell
                                                       #   (paths relative to this file)
    envs: [brax/inverted_double_pendulum, brax/walker2d]
    algos: [ppo, sac]                                  # cells: every env × every algo, or
                                                       # cells: [brax/ant/ppo, brax/walker2d/sac]
    common: {seeds: 5, variants: [baseline, reflex]}   # experiment keys for every cell
    overrides:                                         # merged in this order when they match:
      ppo: {steps: 300000}                             #   the algorithm,
      brax/walker2d: {ppo: {num_envs: 32}}             #   the task,
      brax/walker2d/sac: {steps: 10000}                #   the cell
    peer_seeds: 3      # also brax.training on each cell's settings (run.peer), 3 seeds
"""

from __future__ import annotations

import argparse
import os
import sys

from omegaconf import OmegaConf
from omegaconf.errors import OmegaConfBaseException

from reflex_jax import envs
from reflex_jax.algorithms import ALGORITHMS
from reflex_jax.run import config as run_config
from reflex_jax.run.cli import report_errors
from reflex_jax.run.experiment import check_run_dir, model_label, run_experiment
from reflex_jax.run.peer import peer_kwargs, run_peer
from reflex_jax.run.report import write_report
from runkit.config import parse_shard  # the --shard syntax, shared with hrm_jax.compare

GRID_KEYS = ("out_dir", "base", "envs", "algos", "cells", "common", "overrides", "peer_seeds")


def cell_dir(out_dir: str, env: str, algo: str) -> str:
  return os.path.join(out_dir, env.replace("/", "_"), algo)


def _read(path: str, overrides=()) -> dict:
  try:
    grid = OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(list(overrides)))
    grid = OmegaConf.to_container(grid, resolve=True)
  except (OmegaConfBaseException, OSError) as error:
    raise run_config.ConfigError(f"{path}: {error}") from None
  unknown = sorted(set(grid) - set(GRID_KEYS))
  if unknown:
    raise run_config.ConfigError(f"{path}: unknown grid keys {unknown}; valid: {list(GRID_KEYS)}")
  peers = grid.get("peer_seeds", 0)
  if not isinstance(peers, int) or peers < 0:
    raise run_config.ConfigError(f"{path}: peer_seeds must be a count ≥ 0, got {peers!r}")
  return grid


def peer_seeds(path: str, overrides=()) -> int:
  """The grid's `peer_seeds`: brax.training seeds per cell after ours (0: none)."""
  return _read(path, overrides).get("peer_seeds", 0)


def load_grid(path: str, overrides=()) -> tuple[str, list[run_config.ExperimentConfig]]:
  """(out_dir, one validated ExperimentConfig per cell); any bad key fails before a run starts."""
  grid = _read(path, overrides)
  if grid.get("cells"):
    if grid.get("envs") or grid.get("algos"):
      raise run_config.ConfigError(f"{path}: give either cells or envs and algos, not both")
    cells = [tuple(c.rsplit("/", 1)) for c in grid["cells"]]
    bad = [c for c, cell in zip(grid["cells"], cells) if len(cell) != 2 or "/" not in cell[0]]
    if bad:
      raise run_config.ConfigError(f"{path}: cells {bad} are not simulator/task/algo")
  else:
    missing = [k for k in ("envs", "algos") if not grid.get(k)]
    if missing:
      raise run_config.ConfigError(f"{path}: the grid needs {missing} (or cells)")
    cells = [(env, algo) for env in grid["envs"] for algo in grid["algos"]]
  out_dir = grid.get("out_dir", "runs/grid")
  layers = grid.get("overrides") or {}
  # Overrides may name cells that a command line's `cells=[...]` left out, but each must name
  # a registered algorithm, task or task/algorithm (a misspelt one would apply to nothing).
  stray = sorted(k for k in layers if not (
      k in ALGORITHMS or envs.is_known(k)
      or (k.count("/") >= 2 and envs.is_known(k.rsplit("/", 1)[0])
          and k.rsplit("/", 1)[1] in ALGORITHMS)))
  if stray:
    raise run_config.ConfigError(f"{path}: overrides for {stray} match no algorithm, task or "
                                 "task/algorithm")
  base = [os.path.join(os.path.dirname(os.path.abspath(path)), f) for f in grid.get("base", [])]
  missing = [f for f in base if not os.path.exists(f)]
  if missing:
    raise run_config.ConfigError(f"{path}: base files {missing} do not exist")
  configs = []
  for env, algo in cells:
    matching = [layers[k] for k in (algo, env, f"{env}/{algo}") if k in layers]
    cell = {"env": env, "algo": algo, "out_dir": cell_dir(out_dir, env, algo)}
    try:
      configs.append(run_config.load_config(
          base, layers=[grid.get("common") or {}, *matching, cell]))
    except run_config.ConfigError as error:
      raise run_config.ConfigError(f"{path}, cell {env} × {algo}: {error}") from None
  return out_dir, configs


def run_grid(out_dir: str, configs: list[run_config.ExperimentConfig],
             shard: tuple[int, int] = (0, 1), *, force_new_config: bool = False,
             peers: int = 0) -> str:
  """Runs every unfinished cell of this shard, then writes the report (of the whole grid when
  there is one shard); returns its markdown. `force_new_config`: a cell directory holding a
  run with other settings is deleted and rerun (otherwise that is an error). `peers`: also
  brax.training with that many seeds on each cell on brax's own (standard) model."""
  index, count = shard
  mine = configs[index::count]
  for config in mine:  # a cell with changed settings is refused before any cell runs
    check_run_dir(config, force_new_config=force_new_config)
    if peers and model_label(config) == "standard":
      peer_kwargs(config)  # settings brax.training cannot take are refused now too
  for i, config in enumerate(mine):
    print(f"[{i + 1}/{len(mine)}] {config.env} × {config.algo}", file=sys.stderr, flush=True)
    run_experiment(config, force_new_config=force_new_config)
    if peers and model_label(config) == "standard":
      run_peer(config.out_dir, peers)
  if count > 1:
    return (f"shard {index}/{count} done ({len(mine)} of {len(configs)} cells); once every "
            f"shard is: python -m reflex_jax.run.report {out_dir}")
  return write_report([c.out_dir for c in configs], out_dir)


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m reflex_jax.run.grid", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", required=True, help="the grid YAML file")
  parser.add_argument("--shard", default="0/1", metavar="i/n",
                      help="run only cells i, i+n, … (one of n machines sharing the grid)")
  parser.add_argument("overrides", nargs="*", metavar="key=value",
                      help="grid-level overrides, e.g. out_dir=runs/g2 common.seeds=3")
  parser.add_argument("--force-new-config", action="store_true",
                      help="rerun cells whose directory holds a run with other settings, "
                      "deleting it (default: refuse)")
  args = parser.parse_args(argv)
  try:
    out_dir, configs = load_grid(args.config, args.overrides)
    shard = parse_shard(args.shard)
  except run_config.ConfigError as error:
    parser.error(str(error))
  return report_errors(lambda: print(run_grid(
      out_dir, configs, shard, force_new_config=args.force_new_config,
      peers=peer_seeds(args.config, args.overrides))))


if __name__ == "__main__":
  sys.exit(main())
