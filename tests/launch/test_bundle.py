"""tpu_gpu_launch/bundle.py: profiles, what a node lacks, the size budget, offline install, and
the check that names what is missing. The slow test emulates the air-gapped H200 node: a fresh
Python 3.12 venv with jax 0.11.2 (CPU) and what the node's profile lists, the bundle installed
with --no-index, then the accelerator check in smoke mode."""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys

import pytest

from tpu_gpu_launch import bundle

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_profile_reading_and_errors(tmp_path):
  profile = tmp_path / "node.txt"
  profile.write_text("# a node\njax==0.11.2\nOrbax_Checkpoint  # comment\n\nnumpy == 2.5.2\n")
  assert bundle.read_profile(str(profile)) == {"jax": "0.11.2", "orbax-checkpoint": None,
                                               "numpy": "2.5.2"}
  profile.write_text("jax>=0.11\n")
  with pytest.raises(bundle.BundleError, match=r"node.txt:1: 'jax>=0.11' is not `name`"):
    bundle.read_profile(str(profile))
  with pytest.raises(bundle.BundleError, match="does not exist"):
    bundle.read_profile(str(tmp_path / "absent.txt"))
  with pytest.raises(bundle.BundleError, match=r"unknown part\(s\) \['rl'\]"):
    bundle.parse_parts("hrm,rl")


def test_the_shipped_h200_profile_lacks_what_the_issue_says():
  have = bundle.read_profile(bundle.DEFAULT_PROFILE)
  assert have["jax"] == "0.11.2" and have["jax-cuda13-plugin"] == "0.11.2"
  for name in ("flax", "optax", "orbax-checkpoint", "chex", "numpy", "scipy", "matplotlib",
               "torch", "transformers"):
    assert name in have
  for name in ("brax", "mujoco", "mujoco-mjx", "playground", "grain", "array-record",
               "omegaconf", "tensorboardx", "tokenizers"):
    assert name not in have


def test_needed_brings_what_is_absent_or_out_of_range():
  loaded = {"jax": "0.11.2", "brax": "0.14.2", "Flax": "0.12.12", "reflex-hrm-jax": "0.1.0",
            "grain": "0.2.18"}
  have = {"jax": "0.11.2", "flax": "0.11.0", "grain": None}
  ranges = {"jax": ">=0.9.2,<0.12", "flax": ">=0.12.6,<0.13", "brax": ">=0.14.2,<0.15"}
  bring, why = bundle.needed(loaded, have, ranges)
  assert bring == {"brax": "0.14.2", "flax": "0.12.12"}  # never the project, nor what fits
  assert why == {"brax": "not on the node", "flax": "node has 0.11.0, needs >=0.12.6,<0.13"}


def test_check_names_a_missing_module(tmp_path):
  """A private folder whose grain needs a module no one has: the check names it and fails."""
  fake = tmp_path / "site" / "grain"
  fake.mkdir(parents=True)
  (fake / "__init__.py").write_text("import a_module_nobody_has\n")
  (fake / "python.py").write_text("")
  assert bundle.check(["hrm"], str(tmp_path / "site")) is False


def test_download_keeps_to_the_budget(tmp_path, monkeypatch):
  """What the probe loads minus the profile is downloaded; over the budget it stops and names
  the largest wheels (pip and the probe replaced: no registry needed)."""
  profile = tmp_path / "node.txt"
  profile.write_text("jax==0.11.2\nnumpy\n")
  monkeypatch.setattr(bundle, "probe", lambda parts, **kwargs: {
      "dists": {"jax": "0.11.2", "numpy": "2.5.2", "mujoco": "3.17.0", "brax": "0.14.2"},
      "missing": {}, "errors": []})
  sizes = {"mujoco": 30, "brax": 5}
  fetched = []

  def fake_download(name, version, out, python_version):
    fetched.append((name, version, python_version))
    with open(os.path.join(out, f"{name}-{version}-py3-none-any.whl"), "wb") as f:
      f.write(b"\0" * sizes[name] * bundle.MIB)

  monkeypatch.setattr(bundle, "pip_download", fake_download)
  out = tmp_path / "b"
  manifest = bundle.download(["reflex"], str(profile), str(out), 40, "3.12", project=False)
  assert sorted(fetched) == [("brax", "0.14.2", "3.12"), ("mujoco", "3.17.0", "3.12")]
  assert manifest["total_bytes"] == 35 * bundle.MIB
  assert json.loads((out / bundle.MANIFEST).read_text())["bring"] == {"brax": "0.14.2",
                                                                      "mujoco": "3.17.0"}
  with pytest.raises(bundle.BundleError, match=r"35.0 MiB, over the 20 MiB budget; largest: "
                                               r"mujoco-3.17.0-py3-none-any.whl 30.0 MiB"):
    bundle.download(["reflex"], str(profile), str(out), 20, "3.12", project=False)


