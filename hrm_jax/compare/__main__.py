"""`python -m hrm_jax.compare --config experiments/hrm/compare_cpu.yaml [key=value ...]`:
HRM against Transformer, UT, TRM and RINS at matched training FLOPs (or parameters), seeds
vmapped, on the built-in generator's tasks; then the report in `out_dir`.

Rerunning the same command resumes: finished cells are read back, an interrupted cell
continues from its last evaluation. `--shard i/n` runs cells i, i + n, … (n processes or
machines sharing a study, e.g. one per CPU core); `python -m hrm_jax.compare.report OUT_DIR`
then writes the report of all of them.
"""

from __future__ import annotations

import argparse
import os
import sys

from runkit.config import parse_shard
from runkit.errors import ConfigError


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m hrm_jax.compare", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--config", action="append", default=[], metavar="FILE",
                      help="YAML config (e.g. experiments/hrm/compare_cpu.yaml); later win")
  parser.add_argument("--shard", default="0/1", metavar="i/n",
                      help="run only cells i, i+n, … of the study")
  parser.add_argument("--plan", action="store_true",
                      help="print each architecture's parameters, steps and FLOPs, and exit")
  parser.add_argument("--no-progress", action="store_true", help="no progress bar")
  parser.add_argument("overrides", nargs="*", metavar="key=value")
  args = parser.parse_intermixed_args(argv)
  from hrm_jax.compare import config as config_lib  # pylint: disable=import-outside-toplevel
  try:
    config = config_lib.load_config(args.config, args.overrides)
    index, count = parse_shard(args.shard)
  except (ConfigError, FileNotFoundError) as error:
    parser.exit(2, f"config error: {error}\n")
  from hrm_jax.compare import report, study  # pylint: disable=import-outside-toplevel
  if args.plan:
    print(study.describe(config))
    return 0
  os.makedirs(config.out_dir, exist_ok=True)
  print(study.describe(config), file=sys.stderr, flush=True)
  try:
    study.run_study(config, (index, count), progress=not args.no_progress)
  except ConfigError as error:
    parser.exit(2, f"config error: {error}\n")
  if count > 1:
    print(f"shard {index}/{count} done; once every shard is: python -m hrm_jax.compare.report "
          f"{config.out_dir}")
    return 0
  print(report.write_report(config.out_dir, config.threshold))
  return 0


if __name__ == "__main__":
  sys.exit(main())
