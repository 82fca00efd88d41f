"""`python -m reflex_jax.train key=value ...`: see reflex_jax/run/cli.py."""

import sys

from reflex_jax.run.cli import main

if __name__ == "__main__":
  sys.exit(main())
