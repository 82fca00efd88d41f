"""Plain vs Reflex (PPO, SAC or another algorithm of algorithms.ALGORITHMS) on one task: all
seeds and both variants in one compiled program, then the plot and the table. The README's
main job.

    python -m reflex_jax.compare                                   # IDP, PPO, 4 seeds, ~3 min
    python -m reflex_jax.compare --env brax/ant --seeds 5 --steps 1000000
    python -m reflex_jax.compare --algo sac --env brax/inverted_double_pendulum --steps 30000

Writes runs/compare/<env>/<algo>/ (metrics, checkpoints, results.json) with curves.png,
curves.pdf and report.md beside them, and prints the table: per variant the deterministic
evaluation return and final training return (mean ± 95 % t-interval over seeds), the area
under the learning curve, the env steps to reach a return threshold, and the measured
symmetry errors of the final policy and critic. Rerunning the same command resumes (or, when
finished, just reports). For grids of tasks and more options: `python -m reflex_jax.train`
and `python -m reflex_jax.run.grid`.
"""

from __future__ import annotations

import argparse
import os
import sys

from reflex_jax.algorithms import ALGORITHMS
from reflex_jax.run import config as run_config
from reflex_jax.run.cli import report_errors
from reflex_jax.run.experiment import run_experiment
from reflex_jax.run.report import format_experiment, write_report
from reflex_jax.symmetry import registry

DEFAULT_ENV = "brax/inverted_double_pendulum"


def _defaults(field: str) -> str:
  """e.g. "64 for ppo, 16 for sac": each algorithm's experiment default of `field`."""
  return ", ".join(f"{getattr(entry.experiment_config(), field):,} for {name}"
                   for name, entry in ALGORITHMS.items())


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m reflex_jax.compare", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--algo", choices=tuple(ALGORITHMS), default="ppo")
  parser.add_argument("--env", default=DEFAULT_ENV, help="a task with a registered reflection: "
                      + ", ".join(registry.symmetric_env_ids()))
  parser.add_argument("--seeds", type=int, default=4)
  parser.add_argument("--steps", type=int, default=None,
                      help=f"env steps per run (default: {_defaults('num_timesteps')})")
  parser.add_argument("--num-envs", type=int, default=None,
                      help=f"parallel environments (default: {_defaults('num_envs')})")
  parser.add_argument("--weight", type=float, default=0.1, help="Reflex w0 (linear decay)")
  parser.add_argument("--threshold", type=float, default=None,
                      help="return threshold (default: 80%% of the way from the first logged "
                      "mean return to the best final mean return)")
  parser.add_argument("--logs", type=int, default=None,
                      help=f"logging intervals (default: {_defaults('num_logs')})")
  parser.add_argument("--out", default="runs/compare", help="where runs and reports go")
  parser.add_argument("--force-new-config", action="store_true",
                      help="when the run directory holds a run with other settings, delete it "
                      "and start this one (default: refuse)")
  args = parser.parse_args(argv)
  overrides = [f"env={args.env}", f"algo={args.algo}", f"seeds={args.seeds}",
               f"reflex.weight={args.weight}", "variants=[baseline,reflex]",
               f"out_dir={os.path.join(args.out, '{env}', '{algo}')}"]
  if args.steps is not None:
    overrides.append(f"steps={args.steps}")
    overrides += [f"{args.algo}.{key}={value}"
                  for key, value in ALGORITHMS[args.algo].compare_overrides(args.steps).items()]
  if args.num_envs is not None:
    overrides.append(f"{args.algo}.num_envs={args.num_envs}")
  if args.logs is not None:
    overrides.append(f"{args.algo}.num_logs={args.logs}")
  try:
    config = run_config.load_config([], overrides)
  except run_config.ConfigError as error:
    parser.error(str(error))
  run_dir = run_config.out_dir(config)
  results = {}

  def run():
    results.update(run_experiment(config, run_dir, force_new_config=args.force_new_config))
    write_report([run_dir], run_dir)

  status = report_errors(run)
  if status:
    return status
  print()
  print(format_experiment(results, args.threshold))
  timing = " ".join(f"compile {t['compile_seconds']:.0f}s, train {t['train_seconds']:.0f}s, "
                    f"{t['env_steps_per_second']:,.0f} env-steps/s over {2 * args.seeds} runs"
                    for t in results["timing"].values())
  print(f"\n{timing}\nplot and table: {os.path.join(run_dir, 'curves.png')}, "
        f"{os.path.join(run_dir, 'report.md')}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
