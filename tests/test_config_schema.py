"""The config schema (jgan/config_schema.py) is the one list of keys, and every bad value fails in one line.

* Every key that jgan's source reads from a config is declared (an ``ast`` scan, tests/config_reads.py,
  whose rules for which names hold a config are checked to cover every config-like parameter).
* ``docs/config.md`` is what ``jgan config docs`` prints; ``jgan config show`` lists every key of an
  experiment with its value, type, default, valid values and doc.
* Property-based (hypothesis): for every key of the schema, the components' own fields included, values of
  the wrong type and out of range are drawn; :func:`jgan.config.resolve` refuses each with a one-line
  ValueError naming the key. A sample goes through the command line as a process: exit status 2, one
  ``error:`` line, no traceback, no workdir.
* A component's own parameters are set in the command that chooses it, and the run trains.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import ml_collections
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jgan import classifier_training, config_docs
from jgan import config as config_lib
from jgan import config_schema as schema
from jgan import data as data_lib
from jgan.cli import config as config_cli
from jgan.config_checks import Choices, Field, Range, Rule, describe
from tests import config_reads
from tests.helpers import ROOT, load_config

DOC = os.path.join(ROOT, "docs", "config.md")


def _with_prefixes(keys) -> set[str]:
  out = set()
  for k in keys:
    parts = k.split(".")
    out.update(".".join(parts[: i + 1]) for i in range(len(parts)))
  return out


def all_fields() -> list[tuple[str, str, Field]]:
  """``(section, component, field)`` of every key: the fixed ones (section "") and every registered
  component's own fields."""
  out = [("", "", f) for f in schema.FIELDS]
  for section, s in schema.SECTIONS.items():
    for name in s.registry():
      out += [(section, name, f) for f in schema.component_fields(section, name)]
  return out


def test_every_key_read_in_jgan_is_declared():
  run_keys = _with_prefixes(f.key for _, _, f in all_fields())
  classifier_keys = _with_prefixes(f.key for f in classifier_training.FIELDS)
  undeclared = {}
  for module in config_reads.modules():
    valid = classifier_keys if module in config_reads.CLASSIFIER_MODULES else run_keys
    for key, where in config_reads.reads(module).items():
      if key not in valid:
        undeclared[key] = where
  assert not undeclared, f"keys read but not in the schema (jgan/config_schema.py): {undeclared}"


def test_the_scan_finds_reads_through_sections_and_aliases():
  """The scan's rules reach the reads that go through a section parameter or a local alias."""
  assert "optim.g.eps" in config_reads.reads("jgan/optim.py")  # c.eps in an optimiser's factory
  assert "model.g_width" in config_reads.reads("jgan/models/__init__.py")  # cfg.g_width
  assert "evals.batch_size" in config_reads.reads("jgan/evaluation.py")  # self.settings.batch_size
  assert "train.log_every" in config_reads.reads("jgan/loop.py")  # t = config.train; t.log_every


def test_every_config_like_parameter_is_covered_by_the_scan():
  uncovered = [
    (module, fn, name)
    for module, fn, name in config_reads.config_names()
    if name != "config" and name not in config_reads.MODULE_NAMES.get(module, {})
  ]
  assert not uncovered, f"parameters named like a config that tests/config_reads.py does not follow: {uncovered}"


def test_config_doc_is_current():
  with open(DOC) as f:
    assert f.read() == config_docs.render(), "docs/config.md is stale: run `jgan config docs > docs/config.md`"


def test_config_show_lists_every_key_with_type_default_range_and_doc():
  text = config_cli.show("configs/dcgan_mnist5k.py", [])
  lines = {ln.split()[0]: ln for ln in text.splitlines()[3:]}
  resolved = config_lib.resolve(load_config("dcgan_mnist5k"))
  fields = schema.fields_of(resolved)
  assert len(fields) == len(lines) and len(fields) >= 66
  for f in fields:
    line = lines[f.key]
    default = repr(f.default) if isinstance(f.default, str) else str(f.default)
    assert f" {f.type.__name__} " in line and f" {default} " in line and f.doc in line, line
    assert describe(f) in line, line
  assert lines["train.steps"].split()[1:3] == ["3000", "*"]  # the experiment's value, marked as not the default


def test_defaults_are_the_schema():
  flat = config_lib.flatten(config_lib.defaults())
  assert {f.key: f.default for f in schema.fields_of(config_lib.defaults())} == flat


# Property-based: every key refuses wrong types and out-of-range values.
NAN, INF = math.nan, math.inf


def _wrong_type(t: type):
  if t is int:
    return st.one_of(st.floats(allow_nan=False), st.text(max_size=4), st.booleans(), st.none())
  if t is float:
    return st.one_of(st.text(max_size=4), st.booleans(), st.none(), st.sampled_from([NAN, INF, -INF]))
  if t is bool:
    return st.one_of(st.integers(), st.floats(), st.text(max_size=4), st.none())
  return st.one_of(st.integers(), st.floats(), st.booleans(), st.none(), st.tuples(st.text(max_size=2)))


