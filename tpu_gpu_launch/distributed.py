"""Run a module as one process of a multi-host JAX job: `jax.distributed.initialize()` first,
then the module as `python -m MODULE ARGS...` would run it.

    python -m tpu_gpu_launch.distributed hrm_jax.train --config experiments/hrm/XL.yaml ...

Where the process count and rank come from:
- SLURM (`srun`), Open MPI (`mpirun`) and Cloud TPU pods: detected by JAX, nothing to set.
- Anything else (plain SSH, a container per host): set on every host
    JAX_COORDINATOR_ADDRESS=<host 0's address>:<port>  JAX_NUM_PROCESSES=<N>  JAX_PROCESS_ID=<rank>
  (JAX reads the first itself; the other two are read here.)

Every process runs the same command; JAX splits the global arrays over all hosts' devices and
only process 0 writes logs and metrics (Orbax checkpoints are written by all, each its shards).
"""

from __future__ import annotations

import os
import runpy
import sys

USAGE = "usage: python -m tpu_gpu_launch.distributed MODULE [ARGS...]"


def initialize() -> None:
  """`jax.distributed.initialize` from JAX_NUM_PROCESSES / JAX_PROCESS_ID when set, else from
  what JAX detects (SLURM, Open MPI, Cloud TPU)."""
  import jax

  count, rank = os.environ.get("JAX_NUM_PROCESSES"), os.environ.get("JAX_PROCESS_ID")
  if (count is None) != (rank is None):
    raise SystemExit("set both JAX_NUM_PROCESSES and JAX_PROCESS_ID, or neither")
  try:
    if count is not None:
      if not os.environ.get("JAX_COORDINATOR_ADDRESS"):
        raise SystemExit("JAX_NUM_PROCESSES is set but JAX_COORDINATOR_ADDRESS (host:port of "
                         "process 0) is not")
      jax.distributed.initialize(num_processes=int(count), process_id=int(rank))
    else:
      jax.distributed.initialize()
  except ValueError as error:
    raise SystemExit(
        f"jax.distributed.initialize failed: {error}. Outside SLURM, Open MPI and Cloud TPU, set "
        "JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES and JAX_PROCESS_ID on every host.") from None
  print(f"[process {jax.process_index()}/{jax.process_count()}] {jax.local_device_count()} local "
        f"of {jax.device_count()} devices ({jax.devices()[0].device_kind})", file=sys.stderr,
        flush=True)


def main(argv=None) -> None:
  argv = sys.argv[1:] if argv is None else argv
  if not argv or argv[0] in ("-h", "--help"):
    print(USAGE + "\n\n" + __doc__)
    raise SystemExit(0 if argv else 2)
  module, args = argv[0], argv[1:]
  initialize()
  sys.argv = [module, *args]
  runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
  main()
