"""HRM-Text in JAX/Flax NNX: model/ (architectures, Hugging Face format), data/ (sources,
tokenizers, packing), train/ (loop, optimizer, sharding, checkpoints), generate.py (KV-cached
decoding) and eval/ (the paper's benchmarks)."""

import importlib.util as _importlib_util

# The [lm] extra's modules (pyproject.toml; tests/test_dependencies.py keeps the two equal).
EXTRA, REQUIRES = "lm", ("grain", "array_record", "pyarrow", "tokenizers", "safetensors",
                         "math_verify")
_missing = [m for m in REQUIRES if _importlib_util.find_spec(m) is None]
if _missing:
  raise ImportError(f"hrm_jax needs {', '.join(_missing)}, which this environment lacks: "
                    "install the HRM-Text half with  pip install 'reflex-hrm-jax[lm]'")
