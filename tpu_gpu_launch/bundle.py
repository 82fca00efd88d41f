"""Offline bundle for an air-gapped accelerator node that already has its own JAX.

On a connected machine (with this project installed), collect wheels for what the node lacks:
only the distributions that the chosen parts really import (measured by importing them and
loading one environment of each simulator, with everything the node lacks blocked until a part
fails without it: optional imports such as MJX's warp backend stay behind), minus what the
node's profile says it has, for the node's Python and platform, within a size budget:

    python -m tpu_gpu_launch.bundle download --profile tpu_gpu_launch/profiles/h200-cuda13.txt \\
        --out bundle/ --budget-mib 48

On the node (no registry), one command installs them into a private directory and checks that
every part imports, naming what is still missing:

    python tpu_gpu_launch/bundle.py install bundle/ --target ~/.reflex-site
    export PYTHONPATH=~/.reflex-site:$PYTHONPATH

A profile lists what the node has, one distribution a line (`name` or `name==version`, `#`
comments; `pip list --format=freeze` on the node writes one). A listed version outside the
range this project declares is brought along too.

This file imports nothing but the standard library at the top, so `install` and `check` run
from a checkout before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PROJECT = "reflex-hrm-jax"
MANIFEST = "bundle.json"
MIB = 2**20
DEFAULT_PROFILE = os.path.join(HERE, "profiles", "h200-cuda13.txt")
PLATFORMS = ("manylinux_2_39_x86_64", "manylinux_2_35_x86_64", "manylinux_2_34_x86_64",
             "manylinux_2_31_x86_64", "manylinux_2_28_x86_64", "manylinux_2_27_x86_64",
             "manylinux_2_24_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64")

# What each part imports, and one load per simulator: the modules a run of that part reaches
# (the trainers, the peers the benchmarks compare against, the data and checkpoint stack).
PARTS = {
    "reflex": {
        "modules": ["reflex_jax.ppo", "reflex_jax.sac", "reflex_jax.run.experiment",
                    "reflex_jax.run.report", "reflex_jax.envs.brax",
                    "reflex_jax.envs.playground", "reflex_jax.verify"],
        "loads": ["from reflex_jax import envs; envs.make_simulator('brax/ant')",
                  "from reflex_jax import envs; envs.make_simulator('playground/CartpoleBalance')"],
    },
    "hrm": {
        "modules": ["hrm_jax.train.loop", "hrm_jax.data.pipeline", "hrm_jax.data.tokenizer",
                    "hrm_jax.eval.runner", "hrm_jax.generate", "hrm_jax.model.hf_io"],
        "loads": [],
    },
    "bench": {  # bench/accelerator.py: the peers it times against
        "modules": ["brax.training.agents.ppo.train", "brax.training.agents.sac.train",
                    "tpu_gpu_launch.preflight"],
        "loads": ["from mujoco_playground import wrapper"],
    },
}


class BundleError(RuntimeError):
  """A bundle cannot be made or installed as asked; the message says why."""


def normalize(name: str) -> str:
  """PEP 503 name: what pip and the profile compare."""
  return re.sub(r"[-_.]+", "-", name).lower()


def read_profile(path: str) -> dict[str, str | None]:
  """{normalized name: version or None} of what a node already has."""
  if not os.path.exists(path):
    raise BundleError(f"profile {path!r} does not exist (one distribution a line, `name` or "
                      "`name==version`; `pip list --format=freeze` on the node writes one)")
  have = {}
  with open(path, encoding="utf-8") as f:
    for number, line in enumerate(f, 1):
      line = line.split("#", 1)[0].strip()
      if not line:
        continue
      match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:==\s*([^\s;]+))?", line)
      if not match:
        raise BundleError(f"{path}:{number}: {line!r} is not `name` or `name==version`")
      have[normalize(match.group(1))] = match.group(2)
  return have


def parse_parts(text: str) -> list[str]:
  parts = [p.strip() for p in text.split(",") if p.strip()]
  unknown = [p for p in parts if p not in PARTS]
  if unknown or not parts:
    raise BundleError(f"unknown part(s) {unknown or text!r}; choose from {', '.join(PARTS)}")
  return parts


# --- the probe: imports each part in a fresh interpreter ----------------------------------------

_PROBE = r"""
import importlib, importlib.abc, importlib.metadata as md, json, sys
parts, block = json.loads(sys.argv[1]), set(json.loads(sys.argv[2]))
from tpu_gpu_launch.bundle import normalize as norm  # the checkout is on the probe's path
owners = md.packages_distributions()
# Top-level modules of the blocked distributions (not shared with one that is not blocked):
# importing one raises, as on a node without it. An import that survives that (inside a
# try/except ImportError) is optional; one that fails the part is needed, and is let through.
blocked = {top for top, ds in owners.items() if all(norm(d) in block for d in ds)}
class Block(importlib.abc.MetaPathFinder):
  def find_spec(self, name, path=None, target=None):
    if name.split(".")[0] in blocked:
      raise ModuleNotFoundError(f"No module named {name!r}", name=name)
    return None
