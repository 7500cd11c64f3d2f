"""requirements.lock: the exact versions `make demo` / `make test` install, against pyproject's ranges.

Checked offline: every dependency of jgan and of its judge / test / lint / crosscheck / cloud extras (all that
`make venv` installs) is pinned (one version, with sha256 hashes) inside pyproject's range; the Makefile
installs from the lock with hashes required, reinstalls when the lock changes, and `make lock` resolves
exactly those extras; and the environment running these tests, when it is the repository's .venv, holds
exactly the pinned versions. Regenerate the lock with `make lock` (docs: README, "Set up and run").
"""

from __future__ import annotations

import os
import re
import sys
import tomllib
from importlib import metadata

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import ROOT

EXTRAS = ("judge", "test", "lint", "crosscheck", "cloud")


def _lock() -> dict[str, tuple[str, Requirement, list[str]]]:
  """canonical name -> (version, the pinned requirement with its marker, its hashes)."""
  text = open(os.path.join(ROOT, "requirements.lock")).read()
  out = {}
  for entry in re.split(r"\n(?=[A-Za-z0-9])", text.split("\n", 2)[2] if text.startswith("#") else text):
    lines = [ln.strip() for ln in entry.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    if not lines:
      continue
    spec = lines[0].rstrip("\\").strip()
    req = Requirement(spec)
    (pin,) = req.specifier
    assert pin.operator == "==", spec
    hashes = [h for ln in lines[1:] for h in re.findall(r"--hash=sha256:([0-9a-f]{64})", ln)]
    out[canonicalize_name(req.name)] = (pin.version, req, hashes)
  return out


def _declared() -> list[Requirement]:
  with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
    project = tomllib.load(f)["project"]
  reqs = list(project["dependencies"])
  for extra in EXTRAS:
    reqs += project["optional-dependencies"][extra]
  return [Requirement(r) for r in reqs]


def test_every_dependency_is_pinned_with_hashes_inside_pyprojects_range():
  lock = _lock()
  assert len(lock) > 50
  for req in _declared():
    name = canonicalize_name(req.name)
    assert name in lock, f"{req.name} is in pyproject.toml but not in requirements.lock: run `make lock`"
    version = lock[name][0]
    assert req.specifier.contains(version, prereleases=True), f"{name}=={version} is outside {req.specifier}"
  for name, (version, _, hashes) in lock.items():
    assert hashes, f"{name}=={version} has no hash"
  assert lock["jax"][0] == lock["jaxlib"][0]


def test_makefile_installs_from_the_lock():
  text = open(os.path.join(ROOT, "Makefile")).read()
  stamp_rule = re.search(r"^\$\(STAMP\):(.*)$", text, re.M)
  assert stamp_rule and "$(LOCK)" in stamp_rule.group(1)  # a changed lock reinstalls
  assert "pip install -q --require-hashes -r $(LOCK)" in text and "pip install -q --no-deps -e ." in text
  assert re.search(r"^LOCK := requirements.lock$", text, re.M) and re.search(r"^lock:", text, re.M)
  compile_cmd = re.search(r"uv pip compile pyproject.toml ((?:--extra \w+ )+)", text)
  assert compile_cmd, "make lock no longer runs `uv pip compile pyproject.toml --extra ...`"
  assert sorted(re.findall(r"--extra (\w+)", compile_cmd.group(1))) == sorted(EXTRAS)  # what the lock covers


@pytest.mark.skipif(
  os.path.realpath(sys.prefix) != os.path.realpath(os.path.join(ROOT, ".venv")),
  reason="checks the repository's own .venv (made by make); this is another environment",
)
def test_the_repository_venv_holds_exactly_the_locked_versions():
  env = default_environment()
  wrong = []
  for name, (version, req, _) in _lock().items():
    if req.marker is not None and not req.marker.evaluate(env):
      continue  # e.g. Windows-only
    try:
      installed = metadata.version(name)
    except metadata.PackageNotFoundError:
      installed = "(missing)"
    if canonicalize_name(installed) != canonicalize_name(version):
      wrong.append(f"{name}: locked {version}, installed {installed}")
  assert not wrong, "; ".join(wrong) + " (make clean && make venv reinstalls from the lock)"
