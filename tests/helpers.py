"""Shared test helpers: chex assertions, with/without-jit variants, killing a run, damaging a
checkpoint."""

import os
import pathlib
import signal
import subprocess
import time

import chex
import jax
import pytest

# Parametrize a test over the untransformed and the jitted function: `variant(fn)(...)`.
with_and_without_jit = pytest.mark.parametrize(
    "variant", [pytest.param(lambda fn: fn, id="nojit"), pytest.param(jax.jit, id="jit")])

assert_close = chex.assert_trees_all_close
assert_shape = chex.assert_shape


def xla_flags(devices: int | None) -> str:
  """The suite's XLA_FLAGS (tests/conftest.py) for a subprocess with `devices` CPU devices
  (None: one, as a user's machine has)."""
  flags = [f for f in os.environ.get("XLA_FLAGS", "").split()
           if not f.startswith("--xla_force_host_platform_device_count")]
  if devices is not None:
    flags.append(f"--xla_force_host_platform_device_count={devices}")
  return " ".join(flags)


def run_to_completion(command, *, env, cwd, timeout: float = 900):
  """Runs `command` to its end, asserting it succeeded; returns the CompletedProcess."""
  done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                        timeout=timeout, check=False)
  assert done.returncode == 0, done.stderr[-3000:]
  return done


def kill_at_checkpoint(command, checkpoints, first: int, last: int, *, env, cwd,
                       timeout: float = 900) -> None:
  """Starts `command` and SIGKILLs it as soon as a checkpoint numbered in [first, last)
  exists under the directory `checkpoints` (a pathlib.Path)."""
  process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
  deadline = time.time() + timeout
  while time.time() < deadline and process.poll() is None:
    done = [int(p.name) for p in checkpoints.glob("*") if p.name.isdigit()] \
        if checkpoints.exists() else []
    if any(first <= d < last for d in done):
      break
    time.sleep(0.02)
  assert process.poll() is None, "the run ended before it could be killed"
  os.kill(process.pid, signal.SIGKILL)
  process.wait()


def execute_notebook(path, cwd, env: dict, monkeypatch) -> list:
  """Executes the notebook at `path` (stored without outputs) in `cwd` with the environment
  variables `env` on CPU; asserts no cell failed and returns every code cell's outputs."""
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  for name, value in {"JAX_PLATFORMS": "cpu", "PYTHONPATH": root, **env}.items():
    monkeypatch.setenv(name, value)
  notebook = nbformat.read(path, as_version=4)
  assert notebook.metadata.kernelspec.name == "python3"
  assert not [c for c in notebook.cells if c.cell_type == "code" and c.outputs]  # stored clean
  nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                          resources={"metadata": {"path": str(cwd)}}).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  return outputs


def corrupt_arrays(step_dir) -> None:
  """Damages the array data of the Orbax checkpoint step in `step_dir` (the second half of
  each data file inverted): restoring it fails with TensorStore DATA_LOSS."""
  for path in pathlib.Path(step_dir, "state").rglob("*"):
    if path.is_file() and path.parent.name == "d":
      data = bytearray(path.read_bytes())
      data[len(data) // 2:] = bytes(255 - b for b in data[len(data) // 2:])
      path.write_bytes(bytes(data))