def _out_of_range(f: Field, afile: str):
  c = f.check
  if isinstance(c, Range):
    out = []
    if f.type is int:
      if c.lo is not None:
        out.append(st.integers(max_value=int(c.lo) - (0 if c.lo_open else 1)))
      out.append(st.integers(min_value=int(c.hi) + (0 if c.hi_open else 1)) if c.hi is not None else st.integers(2**63))
    else:
      if c.lo is not None:
        out.append(st.floats(max_value=c.lo, exclude_max=not c.lo_open, allow_nan=False, allow_infinity=False))
      if c.hi is not None:
        out.append(st.floats(min_value=c.hi, exclude_min=not c.hi_open, allow_nan=False, allow_infinity=False))
    return out
  if isinstance(c, Choices):
    return [st.text(max_size=12).filter(lambda s: s not in c.options())]
  if isinstance(c, Rule) and f.key == "data.data_dir":
    return [st.just(afile)]
  if isinstance(c, Rule) and f.key == "data.name":  # neither built in nor prepared (under TFDS's default dir)
    return [st.text(max_size=12).filter(lambda s: s not in data_lib.DATASETS)]
  if isinstance(c, Rule) and f.key == "evals.metrics":
    return [st.text("abcdefghijklmnopqrstuvwxyz_0123456789", min_size=1, max_size=12).filter(lambda s: s != "_")]
  assert c is None, f"no strategy for the check of {f.key}: add one"
  return []


def _base(section: str, name: str) -> ml_collections.ConfigDict:
  c = load_config("smoke")
  if section:
    config_lib.set_component(c, section, name)
  return c


def _with(base: ml_collections.ConfigDict, key: str, value) -> ml_collections.ConfigDict:
  """``base`` with ``key`` set to ``value`` as a config built from a dict holds it (ConfigDict's own
  assignment would turn a bool given for a float key into 1.0, or refuse a str)."""
  d = base.to_dict()
  *parents, leaf = key.split(".")
  node = d
  for p in parents:
    node = node[p]
  node[leaf] = value
  return ml_collections.ConfigDict(d)


FIELD_IDS = [f"{s}:{n}:{f.key}" if s else f.key for s, n, f in all_fields()]


@pytest.fixture(scope="module")
def afile(tmp_path_factory):
  path = tmp_path_factory.mktemp("schema") / "afile"
  path.write_text("")
  return str(path)


@pytest.mark.parametrize("section,name,field", all_fields(), ids=FIELD_IDS)
def test_every_key_refuses_wrong_types_and_out_of_range_values(section, name, field, afile):
  base = _base(section, name)
  config_lib.resolve(base)  # the base config itself is valid
  bad = st.one_of(_wrong_type(field.type), *_out_of_range(field, afile))

  @settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
  @given(value=bad)
  def refused(value):
    c = _with(base, field.key, value)
    with pytest.raises(ValueError) as e:
      config_lib.resolve(c)
    msg = str(e.value)
    assert "\n" not in msg and field.key in msg, (value, msg)

  refused()


# The command line as a process, on a sample of those values (each a few seconds of imports).
CLI_SAMPLE = (
  ("train.batch_size", "0"),
  ("optim.d.b2", "1.0"),
  ("model.d_norm", "group"),
  ("train.progress", "2"),
)


@pytest.mark.slow
@pytest.mark.parametrize("key,value", CLI_SAMPLE)
def test_bad_value_on_the_command_line_is_one_error_line(key, value, tmp_path):
  work = tmp_path / "run"
  r = subprocess.run(
    [sys.executable, "launch.py", "--config", "configs/smoke.py", "--workdir", str(work), f"--config.{key}={value}"],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=600,
  )
  lines = [ln for ln in r.stderr.splitlines() if ln.strip() and not ln.startswith("WARNING")]
  assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr[-2000:]
  assert len(lines) == 1 and lines[0].startswith("error: ") and key in lines[0], lines
  assert not work.exists()


@pytest.mark.slow
@pytest.mark.parametrize(
  "overrides,key,want",
  [
    (["--config.penalty.name=r1", "--config.penalty.gamma=5", "--config.model.d_norm=none"], ("penalty", "gamma"), 5.0),
    (["--config.objective.name=ebgan", "--config.objective.margin=0.5"], ("objective", "margin"), 0.5),
  ],
  ids=["r1_gamma", "ebgan_margin"],
)
def test_component_parameters_are_set_where_the_component_is_chosen(overrides, key, want, tmp_path):
  work = tmp_path / "run"
  r = subprocess.run(
    [
      sys.executable,
      "launch.py",
      "--config",
      "configs/smoke.py",
      "--workdir",
      str(work),
      "--config.train.steps=2",
      "--config.parallel.num_devices=1",
      *overrides,
    ],
    cwd=ROOT,
    capture_output=True,
    text=True,
    timeout=900,
  )
  assert r.returncode == 0, r.stderr[-3000:]
  stored = json.load(open(work / "config.json"))
  assert stored[key[0]][key[1]] == want


def test_upgrade_fills_the_keys_declared_since_a_config_was_stored():
  """A resolved config stored before the optimisers' fields were declared (no optim.*.eps) compares equal
  to today's resolved config once upgraded; what it did store is kept as it was."""
  current = config_lib.resolve(load_config("smoke"))
  old = current.to_dict()
  for who in ("g", "d"):
    del old["optim"][who]["eps"]
  old["train"]["steps"] = 7
  upgraded = config_lib.flatten(config_lib.upgrade(old))
  assert upgraded == {**config_lib.flatten(current), "train.steps": 7}
