"""The suite synchronises on conditions, never on the clock (it must pass on a loaded CI machine).

Read from the source of every file under tests/: no ``assert`` may depend on a wall-clock reading
(``time.time``, ``time.monotonic``, ``time.perf_counter``, ...) directly or through a variable computed
from one in the same function, and no ``time.sleep`` may stand alone as the synchronisation (outside a
polling loop). Hang guards are fine: subprocess timeouts, and deadlines that fail a test when a condition
never comes (``tests.helpers.wait_until``).
"""

from __future__ import annotations

import ast
import os

from tests.helpers import ROOT

CLOCKS = {"time", "monotonic", "perf_counter", "process_time", "monotonic_ns", "time_ns", "perf_counter_ns"}


def _is_clock(node: ast.AST) -> bool:
  """``time.<clock>()`` or ``<x>.st_mtime`` (a file time compared with the clock)."""
  if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
    f = node.func
    return f.attr in CLOCKS and isinstance(f.value, ast.Name) and f.value.id == "time"
  return isinstance(node, ast.Attribute) and node.attr in ("st_mtime", "st_ctime", "st_atime")


def _names(node: ast.AST) -> set[str]:
  return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _targets(node: ast.AST) -> set[str]:
  if isinstance(node, ast.Assign):
    return set().union(*(_names(t) for t in node.targets))
  if isinstance(node, ast.AugAssign | ast.AnnAssign | ast.NamedExpr):
    return _names(node.target)
  return set()


def violations(source: str, filename: str = "<test>") -> list[str]:
  """``"file:line: what"`` for each wall-clock assert and each lone sleep in ``source``."""
  tree = ast.parse(source)
  out = []
  functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
  for fn in functions:
    tainted: set[str] = set()
    changed = True
    while changed:  # names computed from a clock reading, directly or through other such names
      changed = False
      for node in ast.walk(fn):
        value = getattr(node, "value", None)
        if value is None or not _targets(node):
          continue
        if any(_is_clock(n) for n in ast.walk(value)) or _names(value) & tainted:
          new = _targets(node) - tainted
          if new:
            tainted |= new
            changed = True
    for node in ast.walk(fn):
      if isinstance(node, ast.Assert):
        if any(_is_clock(n) for n in ast.walk(node.test)) or _names(node.test) & tainted:
          out.append(f"{filename}:{node.lineno}: assert on a wall-clock reading")
  loops = [n for n in ast.walk(tree) if isinstance(n, ast.For | ast.While | ast.AsyncFor)]
  in_loop = {id(n) for loop in loops for n in ast.walk(loop)}
  for node in ast.walk(tree):
    if (
      isinstance(node, ast.Call)
      and isinstance(node.func, ast.Attribute)
      and node.func.attr == "sleep"
      and isinstance(node.func.value, ast.Name)
      and node.func.value.id == "time"
      and id(node) not in in_loop
    ):
      out.append(f"{filename}:{node.lineno}: a fixed sleep outside a polling loop")
  return out


def test_the_checker_finds_clock_asserts_and_lone_sleeps():
  bad = """
import time
def test_a():
  t0 = time.monotonic()
  run()
  elapsed = time.monotonic() - t0
  assert elapsed < 30
def test_b(path):
  time.sleep(0.3)
  assert time.time() - os.stat(path).st_mtime < 5
def test_c():
  while not ready():
    time.sleep(0.01)
  if time.monotonic() > 5:
    fail("hang guard")
"""
  assert violations(bad) == [
    "<test>:7: assert on a wall-clock reading",
    "<test>:10: assert on a wall-clock reading",
    "<test>:9: a fixed sleep outside a polling loop",
  ]


def test_no_test_asserts_on_the_clock_or_sleeps_to_synchronise():
  found = []
  tests = os.path.join(ROOT, "tests")
  for name in sorted(os.listdir(tests)):
    if name.endswith(".py") and name != os.path.basename(__file__):
      with open(os.path.join(tests, name)) as f:
        found += violations(f.read(), f"tests/{name}")
  assert not found, "\n".join(found)
