"""bench/accelerator.py on CPU: it says it has no accelerator, runs the sections it is given in
their own processes, skips those its budget cannot hold and stops one that overruns, and
writes a JSON summary and a markdown table of positive, finite rates.

The RL sections compile MJX physics and PPO/SAC several times (minutes on 2 cores): the fast
tests run the HRM-Text sections for real and check the RL reporting on a stated summary; the
slow test runs every section for real at the smallest sizes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from tests.helpers import xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "accelerator.py")
TINY_HRM = ["--seq-len", "64", "--rows", "2", "--hrm-steps", "1", "--hrm-repeats", "1",
            "--matmul-n", "256"]


def run_cpu(tmp_path, *flags) -> tuple[dict, str]:
  out, md = tmp_path / "summary.json", tmp_path / "summary.md"
  # one CPU device, as a user's machine has (conftest sets 8)
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT, "XLA_FLAGS": xla_flags(None)}
  proc = subprocess.run([sys.executable, SCRIPT, *flags, "--out", str(out), "--md", str(md)],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
                        check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  summary = json.loads(out.read_text())
  assert md.read_text() in proc.stdout  # the table printed is the table written
  return summary, proc.stdout


def positive_finite(x) -> bool:
  return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def check_cpu_header(summary: dict, stdout: str) -> None:
  assert summary["accelerator"] is False
  assert summary["backend"] == "cpu" and summary["small"] is True
  assert "no accelerator" in summary["note"]
  assert "NO ACCELERATOR" in stdout.splitlines()[1]  # said at the top
  assert summary["targets"]["hrm_B_mfu"] == {"met": None, "why": "no accelerator"}
  assert summary["versions"]["jax"]


def check_hrm_tiny(r: dict) -> None:
  for key in ("tokens_per_s", "ms_per_step", "model_flops_per_s", "matmul_flops_per_s",
              "of_matmul_rate", "train_flops_per_token", "seconds"):
    assert positive_finite(r[key]), (key, r[key])
  assert r["bp_steps"] == 5 and r["seq_len"] == 64 and r["rows"] == 2
  assert math.isfinite(r["loss_last"])
  assert "mfu" not in r and "peak_flops" not in r  # a CPU's peak is unknown


@pytest.mark.long
def test_cpu_hrm_and_decode(tmp_path):
  """The real HRM-Text training and decode sections on CPU, each in its own process."""
  summary, stdout = run_cpu(tmp_path, "--budget-minutes", "10", "--sections", "hrm_tiny,decode",
                            *TINY_HRM)
  check_cpu_header(summary, stdout)
  assert list(summary["sections"]) == ["hrm_tiny", "decode"]
  check_hrm_tiny(summary["sections"]["hrm_tiny"])
  decode = summary["sections"]["decode"]
  rates = decode["new_tokens_per_s"]
  assert set(rates) == {"ours, KV cache", "ours, recompute"}  # no transformers at --small
  assert all(positive_finite(v) for v in rates.values())
  assert decode["rows_agreeing_first_16"] == {"recompute": decode["batch"]}
  assert decode["ratios"]["cached_over_recompute"] == pytest.approx(
      rates["ours, KV cache"] / rates["ours, recompute"])
  assert "| HRM-Text tiny train (float32, 2×64, bp 5) |" in stdout
  assert "| decode tiny 2×32 new |" in stdout
  assert summary["targets"]["ppo_ours_over_brax"] == {"met": None, "why": "ppo not run"}


def test_budget_skips_what_cannot_fit_and_stops_an_overrun(tmp_path, monkeypatch, capsys):
  """A 10 s budget: hrm_tiny (stated to need 1 s) is started and stopped when the budget
  runs out; decode (expected to need more than is left) is skipped with a message."""
  monkeypatch.syspath_prepend(os.path.join(ROOT, "bench"))
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  import accelerator  # pylint: disable=import-outside-toplevel
  monkeypatch.setitem(accelerator.EXPECTED_SECONDS, "hrm_tiny", (1, 1))
  monkeypatch.setitem(accelerator.EXPECTED_SECONDS, "decode", (600, 600))
  out = tmp_path / "summary.json"
  accelerator.main(["--budget-minutes", str(10 / 60), "--sections", "hrm_tiny,decode",
                    "--hrm-steps", "1000", "--out", str(out)])
  summary = json.loads(out.read_text())
  stopped, skipped = summary["sections"]["hrm_tiny"], summary["sections"]["decode"]
  assert stopped["timed_out"] is True and "stopped at the budget" in stopped["error"]
  assert "expected ~600 s" in skipped["skipped"]
  assert summary["seconds"] < 60
  printed = capsys.readouterr().out
  assert "== decode: SKIPPED" in printed and "| decode | skipped: expected ~600 s" in printed


def test_rl_rows_ratios_and_targets(monkeypatch):
  """The RL rows and the targets from a stated summary (the measurement is the slow test's)."""
  monkeypatch.syspath_prepend(os.path.join(ROOT, "bench"))
  import accelerator  # pylint: disable=import-outside-toplevel
  summary = {
      "accelerator": True, "backend": "gpu", "device_kind": "NVIDIA H200", "device_count": 1,
      "versions": {"jax": "0.11.2"}, "small": False, "budget_minutes": 10, "seconds": 500,
      "sections": {
          "env_only": {"env": "brax/ant", "num_envs": 4096, "env_steps_per_s": 1000.0},
          "ppo": {"env": "brax/ant", "num_envs": 4096,
                  "env_steps_per_s": {"brax": 400.0, "ours": 500.0, "reflex": 450.0},
                  "ratios": {"ours_over_brax": 1.25, "reflex_over_ours": 0.9}},
          "sac": {"skipped": "expected ~150 s, 20 s left in the budget"},
          "hrm_B": {"error": "out of device memory"}}}
  summary["targets"] = accelerator.targets(summary)
  assert summary["targets"]["ppo_ours_over_brax"] == {"met": True, "value": 1.25, "target": 1.0,
                                                      "env": "brax/ant"}
  assert summary["targets"]["hrm_B_mfu"] == {"met": None, "why": "out of device memory"}
  table = accelerator.markdown(summary)
  assert "| PPO brax/ant ×4096, ours | 500 env-steps/s | brax.training 400 | 1.25× brax |" in table
  assert "| PPO, ours vs env-only | | 1,000 | 50% of ceiling |" in table
  assert "| Reflex-PPO | 450 env-steps/s | ours plain 500 | 0.90× |" in table
  assert "| sac | skipped: expected ~150 s" in table
  assert "| hrm_B | failed: out of device memory |" in table


def test_bad_arguments_are_named(capsys):
  sys.path.insert(0, os.path.join(ROOT, "bench"))
  import accelerator  # pylint: disable=import-outside-toplevel
  with pytest.raises(SystemExit):
    accelerator.parse(["--sections", "hrm_tiny,warp"])
  assert "unknown section(s) ['warp']" in capsys.readouterr().err
  with pytest.raises(SystemExit):
    accelerator.parse(["--budget-minutes", "0"])
  assert "--budget-minutes must be positive" in capsys.readouterr().err


@pytest.mark.slow
def test_cpu_everything(tmp_path):
  """Every section for real on CPU at the smallest sizes; inverted_pendulum compiles fastest
  (still minutes on 2 cores)."""
  summary, stdout = run_cpu(
      tmp_path, "--budget-minutes", "60", "--rl-env", "brax/inverted_pendulum",
      "--sac-env", "brax/inverted_pendulum", "--num-envs", "8", "--rl-updates", "1",
      "--sac-envs", "4", "--sac-iterations", "2", "--episode-length", "50", *TINY_HRM)
  check_cpu_header(summary, stdout)
  sections = summary["sections"]
  assert all("error" not in r and "skipped" not in r for r in sections.values()), sections
  check_hrm_tiny(sections["hrm_tiny"])
  assert positive_finite(sections["env_only"]["env_steps_per_s"])
  for name in ("ppo", "sac"):
    rates = sections[name]["updates_per_s" if name == "sac" else "env_steps_per_s"]
    assert set(rates) == {"brax", "ours", "reflex"} and all(map(positive_finite, rates.values()))
    assert sections[name]["ratios"]["ours_over_brax"] == pytest.approx(
        rates["ours"] / rates["brax"])
  target = summary["targets"]["ppo_ours_over_brax"]
  assert target["met"] == (sections["ppo"]["ratios"]["ours_over_brax"] >= 1.0)
