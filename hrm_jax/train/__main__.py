"""`python -m hrm_jax.train [--config FILE ...] [key=value ...]`: train HRM-Text.

Running the same command again continues from the last checkpoint in `log.dir`. A changed
config is refused (the differing keys are listed), except log.* (but log.checkpoint_dir),
schedule.steps and mesh.*; --allow-config-change continues with other changes (learning
rate, data, ...), never with another model shape. Multi-host:
`python -m tpu_gpu_launch.distributed hrm_jax.train ...` on every host.
"""

from __future__ import annotations

import argparse
import logging
import sys

from hrm_jax.train.config import ConfigError, help_text, load_config, to_yaml


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(
      prog="python -m hrm_jax.train", formatter_class=argparse.RawDescriptionHelpFormatter,
      description="Train HRM-Text on instruction-response data (default: the built-in "
                  "generator, no download). Re-running the same command resumes.",
      epilog="Every key below can be set as key=value (e.g. data.seq_len=512 "
             "model.preset=B model.remat=full optimizer.learning_rate=1e-4), shown with its "
             "default, what it sets and its choices:\n\n" + help_text())
  parser.add_argument("--config", action="append", default=[], metavar="FILE",
                      help="YAML config (e.g. experiments/hrm/tiny.yaml); later files win")
  parser.add_argument("--print-config", action="store_true",
                      help="print the merged config and exit")
  parser.add_argument("--allow-config-change", action="store_true",
                      help="resume a run in log.dir although its config.yaml differs from this "
                           "config (not for model shape changes)")
  parser.add_argument("overrides", nargs="*", metavar="key=value")
  args = parser.parse_intermixed_args(argv)
  try:
    config = load_config(args.config, args.overrides)
  except (ConfigError, FileNotFoundError) as error:
    parser.exit(2, f"config error: {error}\n")
  if args.print_config:
    print(to_yaml(config))
    return 0
  logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s: %(message)s",
                      force=True)  # absl has already installed a root handler
  logging.getLogger("hrm_jax").setLevel(logging.INFO)
  from hrm_jax.train.checkpoint import CheckpointError
  from hrm_jax.train.loop import train
  try:
    result = train(config, allow_config_change=args.allow_config_change)
  except ConfigError as error:  # found before the first step: nothing was written
    parser.exit(2, f"config error: {error}\n")
  except CheckpointError as error:
    parser.exit(2, f"checkpoint error: {error}\n")
  last = result.history[-1] if result.history else {}
  print(f"finished at step {int(result.state.step)}; last metrics: {last}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