def test_install_refuses_a_bundle_for_another_python(tmp_path):
  (tmp_path / bundle.MANIFEST).write_text(json.dumps({"python_version": "2.7", "wheels": {},
                                                      "parts": ["hrm"]}))
  with pytest.raises(bundle.BundleError, match="for Python 2.7"):
    bundle.install(str(tmp_path), str(tmp_path / "site"))
  with pytest.raises(bundle.BundleError, match="no bundle.json"):
    bundle.install(str(tmp_path / "empty"), str(tmp_path / "site"))


def node_python() -> str | None:
  candidates = [shutil.which("python3.12"),
                *glob.glob(os.path.expanduser("~/.pyenv/versions/3.12*/bin/python3"))]
  for python in filter(None, candidates):
    if subprocess.run([python, "-c", "import sys; assert sys.version_info[:2] == (3, 12)"],
                      capture_output=True, check=False).returncode == 0:
      return python
  return None


@pytest.mark.slow
def test_emulated_air_gapped_h200_node(tmp_path):
  """The node: Python 3.12, jax 0.11.2 and the profile's packages that the parts import, and
  nothing else. The bundle (made here) installs with --no-index, every part imports, and the
  accelerator check runs its smoke sections on the node's own JAX."""
  python = node_python()
  if python is None:
    pytest.skip("no Python 3.12 on this machine to emulate the node with")
  # What the node has of what the parts import (its versions resolved for 3.12 by pip).
  loaded = bundle.probe(list(bundle.PARTS))["dists"]
  have = bundle.read_profile(bundle.DEFAULT_PROFILE)
  preinstalled = sorted(bundle.normalize(d) for d in loaded if bundle.normalize(d) in have)
  assert "jax" in preinstalled and "flax" in preinstalled
  node = tmp_path / "node"
  subprocess.run([python, "-m", "venv", str(node)], check=True)
  node_python_bin = str(node / "bin" / "python")
  pins = {"jax": "jax==0.11.2", "jaxlib": "jaxlib==0.11.2"}
  subprocess.run([node_python_bin, "-m", "pip", "install", "--quiet",
                  *[pins.get(n, n) for n in preinstalled]], check=True)

  wheels = tmp_path / "bundle"
  assert bundle.main(["download", "--out", str(wheels), "--python-version", "3.12",
                      "--budget-mib", "60"]) == 0
  manifest = json.loads((wheels / bundle.MANIFEST).read_text())
  assert "brax" in manifest["bring"] and "jax" not in manifest["bring"]
  assert "warp-lang" not in manifest["bring"]  # the JAX/MJX path never imports warp

  site = tmp_path / "site"
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
  env["PIP_NO_INDEX"] = "1"  # air-gapped
  proc = subprocess.run([node_python_bin, os.path.join(ROOT, "tpu_gpu_launch", "bundle.py"),
                         "install", str(wheels), "--target", str(site)],
                        env=env, capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stdout + proc.stderr
  assert "ok: reflex, hrm, bench import" in proc.stdout

  env.update(PYTHONPATH=str(site), JAX_PLATFORMS="cpu")
  out = tmp_path / "check.json"
  proc = subprocess.run(
      [node_python_bin, os.path.join(ROOT, "bench", "accelerator.py"), "--budget-minutes", "15",
       "--sections", "env_only,hrm_tiny,decode", "--num-envs", "8", "--rl-updates", "20",
       "--seq-len", "64", "--rows", "2", "--hrm-steps", "1", "--hrm-repeats", "1",
       "--matmul-n", "256", "--out", str(out)],
      env=env, cwd=str(tmp_path), capture_output=True, text=True, check=False, timeout=1200)
  assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
  summary = json.loads(out.read_text())
  assert summary["versions"]["jax"] == "0.11.2"
  for name in ("env_only", "hrm_tiny", "decode"):
    assert "error" not in summary["sections"][name], summary["sections"][name]
  assert summary["sections"]["hrm_tiny"]["tokens_per_s"] > 0
