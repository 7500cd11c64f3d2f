"""The package's shape: the dependency rule between its parts, no import circle, packages importable alone.

The rule (docs/design.md): the training core (``jgan/*.py`` and its subpackages ``objectives``,
``models``, ``data``, ``metrics``) never imports ``jgan.labs`` or ``jgan.cli``; labs may import the core
and other labs, never the command line; ``jgan.metrics`` imports only itself, ``jgan.data`` and the
leaf helpers (registry, download); ``jgan.data`` and ``jgan.models`` only themselves and the registry
helper. Imports are read from the source with ``ast`` (inside functions too; ``if TYPE_CHECKING:``
blocks excepted).
"""

import ast
import os
import subprocess
import sys

import pytest

from tests.helpers import ROOT

PKG = os.path.join(ROOT, "jgan")


def _modules() -> dict[str, str]:
  """``{dotted module name: path}`` of every module of jgan."""
  out = {}
  for dirpath, _, files in os.walk(PKG):
    for f in files:
      if f.endswith(".py"):
        rel = os.path.relpath(os.path.join(dirpath, f), ROOT)[:-3].split(os.sep)
        out[".".join(rel[:-1] if rel[-1] == "__init__" else rel)] = os.path.join(dirpath, f)
  return out


MODULES = _modules()


def _is_type_checking(node) -> bool:
  return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(name: str, parents: bool = True) -> set[str]:
  """The jgan modules that module ``name`` imports (``from jgan import x`` counts as ``jgan.x`` if x is a module).

  With ``parents`` the packages on the way count too (importing ``a.b.c`` runs ``a`` and ``a.b`` first).
  """
  tree = ast.parse(open(MODULES[name]).read())
  found = set()

  def visit(node):
    if _is_type_checking(node):
      return
    if isinstance(node, ast.Import):
      found.update(a.name for a in node.names if a.name.startswith("jgan"))
    elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jgan"):
      for a in node.names:
        sub = f"{node.module}.{a.name}"
        found.add(sub if sub in MODULES else node.module)
    for child in ast.iter_child_nodes(node):
      visit(child)

  visit(tree)
  if parents:
    found = {".".join(m.split(".")[:i]) for m in found for i in range(2, m.count(".") + 2)}
  return found - {name}


GRAPH = {m: _imports(m) for m in MODULES}
# What each module names itself: a package runs before its submodules, which is no circle.
EXPLICIT = {m: _imports(m, parents=False) for m in MODULES}


def _part(module: str) -> str:
  if module == "jgan.__main__":  # ``python -m jgan`` is the command line
    return "cli"
  parts = module.split(".")
  return parts[1] if len(parts) > 1 and parts[1] in ("labs", "cli", "metrics", "data", "models") else "core"


# part -> the parts it may import ("core" = the flat training core and objectives).
ALLOWED = {
  "core": {"core", "metrics", "data", "models"},
  "labs": {"core", "metrics", "data", "models", "labs"},
  "cli": {"core", "metrics", "data", "models", "labs", "cli"},
  "metrics": {"metrics", "data"},
  "data": {"data"},
  "models": {"models"},
}
# Leaf helpers every part may use: the registry helper, the verified downloader and the package root
# (the XLA:CPU work-around).
LEAVES = {"jgan", "jgan.registry", "jgan.download", "jgan.cpu_safety"}


def test_dependency_rule():
  bad = [
    f"{m} imports {d}"
    for m, deps in sorted(GRAPH.items())
    for d in sorted(deps - LEAVES)
    if _part(d) not in ALLOWED[_part(m)]
  ]
  assert not bad, "\n".join(bad)


def test_no_import_circle():
  state: dict[str, int] = {}  # 1 = on the current path, 2 = done

  def visit(m, path):
    state[m] = 1
    for d in sorted(EXPLICIT.get(m, ())):
      if state.get(d) == 1:
        raise AssertionError("import circle: " + " -> ".join(path[path.index(d) :] + [d]))
      if d not in state:
        visit(d, path + [d])
    state[m] = 2

  for m in sorted(EXPLICIT):
    if m not in state:
      visit(m, [m])


def test_every_module_is_found_and_the_parts_cover_them():
  assert {"jgan.step", "jgan.components", "jgan.labs.dynamics.games", "jgan.cli.train", "jgan.metrics.kid"} <= set(
    MODULES
  )
  assert all(_part(m) in ALLOWED for m in MODULES)


PACKAGES = sorted(m for m, p in MODULES.items() if p.endswith("__init__.py"))


