"""The sweep grammar of :mod:`jgan.labs.sweep`: a spec's axes, the runs they expand to and each run's config.

``SPEC := AXIS (";" AXIS)*``, ``AXIS := KEY "=" V1,V2,... | KEY "=" A:B[:S]`` (see :mod:`jgan.labs.sweep`).
Nothing here trains or touches files; every error is a ValueError naming the bad axis, key or value.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import re

import ml_collections

ARG_KEY = "arg"
_RANGE = re.compile(r"^(-?\d+):(-?\d+)(?::(-?\d+))?$")


@dataclasses.dataclass(frozen=True)
class Run:
  """One point of a sweep: its name, the config argument and the ``(key, value)`` overrides."""

  name: str
  arg: str | None
  overrides: tuple[tuple[str, object], ...]
  labels: tuple[tuple[str, str], ...]  # the multi-valued axes' (key, value text): name and table row

  @property
  def group(self) -> tuple[tuple[str, str], ...]:
    """The run's table row: its labels without the seed."""
    return tuple((k, v) for k, v in self.labels if k != "seed")

  @property
  def seed_label(self) -> str:
    return dict(self.labels).get("seed", "")


def parse_spec(spec: str) -> list[tuple[str, list[str]]]:
  """``"model.pack=1,2;seed=0:3"`` -> ``[("model.pack", ["1", "2"]), ("seed", ["0", "1", "2"])]``.

  Values stay text here (typed against the config in :func:`expand`). Raises ValueError naming the bad
  axis for an empty spec, an axis without ``=``, an empty value, an empty range or a repeated key.
  """
  axes, seen = [], set()
  for part in spec.split(";"):
    part = part.strip()
    if not part:
      continue
    key, eq, raw = part.partition("=")
    key, raw = key.strip(), raw.strip()
    if not eq or not key or not raw:
      raise ValueError(f"bad sweep axis {part!r}: expected KEY=V1,V2,... or KEY=A:B[:S]")
    if key in seen:
      raise ValueError(f"sweep key {key!r} appears twice; give all its values in one axis")
    seen.add(key)
    m = _RANGE.match(raw)
    if m:
      a, b, s = int(m.group(1)), int(m.group(2)), int(m.group(3) or 1)
      if s == 0 or not range(a, b, s):
        raise ValueError(f"sweep axis {part!r} is an empty range (range({a}, {b}, {s}))")
      values = [str(v) for v in range(a, b, s)]
    else:
      values = [v.strip() for v in raw.split(",")]
      if any(not v for v in values):
        raise ValueError(f"sweep axis {part!r} has an empty value")
    if len(set(values)) != len(values):
      raise ValueError(f"sweep axis {part!r} repeats a value")
    axes.append((key, values))
  if not axes:
    raise ValueError("empty sweep: give at least one axis, e.g. --sweep 'seed=0:10'")
  return axes