sys.meta_path.insert(0, Block())
missing, errors = {}, []
def attempt(what, run):
  while True:
    try:
      return run()
    except ModuleNotFoundError as e:
      top = (e.name or "?").split(".")[0]
      if top in blocked:
        blocked.discard(top)  # needed: let it through and try again
        continue
      missing.setdefault(e.name or str(e), []).append(what)
    except Exception as e:  # a failure for another reason is reported as it is
      errors.append(f"{what}: {type(e).__name__}: {e}")
    return None
for part in parts:
  for module in part["modules"]:
    attempt(module, lambda m=module: importlib.import_module(m))
  for load in part["loads"]:
    attempt(load, lambda l=load: exec(l, {}))
dists = {}
for name in list(sys.modules):
  top = name.split(".")[0]
  if top in sys.stdlib_module_names or top in blocked:
    continue
  for dist in owners.get(top, []):
    try:
      dists[dist] = md.version(dist)
    except md.PackageNotFoundError:
      pass
print("PROBE" + json.dumps({"dists": dists, "missing": missing, "errors": errors}))
"""


def probe(parts: list[str], python: str = sys.executable, env: dict | None = None,
          block: list[str] = ()) -> dict:
  """Import the parts in a fresh `python`: {dists: {name: version} loaded, missing:
  {module: [what needed it]}, errors: [...]}. Distributions in `block` are treated as absent
  unless a part cannot import without them."""
  spec = json.dumps([PARTS[p] for p in parts])
  run_env = {**os.environ, **(env or {})}
  run_env["PYTHONPATH"] = os.pathsep.join(
      p for p in (run_env.get("PYTHONPATH", ""), ROOT) if p)
  run_env.setdefault("JAX_PLATFORMS", "cpu")  # importing needs no accelerator
  proc = subprocess.run([python, "-c", _PROBE, spec, json.dumps(sorted(block))],
                        capture_output=True, text=True, env=run_env, cwd=ROOT, check=False)
  lines = [l for l in proc.stdout.splitlines() if l.startswith("PROBE")]
  if proc.returncode != 0 or not lines:
    raise BundleError(f"the import probe failed in {python}:\n{proc.stderr[-3000:]}")
  return json.loads(lines[-1][len("PROBE"):])


# --- download (connected machine) --------------------------------------------------------------

def declared_ranges() -> dict[str, str]:
  """{normalized name: specifier} this project declares (pyproject dependencies and the two
  halves' extras, [rl] and [lm], which the node runs)."""
  from importlib import metadata  # pylint: disable=import-outside-toplevel
  from packaging.requirements import Requirement  # pylint: disable=import-outside-toplevel
  out = {}
  for line in metadata.requires(PROJECT) or []:
    req = Requirement(line)
    if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in ("rl", "lm")):
      out[normalize(req.name)] = str(req.specifier)
  return out


