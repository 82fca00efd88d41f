import importlib.metadata
import os
import shutil
import tempfile

# Set before jax initializes. Tests that check sharding use 8 host devices. The tests' programs
# are tiny, so XLA compilation is most of the suite's time: LLVM at -O0 compiles them ~25 %
# faster (measured on test_sac.py and test_generate.py) and runs them about as fast.
_FLAGS = {"--xla_force_host_platform_device_count": "8", "--xla_backend_optimization_level": "0"}
# jaxlib 0.9 (the CPU pin) can still emit fusions the older way, which compiles the suite's
# programs faster (SAC's learning test 31 s → 26 s); later jaxlibs dropped the flag, and XLA
# aborts on a flag it does not know.
if importlib.metadata.version("jaxlib").startswith("0.9."):
  _FLAGS["--xla_cpu_use_fusion_emitters"] = "false"
os.environ["XLA_FLAGS"] = " ".join(
    [os.environ.get("XLA_FLAGS", "")]
    + [f"{flag}={value}" for flag, value in _FLAGS.items()
       if flag not in os.environ.get("XLA_FLAGS", "")]).strip()

# One JAX persistent compilation cache for the whole session, made by the first process that
# loads this file (pytest, or xdist's controller): the workers and the CLI processes the
# tests start inherit it through the environment, so a program that several tests, workers
# or processes build anew (each `train()` call jits fresh closures) compiles once. Set
# JAX_COMPILATION_CACHE_DIR yourself to keep a cache between sessions.
_SESSION_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
  _SESSION_CACHE = tempfile.mkdtemp(prefix="jax_test_cache_")
  os.environ["JAX_COMPILATION_CACHE_DIR"] = _SESSION_CACHE
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")


def pytest_unconfigure(config):
  del config
  if _SESSION_CACHE is not None:
    shutil.rmtree(_SESSION_CACHE, ignore_errors=True)


def pytest_collection_modifyitems(items):
  # The `long` tests go first: xdist's workers then spend the end of the session on short
  # tests, and neither waits for a long one the other started last. The sort is stable, so
  # each worker still collects the same order.
  items.sort(key=lambda item: item.get_closest_marker("long") is None)
