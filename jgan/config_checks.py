"""What a valid config value is: the checks a schema field carries, and the type and range test.

A check (:class:`Range`, :class:`Choices`, :class:`Rule`) has ``describe() -> str`` (for ``jgan config
show`` and ``docs/config.md``) and ``error(key, value) -> str | None``: one line naming the key, the value
and what is valid. :class:`Field` is one key of the schema (:mod:`jgan.config_schema`);
:func:`check_value` tests a value against it: the type first (bool is not int; a float must be finite,
an int may stand for a float), then the check; :func:`config_from` builds a config of the fields'
defaults. Leaf module: no jgan imports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, NamedTuple

import ml_collections

INT64_MAX = 2**63 - 1


def _fmt(x) -> str:
  return f"{x:g}" if isinstance(x, float) else str(x)


class Range(NamedTuple):
  """A number in ``[lo, hi]`` (either bound may be open or absent; ints are also kept within int64)."""

  lo: float | None = None
  hi: float | None = None
  lo_open: bool = False
  hi_open: bool = False

  def describe(self) -> str:
    if self.hi is None:
      return f"{'>' if self.lo_open else '>='} {_fmt(self.lo)}" if self.lo is not None else "any"
    if self.lo is None:
      return f"{'<' if self.hi_open else '<='} {_fmt(self.hi)}"
    return f"{'(' if self.lo_open else '['}{_fmt(self.lo)}, {_fmt(self.hi)}{')' if self.hi_open else ']'}"

  def error(self, key: str, value) -> str | None:
    if isinstance(value, int) and not -INT64_MAX - 1 <= value <= INT64_MAX and self.hi is None:
      return f"{key}={value!r} is out of range: it must be {self.describe()} and fit in 64 bits (<= {INT64_MAX})"
    lo_bad = self.lo is not None and (value <= self.lo if self.lo_open else value < self.lo)
    hi_bad = self.hi is not None and (value >= self.hi if self.hi_open else value > self.hi)
    if not (lo_bad or hi_bad):
      return None
    if self.lo is not None and self.hi is not None and self.hi - self.lo <= 1:  # e.g. [0, 1): read as a whole
      return f"{key}={value!r} must be in {self.describe()}"
    if hi_bad:
      return f"{key}={value!r} must be {'<' if self.hi_open else '<='} {_fmt(self.hi)}"
    if (self.lo == 0 and self.lo_open) or (self.lo == 1 and not self.lo_open and isinstance(value, int)):
      return f"{key}={value!r} must be a positive {'integer' if isinstance(value, int) else 'number'}"
    return f"{key}={value!r} must be {'>' if self.lo_open else '>='} {_fmt(self.lo)}"

  def __str__(self) -> str:
    return self.describe()


class Choices(NamedTuple):
  """One of a set of strings: a tuple, or a function returning them (registries that user code extends)."""

  values: tuple[str, ...] | Callable[[], Iterable[str]]

  def options(self) -> list[str]:
    values = self.values() if callable(self.values) else self.values
    if hasattr(values, "choices"):  # a jgan.registry.Registry: its own order (sorted or registration)
      return values.choices().split(", ")
    return list(values)

  def describe(self) -> str:
    return " | ".join(self.options())

  def error(self, key: str, value) -> str | None:
    if value in self.options():
      return None
    return f"unknown {key}={value!r}; valid choices: {', '.join(self.options())}"


class Rule(NamedTuple):
  """Any other check: ``check(value)`` returns what is wrong (completing ``KEY=VALUE ...``) or None."""

  check: Callable[[Any], str | None]
  text: str

  def describe(self) -> str:
    return self.text

  def error(self, key: str, value) -> str | None:
    why = self.check(value)
    return None if why is None else f"{key}={value!r} {why}"


Check = Range | Choices | Rule


class Field(NamedTuple):
  """One config key: dotted ``key``, value ``type`` (int, float, bool, str; ``object``: unchecked),
  ``default``, ``check`` (a range, choices or rule; None: any value of the type) and a one-line ``doc``."""

  key: str
  type: type
  default: Any
  check: Check | None
  doc: str


def type_error(field: Field, value) -> str | None:
  """What is wrong with ``value``'s type (or finiteness) for ``field``, one line, or None."""
  t = field.type
  if t is object:
    return None
  if t is float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if ok and not math.isfinite(value):
      return f"{field.key}={value!r} must be a finite number"
  elif t is int:
    ok = isinstance(value, int) and not isinstance(value, bool)
  elif t is tuple:  # a config read back from JSON holds a list
    ok = isinstance(value, (tuple, list))
  else:
    ok = isinstance(value, t)
  if ok:
    return None
  return (
    f"{field.key}={value!r} has type {type(value).__name__}; expected {t.__name__} like the default {field.default!r}"
  )


def check_value(field: Field, value) -> None:
  """Raises ValueError (one line naming the key, the value and what is valid) if ``value`` does not fit."""
  why = type_error(field, value) or (field.check.error(field.key, value) if field.check is not None else None)
  if why:
    raise ValueError(why)


def describe(field: Field) -> str:
  """The valid values of ``field`` as text: its range, choices or rule ('' for any value of its type)."""
  return field.check.describe() if field.check is not None else ""


def config_from(fields: Iterable[Field]) -> ml_collections.ConfigDict:
  """A new ConfigDict holding every field's default, sections nested by the dotted keys, in order."""
  c = ml_collections.ConfigDict()
  for f in fields:
    *sections, leaf = f.key.split(".")
    node = c
    for s in sections:
      if s not in node:
        node[s] = ml_collections.ConfigDict()
      node = node[s]
    node[leaf] = f.default
  return c
