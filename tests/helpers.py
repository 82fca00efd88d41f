"""Shared test helpers: chex assertions, with/without-jit variants, killing a run."""

import os
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
