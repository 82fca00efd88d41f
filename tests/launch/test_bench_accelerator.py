"""bench/accelerator.py on CPU: it runs without an accelerator, says so, and writes a JSON
summary of positive finite rates, the ratios and the targets.

The real PPO part compiles MJX physics several times (minutes on a 2-core CPU), so the fast
tests run the real HRM part and check the RL summary with the measurement stubbed out; the
slow test runs everything for real at the smallest sizes."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "bench", "accelerator.py")
TINY_HRM = ["--hrm-sizes", "tiny", "--seq-len", "64", "--rows", "2", "--hrm-steps", "1",
            "--hrm-repeats", "1", "--matmul-n", "256"]


def run_cpu(tmp_path, *flags) -> tuple[dict, str]:
  out = tmp_path / "summary.json"
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": ROOT}
  env.pop("XLA_FLAGS", None)  # one CPU device, as a user's machine has (conftest sets 8)
  proc = subprocess.run([sys.executable, SCRIPT, "--small", *flags, "--out", str(out)],
                        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800,
                        check=False)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  return json.loads(out.read_text()), proc.stdout


def positive_finite(x) -> bool:
  return isinstance(x, (int, float)) and math.isfinite(x) and x > 0


def check_cpu_header(summary: dict, stdout: str) -> None:
  assert summary["accelerator"] is False
  assert summary["backend"] == "cpu" and summary["small"] is True
  assert "no accelerator" in summary["note"]
  assert "NO ACCELERATOR" in stdout.splitlines()[1]  # said at the top
  assert summary["targets"]["hrm_B_mfu"] == {"met": None, "why": "no accelerator"}
  assert "HRM-Text B MFU ≥ 40 % on H100: not measured (no accelerator)" in stdout


def check_hrm(summary: dict) -> None:
  tiny = summary["hrm"]["tiny"]
  assert set(summary["hrm"]) == {"tiny"}
  for key in ("tokens_per_s", "ms_per_step", "model_flops_per_s", "matmul_flops_per_s",
              "of_matmul_rate", "train_flops_per_token"):
    assert positive_finite(tiny[key]), (key, tiny[key])
  assert tiny["bp_steps"] == 5 and tiny["seq_len"] == 64 and tiny["rows"] == 2
  assert math.isfinite(tiny["loss_last"])
  assert "mfu" not in tiny and "peak_flops" not in tiny  # a CPU's peak is unknown


def check_rl(summary: dict, stdout: str) -> None:
  rl = summary["rl"]
  assert set(rl["env_steps_per_s"]) == {"env_only", "brax", "ours", "reflex"}
  assert set(rl["ratios"]) == {"ours_over_brax", "reflex_over_ours", "ours_over_env_only"}
  for value in [*rl["env_steps_per_s"].values(), *rl["ratios"].values()]:
    assert positive_finite(value), rl
  rates = rl["env_steps_per_s"]
  assert rl["ratios"]["ours_over_brax"] == pytest.approx(rates["ours"] / rates["brax"])
  target = summary["targets"]["ppo_ours_over_brax"]
  assert target["met"] == (rl["ratios"]["ours_over_brax"] >= 1.0)
  assert f"ours/brax ≥ 1.0: {'met' if target['met'] else 'missed'}" in stdout


def test_cpu_hrm_only(tmp_path):
  """The real HRM-Text part on CPU (~30 s)."""
  summary, stdout = run_cpu(tmp_path, "--skip-rl", *TINY_HRM)
  check_cpu_header(summary, stdout)
  check_hrm(summary)
  assert "rl" not in summary
  assert summary["targets"]["ppo_ours_over_brax"]["met"] is None


def test_rl_summary_and_targets(tmp_path, monkeypatch, capsys):
  """The RL summary, ratios and target lines, with the (minutes-long) measurement stubbed."""
  monkeypatch.syspath_prepend(os.path.join(ROOT, "bench"))
  import accelerator  # pylint: disable=import-outside-toplevel
  calls = []

  def fake_compare(env_id, base, reflex, seeds):
    calls.append((env_id, base, reflex, seeds))
    return {"env_only": 1000.0, "brax": 400.0, "ours": 500.0, "reflex": 450.0}

  monkeypatch.setattr(accelerator, "compare", fake_compare)
  out = tmp_path / "summary.json"
  monkeypatch.setattr(sys, "argv", ["accelerator.py", "--small", "--skip-hrm", "--num-envs", "8",
                                    "--rl-updates", "1", "--out", str(out)])
  accelerator.main()
  summary = json.loads(out.read_text())
  (env_id, base, reflex, seeds), = calls
  assert env_id == "brax/ant" and seeds == 1
  assert base.num_envs == 8 and base.num_minibatches == 8 and base.reflex is None
  assert base.num_timesteps == 8 * 5 and reflex.reflex is not None
  assert summary["rl"]["ratios"] == {"ours_over_brax": 1.25, "reflex_over_ours": 0.9,
                                     "ours_over_env_only": 0.5}
  if not summary["accelerator"]:
    assert summary["targets"]["ppo_ours_over_brax"]["met"] is True
    assert "PPO brax/ant ours/brax ≥ 1.0: met (1.25)" in capsys.readouterr().out


@pytest.mark.slow
def test_cpu_everything(tmp_path):
  """All of it for real on CPU at the smallest sizes; inverted_pendulum compiles fastest
  (still minutes on 2 cores, ant takes ~10)."""
  summary, stdout = run_cpu(tmp_path, "--rl-env", "brax/inverted_pendulum", "--num-envs", "8",
                            "--rl-updates", "1", "--episode-length", "50", *TINY_HRM)
  check_cpu_header(summary, stdout)
  check_hrm(summary)
  check_rl(summary, stdout)
