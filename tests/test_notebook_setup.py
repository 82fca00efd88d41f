"""The notebooks' first cell: installs the package from the clone the notebook sits in when
the kernel cannot import it, and says what to do outside a clone."""

import json
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _setup_cell(half: str) -> str:
  nb = json.loads((ROOT / "experiments" / half / "demo.ipynb").read_text())
  return "".join(nb["cells"][1]["source"])


@pytest.mark.parametrize("half,package,extra", [("reflex", "reflex_jax", "rl"),
                                                ("hrm", "hrm_jax", "lm")])
def test_the_setup_cell_installs_from_the_clone_or_explains(half, package, extra, tmp_path,
                                                            monkeypatch):
  import importlib.util
  import shutil
  find = importlib.util.find_spec
  monkeypatch.setattr(importlib.util, "find_spec",
                      lambda name, *a: None if name == package else find(name, *a))
  monkeypatch.setattr(shutil, "which", lambda name: None)  # no GPU
  monkeypatch.delenv("COLAB_TPU_ADDR", raising=False)
  calls = []
  monkeypatch.setattr(subprocess, "check_call", calls.append)
  monkeypatch.setattr(sys, "path", list(sys.path))

  monkeypatch.chdir(tmp_path)  # outside any clone
  with pytest.raises(RuntimeError, match="inside a clone"):
    exec(_setup_cell(half), {})
  assert not calls

  monkeypatch.chdir(ROOT / "experiments" / half)  # where the notebook is opened
  exec(_setup_cell(half), {})
  assert calls == [[sys.executable, "-m", "pip", "install", "-q", "-e", f"{ROOT}[{extra}]"]]
  assert sys.path[0] == str(ROOT)
