"""`python -m reflex_jax.train`: one experiment from YAML configs and key=value overrides.

    python -m reflex_jax.train                                   # IDP, PPO, baseline vs reflex, 5 seeds
    python -m reflex_jax.train env=brax/ant algo=ppo reflex.weight=0.1 seeds=8
    python -m reflex_jax.train --config experiments/reflex/walker2d_sac.yaml steps=50000
    python -m reflex_jax.train --print-config algo=sac           # every key and its value

Variants (`variants=[baseline,reflex,augment]`): baseline, reflex, reflex_kl,
reflex_actor_only, reflex_critic_only, augment, reflex_augment, symmetrize. Algorithm settings live under
`ppo.*` / `sac.*` (e.g. ppo.num_envs=256 sac.grad_updates_per_step=16).
Killing a run and starting the same command again resumes from the last checkpoint (or,
when it finished, prints its results). A run directory that holds another configuration is
refused, naming the keys that differ; `--force-new-config` deletes that run and starts anew.
Step budgets are rounded up to whole iterations in every logging interval: by at most 10 %
with a note, more is refused. Exit status: 0 done, 1 training stopped (NaN/inf), 2 a bad
command, config or run directory, or no checkpoint that reads back.
"""

from __future__ import annotations

import argparse
import sys

from reflex_jax import driver
from reflex_jax.run import config as run_config
from reflex_jax.run.experiment import run_experiment
from reflex_jax.run.report import format_experiment
from runkit.checkpoints import CheckpointError


def main(argv: list[str] | None = None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m reflex_jax.train", description=__doc__,
      formatter_class=argparse.RawDescriptionHelpFormatter,
      epilog="Every key, shown with its default, what it sets and its choices (env: the tasks "
             "with a registered reflection; any registered task trains as a baseline):\n\n"
             + run_config.help_text())
  parser.add_argument("--config", action="append", default=[],
                      help="YAML file(s), merged in order (e.g. experiments/reflex/*.yaml)")
  parser.add_argument("--print-config", action="store_true",
                      help="print the resolved configuration and exit")
  parser.add_argument("--out-dir", default=None, help="run directory (default: out_dir key)")
  parser.add_argument("--force-new-config", action="store_true",
                      help="when the run directory holds a run with another configuration, "
                      "delete it and start this one (default: refuse)")
  parser.add_argument("overrides", nargs="*", metavar="key=value")
  args = parser.parse_args(argv)
  try:
    config = run_config.load_config(args.config, args.overrides)
  except (run_config.ConfigError, FileNotFoundError) as error:
    parser.error(str(error))
  if args.print_config:
    print(run_config.to_yaml(config))
    return 0
  return report_errors(lambda: print(format_experiment(
      run_experiment(config, args.out_dir, force_new_config=args.force_new_config))))


def report_errors(fn) -> int:
  """Runs fn(); a failure the user can act on is one `error: ...` line and an exit status
  (1: training stopped at a NaN/inf; 2: a refused config, an unwritable run directory, or
  checkpoints none of which reads back)."""
  try:
    fn()
  except driver.NonFiniteError as error:
    print(f"error: {error}", file=sys.stderr)
    return 1
  except (run_config.ConfigError, CheckpointError, OSError) as error:
    print(f"error: {error}", file=sys.stderr)
    return 2
  return 0
