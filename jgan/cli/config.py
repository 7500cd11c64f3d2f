"""``jgan config``: the config schema, and an experiment's resolved config, as text.

    jgan config show [FILE[:ARG]] [--config.KEY=VALUE ...] [--changed]
    jgan config docs

``show`` prints the resolved config (:func:`jgan.config.resolve`) of an experiment file (default:
``jgan.config.defaults()``), overrides applied as ``jgan train`` applies them, one key per line with
its value, type, default, valid range or choices and doc; ``*`` marks values that differ from the
default, and ``--changed`` prints only those, as the Python lines that set them. ``docs`` prints
``docs/config.md``: every key of the schema and every registered component's own fields
(:mod:`jgan.config_schema`, the one table all of them come from).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import ml_collections


def _text(v) -> str:
  return repr(v) if isinstance(v, str) else str(v)


def _leaf(c, key: str):
  for part in key.split("."):
    c = c[part]
  return c


def rows(config: ml_collections.ConfigDict) -> list[tuple[str, str, str, str, str]]:
  """``(key, value, type, default, "doc; valid: ...")`` of every key of resolved ``config``, in schema order
  (the valid values last: choices lists can be long)."""
  from jgan import config_schema as schema
  from jgan.config_checks import describe

  out = []
  for f in schema.fields_of(config):
    value = _leaf(config, f.key)
    mark = "" if value == f.default and type(value) is type(f.default) else " *"
    valid = describe(f)
    out.append(
      (f.key, _text(value) + mark, f.type.__name__, _text(f.default), f.doc + (f"; valid: {valid}" if valid else ""))
    )
  return out


def changed_lines(config: ml_collections.ConfigDict) -> list[str]:
  """The Python lines ``c.KEY = VALUE`` that take :func:`jgan.config.defaults` to resolved ``config``:
  the keys whose value is not their default (a component's fields: not its registered default), component
  names first (choosing a component sets its fields to their defaults, :func:`jgan.config.set_component`)."""
  from jgan import config_schema as schema

  out = []
  for f in schema.fields_of(config):
    value = _leaf(config, f.key)
    if value != f.default or type(value) is not type(f.default):
      out.append((not f.key.endswith(".name"), f"c.{f.key} = {value!r}"))
  return [line for _, line in sorted(out, key=lambda t: t[0])]


def _table(header: tuple[str, ...], body: Sequence[tuple[str, ...]]) -> list[str]:
  widths = [max(len(r[i]) for r in [header, *body]) for i in range(len(header) - 1)]
  fmt = lambda r: "  ".join(x.ljust(w) for x, w in zip(r, widths)) + "  " + r[-1]
  return [fmt(header), *map(fmt, body)]


def show(spec: str, overrides: list[tuple[str, str | None]], changed: bool = False) -> str:
  """The text of ``jgan config show`` (module docstring); ValueError (one line) for a bad file or value."""
  from jgan import config as config_lib
  from jgan import config_overrides
  from jgan.cli import flags

  base = flags.load_config(flags.Args(spec, "", overrides)) if spec else None
  if base is None:
    base = config_overrides.apply(config_lib.defaults(), overrides)
  resolved = config_lib.resolve(base)
  if changed:
    return "\n".join(changed_lines(resolved)) + "\n"
  title = f"{spec or 'jgan.config.defaults()'} resolved ({len(rows(resolved))} keys; * = not the default)"
  lines = [title, ""] + _table(("key", "value", "type", "default", "doc; valid values"), rows(resolved))
  return "\n".join(lines) + "\n"


def main(argv) -> int:
  """``jgan config show ...`` / ``jgan config docs``; 0, or 2 after one ``error:`` line."""
  from jgan.cli import flags

  if not argv or argv[0] in flags.HELP_FLAGS:
    print(__doc__.strip())
    return 0 if argv else 2
  action, rest = argv[0], argv[1:]
  try:
    if action == "docs":
      if rest:
        raise ValueError(f"unexpected argument {rest[0]!r}: jgan config docs takes none")
      from jgan import config_docs

      print(config_docs.render(), end="")
      return 0
    if action != "show":
      raise ValueError(f"unknown action {action!r}; valid choices: show, docs")
    if any(a in flags.HELP_FLAGS for a in rest):
      print(__doc__.strip())
      return 0
    changed = "--changed" in rest
    rest = [a for a in rest if a != "--changed"]
    spec = rest[0] if rest and not rest[0].startswith("-") else ""
    args = flags.split_args(rest[1:] if spec else rest, prog="jgan config show", workdir=False)
    print(show(spec or args.spec, args.overrides, changed), end="")
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0