def load_config(spec: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """``get_config([arg])`` of the config file in ``spec`` = ``FILE[:ARG]`` (:func:`jgan.config.load_file`)."""
  from jgan import config as config_lib

  return config_lib.load_file(spec, arg)


def _parse_value(key: str, text: str, current):
  """``text`` as the type of the config field's ``current`` value (bool, int, float or str)."""
  try:
    if isinstance(current, bool):
      return {"true": True, "1": True, "false": False, "0": False}[text.lower()]
    if isinstance(current, (int, float)):
      return type(current)(text)
  except (KeyError, ValueError):
    raise ValueError(
      f"sweep value {key}={text!r} is not a {type(current).__name__} like the default {current!r}"
    ) from None
  if isinstance(current, (str, type(None))):
    return text
  raise ValueError(f"sweep key {key!r} is a section ({type(current).__name__}); sweep its fields instead")


def _field(c, key: str):
  node = c
  parts = key.split(".")
  for i, part in enumerate(parts):
    if not isinstance(node, ml_collections.ConfigDict) or part not in node:
      siblings = sorted(node.keys()) if isinstance(node, ml_collections.ConfigDict) else []
      near = difflib.get_close_matches(part, siblings, n=1)
      where = ".".join(parts[:i]) or "the top level"
      hint = f" (did you mean {'.'.join(parts[:i] + near)!r}?)" if near else ""
      raise ValueError(f"unknown config key {key!r} in the sweep{hint}; keys at {where}: {', '.join(siblings)}")
    node = node[part]
  return node


def with_components(c: ml_collections.ConfigDict, overrides: dict) -> ml_collections.ConfigDict:
  """``c`` ready for ``overrides``: each component name among them that changes its open section switches
  it (:func:`jgan.config.set_component`: the new component's fields at their defaults), and a section whose
  own field is overridden but missing gets its component's fields; so ``penalty.name=r1;penalty.gamma=1,5``
  sweeps R1's weight. Sections the overrides do not need are left as they are (their runs' configs, and
  so their results' digests, do not change). Returns ``c``."""
  from jgan import config as config_lib
  from jgan import config_overrides, config_schema

  def has(key: str) -> bool:
    try:
      _field(c, key)
    except ValueError:
      return False
    return True

  for key, value in overrides.items():
    section = config_overrides.NAME_KEYS.get(key)
    if section and has(key) and config_lib.section_node(c, section).name != value:
      config_lib.set_component(c, section, value)
  for key in overrides:
    section = config_schema.section_of(key)
    if section and not has(key) and has(f"{section}.name"):
      name = config_lib.section_node(c, section).name
      for f in config_schema.component_fields(section, name):
        leaf = f.key.rpartition(".")[2]
        if leaf not in config_lib.section_node(c, section):
          config_lib.section_node(c, section)[leaf] = f.default
  return c


def _dir_name(labels) -> str:
  # Path-safe and readable: "arg=ring8:gan" -> "arg=ring8_gan"; the separator between axes is ",".
  return ",".join(f"{k}={re.sub(r'[^A-Za-z0-9._+-]', '_', v)}" for k, v in labels) or "run"


def expand(config_spec: str, sweep_spec: str) -> list[Run]:
  """The runs of a sweep, in order (first axis slowest), with values typed against the config.

  Raises ValueError for a bad spec, an unknown key, a value of the wrong type or two runs whose
  directory names collide.
  """
  axes = parse_spec(sweep_spec)
  arg_axis = [vals for key, vals in axes if key == ARG_KEY]
  runs: list[Run] = []
  names: dict[str, tuple] = {}
  for combo in itertools.product(*[vals for _, vals in axes]):
    chosen = list(zip([k for k, _ in axes], combo))
    arg = dict(chosen).get(ARG_KEY) if arg_axis else None
    base = with_components(load_config(config_spec, arg), {k: v for k, v in chosen if k != ARG_KEY})
    overrides = []
    for key, text in chosen:
      if key != ARG_KEY:
        overrides.append((key, _parse_value(key, text, _field(base, key))))
    labels = tuple((k, v) for (k, v), (_, vals) in zip(chosen, axes) if len(vals) > 1)
    name = _dir_name(labels)
    if name in names:
      raise ValueError(f"runs {names[name]!r} and {labels!r} get the same directory name {name!r}")
    names[name] = labels
    runs.append(Run(name=name, arg=arg, overrides=tuple(overrides), labels=labels))
  return runs


def run_config(config_spec: str, run: Run) -> ml_collections.ConfigDict:
  """The full config of ``run`` (progress bars off: a sweep prints one line per run instead)."""
  c = with_components(load_config(config_spec, run.arg), dict(run.overrides))
  c.update_from_flattened_dict(dict(run.overrides))
  c.train.progress = False
  return c


def config_digest(c: ml_collections.ConfigDict) -> str:
  """sha256 of the config's canonical JSON: what identifies a run's results."""
  return hashlib.sha256(c.to_json_best_effort(sort_keys=True).encode()).hexdigest()


# Keys an ensemble member stores with its own values (jgan.ensemble_step.make_members): not the sweep's.
MEMBER_KEYS = ("train.num_seeds", "parallel.num_devices")


def holds_results_of(run_dir: str, done: dict, config: ml_collections.ConfigDict) -> bool:
  """Whether the finished run in ``run_dir`` (its results ``done``) was trained with ``config``: the same
  digest, or (a run finished by an earlier jgan, before keys such as ``optim.g.eps`` were declared) its
  stored resolved config equal to ``config``'s once the keys declared since are filled in at their
  defaults (:func:`jgan.config.upgrade`)."""
  import json
  import os

  from jgan import config as config_lib

  if done["config_sha256"] == config_digest(config):
    return True
  path = os.path.join(run_dir, "config.json")
  if not os.path.exists(path):
    return False
  with open(path) as f:
    stored = config_lib.flatten(config_lib.upgrade(json.load(f)))
  try:
    current = config_lib.flatten(config_lib.resolve(config))
  except ValueError:
    return False
  current.update({k: stored[k] for k in MEMBER_KEYS if k in stored})
  normal = lambda flat: {k: list(v) if isinstance(v, tuple) else v for k, v in flat.items()}
  return normal(stored) == normal(current)