@pytest.mark.parametrize("package", PACKAGES)
def test_package_imports_in_a_fresh_interpreter(package):
  """Each package imports on its own (a circle or a missing import would fail here, not for a user)."""
  r = subprocess.run([sys.executable, "-c", f"import {package}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]


def test_import_jgan_is_cheap_and_attributes_are_lazy():
  code = (
    "import sys, jgan; heavy = [m for m in ('jax', 'flax', 'tensorflow_datasets', 'orbax') if m in sys.modules]; "
    "print(heavy); print(jgan.objectives.OBJECTIVES['hinge'].__name__, callable(jgan.train_and_evaluate))"
  )
  r = subprocess.run([sys.executable, "-c", code], cwd="/", capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stderr[-3000:]
  heavy, names = r.stdout.splitlines()
  assert heavy == "[]" and names == "hinge True"


def test_importing_any_module_leaves_jax_backends_uninitialised():
  """No module computes with JAX at import (e.g. a module-level ``jnp.array``): that initialises the
  backends, after which ``jax.distributed.initialize`` (``jgan.multihost.initialize``) must refuse, so a
  multi-host job could not start."""
  names = sorted(m for m in MODULES if not m.endswith("__main__"))
  code = (
    "import importlib, sys\nfrom jgan.cpu_safety import backends_initialised\n"
    "for m in sys.argv[1:]:\n  importlib.import_module(m)\n"
    "  if backends_initialised():\n    print(m); break\n"
  )
  r = subprocess.run([sys.executable, "-c", code, *names], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.strip() == "", f"importing {r.stdout.strip()} initialised JAX's backends"


def _readme_library_snippet() -> str:
  text = open(os.path.join(ROOT, "README.md")).read()
  section = text.split("## Use it as a library", 1)[1]
  return section.split("```python\n", 1)[1].split("```", 1)[0]


def test_readme_library_snippet_runs_outside_the_repository(tmp_path):
  """The README's library example, saved as a file in a scratch directory and run from there with the
  installed package: no ``configs`` or repository on the path, a run directory written, samples drawn."""
  script = tmp_path / "snippet.py"
  script.write_text(_readme_library_snippet())
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "XLA_FLAGS")}
  r = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900)
  assert r.returncode == 0, r.stderr[-3000:]
  assert r.stdout.strip().splitlines()[-1] == "(16, 28, 28, 1) ['began', 'ebgan', 'gan']"
  assert (tmp_path / "runs" / "lib" / "samples_final.png").exists()
  assert (tmp_path / "runs" / "lib" / "checkpoints" / "200").is_dir()


# Names that start with an underscore by Python convention yet are public API (namedtuple methods, os._exit).
PUBLIC_UNDERSCORE = {"_replace", "_fields", "_asdict", "_make", "_field_defaults", "_exit"}


def _private_definitions() -> dict[str, set[str]]:
  """``{private name: modules defining it}``: every top-level function, class, assignment and method of
  jgan whose name starts with one underscore."""
  out: dict[str, set[str]] = {}
  for name, path in MODULES.items():
    for node in ast.walk(ast.parse(open(path).read())):
      names = []
      if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        names = [node.name]
      elif isinstance(node, ast.Assign):
        names = [t.id for t in node.targets if isinstance(t, ast.Name)]
      for n in names:
        if n.startswith("_") and not n.startswith("__"):
          out.setdefault(n, set()).add(name)
  return out


def private_uses_across_modules() -> list[str]:
  """``"module:line: name"`` for every use of a private name that another jgan module defines: an import
  of it, or an attribute ``x._name`` (other than ``self.`` / ``cls.``) that only other modules define."""
  defined = _private_definitions()
  found = []
  for name, path in MODULES.items():
    for node in ast.walk(ast.parse(open(path).read())):
      if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("jgan"):
        found += [f"{name}:{node.lineno}: {a.name}" for a in node.names if a.name.startswith("_")]
      elif isinstance(node, ast.Attribute) and node.attr in defined and node.attr not in PUBLIC_UNDERSCORE:
        if isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
          continue
        if name not in defined[node.attr]:
          found.append(f"{name}:{node.lineno}: {ast.unparse(node)}")
  return found


def test_no_module_uses_another_modules_private_names():
  """Each module's private names are its own (docs/design.md): another module that needs one gets a
  public name for it."""
  assert not private_uses_across_modules(), "\n".join(private_uses_across_modules())


def test_the_private_name_check_finds_what_it_should(tmp_path, monkeypatch):
  """The check against a known input: two modules, one reaching into the other."""
  a, b = tmp_path / "a.py", tmp_path / "b.py"
  a.write_text("def _helper():\n  pass\nclass C:\n  def _m(self):\n    return self._m\n")
  b.write_text("from jgan.a import _helper\ndef f(c):\n  return c._m()\n")
  monkeypatch.setattr(sys.modules[__name__], "MODULES", {"jgan.a": str(a), "jgan.b": str(b)})
  assert private_uses_across_modules() == ["jgan.b:1: _helper", "jgan.b:3: c._m"]


def _tested_in() -> list[tuple[list[str], list[str]]]:
  """docs/design.md's "Where each module is tested" table: ``[(module patterns, test files)]``."""
  text = open(os.path.join(ROOT, "docs", "design.md")).read()
  block = text.split("### Where each module is tested", 1)[1].split("```")[1]
  rows = []
  for line in block.strip().splitlines():
    left, _, right = line.partition("tests/")
    modules = [m.strip() for m in left.split(",") if m.strip()]
    tests = ["tests/" + t.split()[0].rstrip(",") for t in ("tests/" + right).split("tests/")[1:]]
    rows.append((modules, tests))
  return rows


def test_every_module_has_a_test_file_named_in_the_design_doc():
  import fnmatch

  rows = _tested_in()
  for _, tests in rows:
    for t in tests:
      assert os.path.isfile(os.path.join(ROOT, t)), f"docs/design.md names {t}, which does not exist"
  paths = sorted(os.path.relpath(p, ROOT) for p in MODULES.values())
  missing = [p for p in paths if not any(fnmatch.fnmatch(p, pat) for mods, _ in rows for pat in mods)]
  assert not missing, f"modules missing from docs/design.md's 'Where each module is tested': {missing}"
