"""The HRM-Text notebook runs top to bottom (reduced size on CPU): it trains, plots the loss,
prints tokens/s, and shows the generated answers and the exact-match table."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_demo_notebook_trains_generates_and_evaluates(tmp_path, monkeypatch):
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  monkeypatch.setenv("HRM_NOTEBOOK_SMALL", "1")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  monkeypatch.setenv("PYTHONPATH", ROOT)
  # One CPU device, as on a CPU runtime (tests/conftest.py asks for 8, which doubles the time).
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
  notebook = nbformat.read(os.path.join(ROOT, "experiments", "hrm", "demo.ipynb"), as_version=4)
  assert notebook.metadata.kernelspec.name == "python3"
  assert not [c for c in notebook.cells if c.cell_type == "code" and c.outputs]  # stored clean
  nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
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