def needed(loaded: dict[str, str], have: dict[str, str | None],
           ranges: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
  """(bring {name: version}, why {name: reason}): what the parts load that the node lacks,
  or has at a version outside the declared range."""
  from packaging.specifiers import SpecifierSet  # pylint: disable=import-outside-toplevel
  bring, why = {}, {}
  for dist, version in sorted(loaded.items()):
    name = normalize(dist)
    if name == PROJECT:
      continue
    if name not in have:
      bring[name], why[name] = version, "not on the node"
      continue
    node_version, spec = have[name], ranges.get(name)
    if node_version and spec and node_version not in SpecifierSet(spec, prereleases=True):
      bring[name], why[name] = version, f"node has {node_version}, needs {spec}"
  return bring, why


def pip_download(name: str, version: str, out: str, python_version: str) -> None:
  cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
         "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
         "-d", out, f"{name}=={version}"]
  for platform in PLATFORMS:
    cmd += ["--platform", platform]
  proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    lines = [l for l in proc.stderr.splitlines() if not l.startswith("WARNING: Location")]
    raise BundleError(f"no wheel of {name}=={version} for CPython {python_version} on "
                      f"x86-64 Linux:\n" + "\n".join(lines[-5:]))


def wheel_sizes(directory: str) -> dict[str, int]:
  return {f: os.path.getsize(os.path.join(directory, f))
          for f in sorted(os.listdir(directory)) if f.endswith(".whl")}


def download(parts: list[str], profile: str, out: str, budget_mib: float,
             python_version: str, project: bool = True) -> dict:
  have = read_profile(profile)
  from importlib import metadata  # pylint: disable=import-outside-toplevel
  # Everything here that the node lacks starts blocked: what the parts only try to import
  # (playground's torch wrapper, MJX's warp backend, IPython) is left behind.
  absent = sorted({normalize(d.metadata["Name"]) for d in metadata.distributions()}
                  - set(have) - {PROJECT})
  result = probe(parts, block=absent)
  if result["missing"] or result["errors"]:
    raise BundleError("this machine cannot import the parts it is to bundle: "
                      + json.dumps({k: result[k] for k in ("missing", "errors")}, indent=1))
  bring, why = needed(result["dists"], have, declared_ranges())
  os.makedirs(out, exist_ok=True)
  for stale in wheel_sizes(out):
    os.remove(os.path.join(out, stale))
  for name, version in bring.items():
    print(f"  {name}=={version} ({why[name]})", flush=True)
    pip_download(name, version, out, python_version)
  if project:
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps",
                    "--no-build-isolation", "-w", out, ROOT], check=True, capture_output=True)
  sizes = wheel_sizes(out)
  total = sum(sizes.values())
  manifest = {"parts": parts, "python_version": python_version, "profile": os.path.basename(
      profile), "bring": bring, "why": why, "wheels": sizes, "total_bytes": total,
      "budget_bytes": int(budget_mib * MIB)}
  with open(os.path.join(out, MANIFEST), "w", encoding="utf-8") as f:
    json.dump(manifest, f, indent=1)
  if total > budget_mib * MIB:
    largest = sorted(sizes.items(), key=lambda kv: -kv[1])[:5]
    raise BundleError(
        f"the bundle is {total / MIB:.1f} MiB, over the {budget_mib:g} MiB budget; largest: "
        + ", ".join(f"{w} {s / MIB:.1f} MiB" for w, s in largest)
        + ". Bundle fewer parts (--parts) or raise --budget-mib.")
  return manifest


# --- install and check (the node) --------------------------------------------------------------

