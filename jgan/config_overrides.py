"""Overrides of a config given as text (``--config.KEY=VALUE`` on a command line): typed, names first.

:func:`apply` applies ``[(dotted key, text), ...]`` to a config in two passes, so that a component's own
parameters can be set in the same invocation that chooses the component:

1. every ``SECTION.name`` of an open section (``model``, ``objective``, ``penalty``, ``augment``,
   ``optim.g``, ``optim.d``) that changes the component switches that section
   (:func:`jgan.config.set_component`: the new component's own fields at their registered defaults);
   then every open section gets the fields of its component that it lacks;
2. every other key is set, its text parsed as the key's type (the schema's, :mod:`jgan.config_schema`,
   else the type of the value it replaces): ``--config.penalty.name=r1 --config.penalty.gamma=5``.

Errors are one-line ValueErrors naming the override: an unknown key (with the closest valid one, and the
components that take it), a section given a value, text that does not parse as the key's type. Ranges are
checked later, by :func:`jgan.config.resolve`.
"""

from __future__ import annotations

import ast

import ml_collections

from jgan import config as config_lib
from jgan import config_schema as schema
from jgan.config_checks import check_value

NAME_KEYS = {f"{s}.name": s for s in schema.SECTIONS}
TRUE, FALSE = ("true", "t", "1", "yes"), ("false", "f", "0", "no")


def _has(c, dotted: str) -> bool:
  for part in dotted.split("."):
    if not isinstance(c, ml_collections.ConfigDict) or part not in c:
      return False
    c = c[part]
  return True


def field_type(c, key: str, current):
  """The type text for ``key`` parses as: the schema's (fixed key or the chosen component's field),
  else the type of ``current`` (configs outside the schema, e.g. the domain classifier's)."""
  if key in schema.BY_KEY:
    return schema.BY_KEY[key].type
  section = schema.section_of(key)
  if section and _has(c, f"{section}.name"):
    try:
      own = schema.component_fields(section, config_lib.section_node(c, section).name)
    except ValueError:
      own = []
    for f in own:
      if f.key == key:
        return f.type
  return type(current) if type(current) in (bool, int, float, str, tuple, list) else object


def parse_value(text: str, kind: type):
  """``text`` as a value of ``kind`` (bool, int, float, str, tuple, list; ``object``: a Python literal
  or else the text). Raises ValueError saying why it does not parse."""
  s = text.strip()
  if kind is bool:
    if s.lower() in TRUE + FALSE:
      return s.lower() in TRUE
    raise ValueError("not a boolean (true or false)")
  if kind is int:
    try:
      return int(s)
    except ValueError:
      raise ValueError(f"{text!r} is not an integer") from None
  if kind is float:
    try:
      return float(s)
    except ValueError:
      raise ValueError(f"{text!r} is not a number") from None
  if kind is str:
    return text
  try:
    value = ast.literal_eval(s)
  except (ValueError, SyntaxError):
    if kind is object:
      return text
    raise ValueError(f"{text!r} is not a Python {kind.__name__} literal") from None
  if kind in (tuple, list):
    if not isinstance(value, (tuple, list)):
      raise ValueError(f"{text!r} is not a {kind.__name__}")
    return kind(value)
  return value


def _source(key: str, text: str | None) -> str:
  return f"--config.{key}" if text is None else f"--config.{key}={text}"


def _set(c, key: str, text: str | None) -> None:
  """Sets dotted ``key`` of ``c`` from ``text`` (see the module docstring); one-line ValueErrors."""
  parent, _, leaf = key.rpartition(".")
  if not _has(c, key):
    ref = dict(config_lib.walk(c))
    msg = config_lib.unknown_key_message(key, ref, f" (from {_source(key, text)})")
    section = schema.section_of(key)
    if section and _has(c, parent) and parent == section and _has(c, f"{section}.name"):
      owners = config_lib.owners_hint(section, leaf)
      msg += owners + (f": choose one with --config.{section}.name=..." if owners else "")
    raise ValueError(msg)
  node = config_lib.section_node(c, parent) if parent else c
  current = node[leaf]
  if isinstance(current, ml_collections.ConfigDict):
    first = next(iter(current.keys()), "KEY")
    raise ValueError(
      f"bad value in {_source(key, text)}: {key!r} is a section; set its keys instead, e.g. --config.{key}.{first}=..."
    )
  kind = field_type(c, key, current)
  if text is None and kind is not bool:
    raise ValueError(f"{_source(key, text)} needs a value: --config.{key}=VALUE ({kind.__name__})")
  try:
    value = True if text is None else parse_value(text, kind)
  except ValueError as e:
    like = f" like the default {current!r}" if current is not None else ""
    raise ValueError(f"bad value in {_source(key, text)}: {e}; expected {kind.__name__}{like}") from None
  with node.ignore_type():  # e.g. a float given for a key an experiment file set to an int
    node[leaf] = value


def apply(c: ml_collections.ConfigDict, overrides: list[tuple[str, str | None]]) -> ml_collections.ConfigDict:
  """A copy of config ``c`` with ``overrides`` (``[(dotted key, text)]``; text None: a boolean key given
  alone, true) applied, names first (module docstring). Raises ValueError (one line naming the override)
  for an unknown key, a section, text that does not parse as the key's type or an unknown component name."""
  out = ml_collections.ConfigDict(c.to_dict())
  for key, text in overrides:
    if key in NAME_KEYS and _has(out, key) and text is not None:
      section = NAME_KEYS[key]
      check_value(schema.BY_KEY[key], text)
      if config_lib.section_node(out, section).name != text:
        config_lib.set_component(out, section, text)
  config_lib.fill_components(out)
  for key, text in overrides:
    if key not in NAME_KEYS or not _has(out, key) or text is None:
      _set(out, key, text)
  return out
