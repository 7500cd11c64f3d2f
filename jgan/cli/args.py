"""Argument declarations shared by jgan's argparse subcommands: ranged types and a one-line-error parser.

Each subcommand declares every argument with a type that checks its range as it is parsed
(``type=positive_int``, ``type=float_in(0, 1)``, ``type=seed``, ``type=new_dir``, ...), so a bad value
fails before any import of JAX or any compilation. :class:`Parser` refuses unknown arguments (positional
or flags, no abbreviations) and reports every error as one line; :func:`parse` turns the outcome into
what ``main`` returns: the namespace, or the exit status after ``--help`` (0) or an ``error:`` line (2).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Callable, Iterable

SEED_MAX = 2**32 - 1  # jax.random.key keeps 32 bits (jgan.config_schema.SEED_MAX)
INT64_MAX = 2**63 - 1


class UsageError(ValueError):
  """A bad command line; its message is one line."""


class Parser(argparse.ArgumentParser):
  """``argparse.ArgumentParser`` that raises :class:`UsageError` (one line) instead of printing usage and
  exiting, and takes no abbreviated flags (an unknown flag is an error, never a guess)."""

  def __init__(self, *args, **kwargs):
    kwargs.setdefault("allow_abbrev", False)
    kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
    super().__init__(*args, **kwargs)

  def error(self, message: str):  # argparse's never returns: this one raises instead
    raise UsageError(f"{message} (see {self.prog} --help)")


def parse(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace | int:
  """``parser.parse_args(argv)``, or the exit status: 0 after ``--help``, 2 after printing ``error: ...``."""
  try:
    return parser.parse_args(argv)
  except UsageError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except SystemExit as e:  # --help printed
    return int(e.code or 0)


def _int(text: str) -> int:
  try:
    value = int(text)
  except ValueError:
    raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
  if not -INT64_MAX - 1 <= value <= INT64_MAX:
    raise argparse.ArgumentTypeError(f"{text} does not fit in 64 bits")
  return value


def int_in(lo: int, hi: int | None = None) -> Callable[[str], int]:
  """An argparse type: an integer in ``[lo, hi]`` (no upper bound if ``hi`` is None)."""

  def parse_int(text: str) -> int:
    value = _int(text)
    if value < lo or (hi is not None and value > hi):
      want = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
      raise argparse.ArgumentTypeError(f"must be an integer {want}, got {text}")
    return value

  parse_int.__name__ = f"int_in_{lo}_{hi}"
  return parse_int


def even_int_in(lo: int, hi: int | None = None) -> Callable[[str], int]:
  """An argparse type: an even integer in ``[lo, hi]`` (halves of a study, pairs of checks, ...)."""
  ranged = int_in(lo, hi)

  def parse_even(text: str) -> int:
    value = ranged(text)
    if value % 2:
      raise argparse.ArgumentTypeError(f"must be even, got {text}")
    return value

  parse_even.__name__ = f"even_int_in_{lo}_{hi}"
  return parse_even


positive_int = int_in(1)
nonneg_int = int_in(0)
seed = int_in(0, SEED_MAX)


def float_in(lo: float, hi: float | None = None, *, lo_open: bool = False, hi_open: bool = False):
  """An argparse type: a finite float in ``[lo, hi]`` (either end open with ``lo_open`` / ``hi_open``)."""

  def parse_float(text: str) -> float:
    try:
      value = float(text)
    except ValueError:
      raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    bad_lo = value <= lo if lo_open else value < lo
    bad_hi = hi is not None and (value >= hi if hi_open else value > hi)
    if not math.isfinite(value) or bad_lo or bad_hi:
      want = f"{'>' if lo_open else '>='} {lo:g}" if hi is None else f"in {'(' if lo_open else '['}{lo:g}, {hi:g}"
      want += "" if hi is None else (")" if hi_open else "]")
      raise argparse.ArgumentTypeError(f"must be a finite number {want}, got {text}")
    return value

  parse_float.__name__ = "float_in"
  return parse_float


positive_float = float_in(0.0, lo_open=True)
nonneg_float = float_in(0.0)


def float_list(lo: float = -math.inf, *, allow: Iterable[str] = ()) -> Callable[[str], str]:
  """An argparse type: a comma list of finite floats ``>= lo`` (or the words in ``allow``), kept as text."""
  words = tuple(allow)

  def parse_list(text: str) -> str:
    for item in (p.strip() for p in text.split(",")):
      if item in words:
        continue
      try:
        value = float(item)
      except ValueError:
        raise argparse.ArgumentTypeError(f"{item!r} in {text!r} is not a number") from None
      if not math.isfinite(value) or value < lo:
        raise argparse.ArgumentTypeError(f"{item} in {text!r} must be a finite number >= {lo:g}")
    return text

  parse_list.__name__ = "float_list"
  return parse_list


def existing_dir(text: str) -> str:
  """An argparse type: a directory that exists (a run directory to read)."""
  if not os.path.isdir(text):
    why = "is a file" if os.path.exists(text) else "does not exist"
    raise argparse.ArgumentTypeError(f"{text!r} {why}; expected a directory")
  return text


def run_dir(text: str) -> str:
  """An argparse type: a run directory to read, local (:func:`existing_dir`) or in a bucket (``gs://``)."""
  from jgan import storage

  if not storage.is_url(text):
    return existing_dir(text)
  try:
    storage.check(text, what="")
  except ValueError as e:
    raise argparse.ArgumentTypeError(str(e)) from None
  if not storage.isdir(text):
    raise argparse.ArgumentTypeError(f"{text!r} does not exist (no object under it); expected a run directory")
  return text


def existing_file(text: str) -> str:
  """An argparse type: a file that exists."""
  if not os.path.isfile(text):
    why = "is a directory" if os.path.isdir(text) else "does not exist"
    raise argparse.ArgumentTypeError(f"{text!r} {why}; expected a file")
  return text


def new_dir(text: str) -> str:
  """An argparse type: a local directory to write: absent (it will be created) or a directory, never a
  file or under one, nor a URL (only ``--workdir`` of train and eval takes ``gs://``)."""
  if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
    raise argparse.ArgumentTypeError(f"{text!r} is a URL; expected a local directory path")
  path = os.path.abspath(text)
  if os.path.exists(path) and not os.path.isdir(path):
    raise argparse.ArgumentTypeError(f"{text!r} is a file; expected a directory")
  parent = os.path.dirname(path)
  while not os.path.exists(parent) and os.path.dirname(parent) != parent:
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    raise argparse.ArgumentTypeError(f"{text!r} cannot be created: {parent} is a file")
  return text


def new_file(text: str) -> str:
  """An argparse type: a local file to write: not a directory, in a directory that exists or can be created."""
  if re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", text):
    raise argparse.ArgumentTypeError(f"{text!r} is a URL; expected a local file path")
  if os.path.isdir(text):
    raise argparse.ArgumentTypeError(f"{text!r} is a directory; expected a file name")
  new_dir(os.path.dirname(os.path.abspath(text)))
  return text


def names_in(valid: Callable[[], Iterable[str]], what: str) -> Callable[[str], str]:
  """An argparse type: a comma list of names from ``valid()`` (called when parsing: registries grow)."""

  def parse_names(text: str) -> str:
    ok = list(valid())
    for name in (p.strip() for p in text.split(",")):
      if name and name not in ok:
        raise argparse.ArgumentTypeError(f"unknown {what} {name!r}; valid choices: {', '.join(ok)}")
    return text

  parse_names.__name__ = "names_in"
  return parse_names


def one_of(values: Iterable[str], what: str) -> Callable[[str], str]:
  """An argparse type: one of ``values``; the error says ``unknown WHAT 'x'; valid choices: ...``."""
  valid = tuple(values)

  def parse_choice(text: str) -> str:
    if text not in valid:
      raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; valid choices: {', '.join(valid)}")
    return text

  parse_choice.__name__ = "one_of"
  return parse_choice
