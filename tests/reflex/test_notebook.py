"""The Reflex notebook runs top to bottom (reduced size on CPU) and shows a plot, a table and
a video."""

import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow  # ~2 min on 2 cores; `make test-all` runs it
def test_demo_notebook_executes_and_shows_plot_table_and_video(tmp_path, monkeypatch):
  nbformat = pytest.importorskip("nbformat")
  nbclient = pytest.importorskip("nbclient")
  monkeypatch.setenv("REFLEX_NOTEBOOK_SMALL", "1")
  monkeypatch.setenv("JAX_PLATFORMS", "cpu")
  monkeypatch.setenv("PYTHONPATH", ROOT)
  notebook = nbformat.read(os.path.join(ROOT, "experiments", "reflex", "demo.ipynb"),
                           as_version=4)
  nbclient.NotebookClient(notebook, timeout=900, kernel_name="python3",
                          resources={"metadata": {"path": str(tmp_path)}}).execute()
  outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs]
  assert not [o for o in outputs if o.output_type == "error"]
  images = [o for o in outputs if "image/png" in o.get("data", {})
            or "image/gif" in o.get("data", {})]
  assert len(images) >= 2  # the curves and the video
  assert any("| reflex |" in o.get("data", {}).get("text/markdown", "") for o in outputs)
  assert any("mirror deviation" in o.get("text", "") for o in outputs)
  run_dir = tmp_path / "runs" / "notebook" / "brax_inverted_pendulum" / "ppo"
  assert (run_dir / "curves.png").exists() and (run_dir / "reflex_seed0.gif").exists()
