"""Every module of the packages imports only the standard library, the project's own
packages, and distributions that pyproject.toml declares: core dependencies at module level
(an install without extras imports every module), an extra's only inside a function that
needs it."""

import ast
import importlib.metadata
import pathlib
import re
import sys
import tomllib

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("reflex_jax", "hrm_jax", "runkit", "tpu_gpu_launch")


def _declared():
  project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
  name = lambda req: re.split(r"[<>=!~\[ ;]", req, maxsplit=1)[0].lower().replace("_", "-")
  core = {name(r) for r in project["dependencies"]}
  extras = {name(r) for reqs in project["optional-dependencies"].values() for r in reqs}
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
  core, extras = _declared()
  distributions = importlib.metadata.packages_distributions()
  problems = []
  for package in PACKAGES:
    for path in sorted((ROOT / package).rglob("*.py")):
      for module, at_top in _imports(path):
        if module in sys.stdlib_module_names or module in PACKAGES or module == "__future__":
          continue
        dists = {d.lower().replace("_", "-") for d in distributions.get(module, [module])}
        where = path.relative_to(ROOT)
        if dists & core:
          continue
        if dists & extras and not at_top:
          continue
        problems.append(f"{where}: imports {module} ({', '.join(sorted(dists))}) "
                        + ("at module level from an extra" if dists & extras
                           else "which pyproject.toml does not declare"))
  assert not problems, "\n".join(problems)
