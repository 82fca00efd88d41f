"""The HRM-Text notebook runs top to bottom (reduced size on CPU): it trains, plots the loss,
prints tokens/s, and shows the generated answers and the exact-match table."""

import os

import pytest

from tests.helpers import execute_notebook, xla_flags

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.long
def test_demo_notebook_trains_generates_and_evaluates(tmp_path, monkeypatch):
  # One CPU device, as on a CPU runtime (tests/conftest.py asks for 8, which doubles the time).
  outputs = execute_notebook(
      os.path.join(ROOT, "experiments", "hrm", "demo.ipynb"), tmp_path,
      {"HRM_NOTEBOOK_SMALL": "1", "XLA_FLAGS": xla_flags(1)},
      monkeypatch)
  assert any("image/png" in o.get("data", {}) for o in outputs)  # the loss curve
  markdown = [o["data"]["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
  assert any("| task | prompt | expected | generated | correct |" in m for m in markdown)
  table = next(m for m in markdown if "| exact match |" in m)
  assert "| all | 16 |" in table and "| reversal |" in table
  printed = "".join(o.get("text", "") for o in outputs if o.output_type == "stream")
  assert "cpu × 1 device(s): 30 steps" in printed and "tokens/s " in printed
  run_dir = tmp_path / "runs" / "notebook" / "hrm"
  assert (run_dir / "checkpoints" / "30").is_dir()
  assert (run_dir / "metrics.jsonl").read_text().count("\n") == 6  # a line every 5 steps
