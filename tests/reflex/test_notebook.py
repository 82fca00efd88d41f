"""The Reflex notebook runs top to bottom (reduced size on CPU) and shows a plot, a table and
a video."""

import os

import pytest

from tests.helpers import execute_notebook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.mark.slow  # ~2 min on 2 cores; `make test-all` runs it
def test_demo_notebook_executes_and_shows_plot_table_and_video(tmp_path, monkeypatch):
  outputs = execute_notebook(os.path.join(ROOT, "experiments", "reflex", "demo.ipynb"),
                             tmp_path, {"REFLEX_NOTEBOOK_SMALL": "1"}, monkeypatch)
  images = [o for o in outputs if "image/png" in o.get("data", {})
            or "image/gif" in o.get("data", {})]
  assert len(images) >= 2  # the curves and the video
  assert any("| reflex |" in o.get("data", {}).get("text/markdown", "") for o in outputs)
  assert any("mirror deviation" in o.get("text", "") for o in outputs)
  run_dir = tmp_path / "runs" / "notebook" / "brax_inverted_pendulum" / "ppo"
  assert (run_dir / "curves.png").exists() and (run_dir / "reflex_seed0.gif").exists()
