"""`python -m reflex_jax.verify <env-id|all>`: see reflex_jax.symmetry.verify."""

import sys

from reflex_jax.symmetry.verify import main

if __name__ == "__main__":
  sys.exit(main())