def check(parts: list[str], target: str | None = None) -> bool:
  """Import every part (with `target` first on the path); print what is missing."""
  env = {"PYTHONPATH": os.pathsep.join(p for p in (target, os.environ.get("PYTHONPATH"))
                                       if p)} if target else None
  result = probe(parts, env=env)
  for module, needers in sorted(result["missing"].items()):
    print(f"MISSING {module}: needed by {', '.join(sorted(set(needers))[:3])}")
  for error in result["errors"]:
    print(f"ERROR {error}")
  ok = not result["missing"] and not result["errors"]
  if ok:
    print(f"ok: {', '.join(parts)} import with {len(result['dists'])} distributions")
  return ok


def install(bundle: str, target: str, parts: list[str] | None = None) -> bool:
  manifest_path = os.path.join(bundle, MANIFEST)
  if not os.path.exists(manifest_path):
    raise BundleError(f"{bundle!r} holds no {MANIFEST}: make it with `bundle download`")
  with open(manifest_path, encoding="utf-8") as f:
    manifest = json.load(f)
  here = f"{sys.version_info.major}.{sys.version_info.minor}"
  if manifest["python_version"] != here:
    raise BundleError(f"the bundle is for Python {manifest['python_version']}, this is {here}: "
                      f"download again with --python-version {here}")
  wheels = [os.path.join(bundle, w) for w in manifest["wheels"]]
  absent = [w for w in wheels if not os.path.exists(w)]
  if absent:
    raise BundleError(f"wheels listed in {manifest_path} are not there: {absent}")
  proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-index",
                         "--no-deps", "--no-compile", "--no-cache-dir", "--upgrade",
                         "--target", target, *wheels], capture_output=True, text=True,
                        check=False)
  if proc.returncode != 0:
    raise BundleError(f"pip could not install the bundle into {target}:\n{proc.stderr[-3000:]}")
  print(f"installed {len(wheels)} wheels into {target}; use it with\n"
        f"  export PYTHONPATH={target}{os.pathsep}$PYTHONPATH")
  return check(parts or manifest["parts"], target)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="command", required=True)
  d = sub.add_parser("download", help="collect the wheels a node lacks (connected machine)")
  d.add_argument("--profile", default=DEFAULT_PROFILE,
                 help="what the node has (default: the H200 CUDA 13 image)")
  d.add_argument("--parts", default="reflex,hrm,bench", help="comma-separated: "
                 + ", ".join(PARTS))
  d.add_argument("--out", default="bundle", help="folder for the wheels and bundle.json")
  d.add_argument("--budget-mib", type=float, default=60.0,
                 help="most MiB of wheels (default 60: what fits a 64 MiB transfer with a checkout)")
  d.add_argument("--python-version", default="3.12", help="the node's Python (major.minor)")
  d.add_argument("--no-project", action="store_true",
                 help="leave this project's own wheel out (the node has a checkout)")
  i = sub.add_parser("install", help="install a bundle offline and check (the node)")
  i.add_argument("bundle", help="folder made by `download`")
  i.add_argument("--target", default=os.path.expanduser("~/.reflex-site"),
                 help="private install folder (default ~/.reflex-site)")
  i.add_argument("--parts", help="parts to check (default the bundle's)")
  c = sub.add_parser("check", help="import each part; print what is missing")
  c.add_argument("--parts", default="reflex,hrm,bench")
  c.add_argument("--target", help="a private install folder to put first on the path")
  args = parser.parse_args(argv)
  try:
    if args.command == "download":
      manifest = download(parse_parts(args.parts), args.profile, args.out, args.budget_mib,
                          args.python_version, project=not args.no_project)
      print(f"{len(manifest['wheels'])} wheels, {manifest['total_bytes'] / MIB:.1f} MiB in "
            f"{args.out} (budget {args.budget_mib:g} MiB)")
      return 0
    if args.command == "install":
      parts = parse_parts(args.parts) if args.parts else None
      return 0 if install(args.bundle, args.target, parts) else 1
    return 0 if check(parse_parts(args.parts), args.target) else 1
  except BundleError as error:
    print(f"bundle: {error}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
