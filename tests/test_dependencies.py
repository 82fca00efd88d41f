"""Every module of the packages imports only the standard library, the project's own
packages, and distributions that pyproject.toml declares: at module level the core
dependencies, plus the [rl] extra in reflex_jax and the [lm] extra in hrm_jax (each half's
__init__ names its extra when one is missing); any other extra only inside a function that
needs it."""

import ast
import importlib.metadata
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("reflex_jax", "hrm_jax", "runkit", "tpu_gpu_launch")


HALVES = {"reflex_jax": "rl", "hrm_jax": "lm"}  # the extra each half imports at module level


def _name(req: str) -> str:
  return re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower().replace("_", "-")


def _declared():
  project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
  core = {_name(r) for r in project["dependencies"]}
  extras = {k: {_name(r) for r in reqs} for k, reqs in project["optional-dependencies"].items()}
  return core, extras


def _imports(path: pathlib.Path):
  """(top-level module, whether the import runs when the module is imported) per import:
  imports inside a function or class body run only when it is called or defined lazily."""
  tree = ast.parse(path.read_text(), str(path))
  lazy = {id(sub) for node in ast.walk(tree)
          if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
          for sub in ast.walk(node)}
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      names = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
      names = [node.module]
    else:
      continue
    for n in names:
      yield n.split(".")[0], id(node) not in lazy


def test_every_import_is_declared():
  core, by_extra = _declared()
  extras = set().union(*by_extra.values())
  distributions = importlib.metadata.packages_distributions()
  problems = []
  for package in PACKAGES:
    for path in sorted((ROOT / package).rglob("*.py")):
      for module, at_top in _imports(path):
        if module in sys.stdlib_module_names or module in PACKAGES or module == "__future__":
          continue
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        where = path.relative_to(ROOT)
        if dists & core or (package in HALVES and dists & by_extra[HALVES[package]]):
          continue
        if dists & extras and not at_top:
          continue
        problems.append(f"{where}: imports {module} ({', '.join(sorted(dists))}) "
                        + ("at module level from an extra" if dists & extras
                           else "which pyproject.toml does not declare"))
  assert not problems, "\n".join(problems)


def test_each_half_checks_for_exactly_its_extra():
  import importlib
  _, by_extra = _declared()
  distributions = importlib.metadata.packages_distributions()
  for package, extra in HALVES.items():
    module = importlib.import_module(package)
    assert module.EXTRA == extra
    dists = {d.lower().replace("_", "-") for m in module.REQUIRES
             for d in distributions.get(m, [m])}
    assert dists == by_extra[extra], (package, dists ^ by_extra[extra])


def test_a_missing_half_names_its_extra():
  import subprocess
  for package, blocked, submodule in (("reflex_jax", "brax", "symmetry.registry"),
                                      ("hrm_jax", "grain", "model")):
    code = ("import importlib.util\n"
            "find = importlib.util.find_spec\n"  # the environment as if `blocked` were absent
            f"importlib.util.find_spec = lambda n, *a: None if n == {blocked!r} else find(n, *a)\n"
            f"import {package}.{submodule}")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 1
    assert f"ImportError: {package} needs {blocked}" in result.stderr
    assert f"pip install 'reflex-hrm-jax[{HALVES[package]}]'" in result.stderr
