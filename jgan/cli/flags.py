"""Command-line config flags: ``--config FILE[:ARG] --workdir DIR [--config.KEY=VALUE ...]``.

:func:`parse_cli` reads exactly these flags (``--config.KEY VALUE`` and ``--flag VALUE`` work too) and
turns every command-line config error into a ValueError with one line: a missing or broken config file,
an unknown ``--config.`` key (with the closest valid key), a value that does not parse as the key's
type, a missing ``--workdir``, an unknown flag (single-dash ones included) or a stray positional
argument. The overrides are applied names first (:mod:`jgan.config_overrides`), so a component's own
parameters can be set where the component is chosen: ``--config.penalty.name=r1 --config.penalty.gamma=5``.
"""

from __future__ import annotations

import difflib
from typing import NamedTuple

import ml_collections

HELP_FLAGS = ("-h", "--help", "--helpshort", "--helpfull")
VALID = "--config FILE[:ARG], --workdir DIR, --config.KEY=VALUE"


def help_requested(argv, doc: str) -> bool:
  """Prints ``doc`` (a subcommand module's docstring) and returns True when ``argv`` asks for help."""
  if any(a in HELP_FLAGS for a in argv):
    print(doc.strip())
    return True
  return False


class Args(NamedTuple):
  """The flags of a config command line: the ``--config`` spec, ``--workdir`` ("" if absent) and the
  ``--config.KEY=VALUE`` overrides as ``[(KEY, VALUE text)]`` in command-line order (text None: a
  ``--config.KEY`` without a value, true for a boolean key)."""

  spec: str
  workdir: str
  overrides: list[tuple[str, str | None]]


def split_args(argv, prog: str = "jgan", workdir: bool = True) -> Args:
  """Splits ``argv`` (no program name) into :class:`Args`; ValueError (one line) for anything else.

  ``workdir``: whether ``--workdir`` is one of the flags (``jgan config show`` takes none).
  """
  flags = ("--config", "--workdir") if workdir else ("--config",)
  valid = VALID if workdir else "--config FILE[:ARG], --config.KEY=VALUE"
  seen: dict[str, str] = {}
  overrides: list[tuple[str, str | None]] = []
  i = 0
  while i < len(argv):
    a = argv[i]
    name, eq, value = a.partition("=")
    if name.startswith("--noconfig.") and not eq:  # absl's spelling of a false boolean
      overrides.append((name[len("--noconfig.") :], "false"))
    elif name.startswith("--config.") and len(name) > len("--config."):
      text: str | None = value
      if not eq:  # --config.KEY VALUE, or a boolean flag alone (--config.train.progress)
        alone = i + 1 >= len(argv) or argv[i + 1].startswith("--")
        text = None if alone else argv[i + 1]
        i += 0 if alone else 1
      overrides.append((name[len("--config.") :], text))
    elif name in flags:
      if not eq:
        if i + 1 >= len(argv) or argv[i + 1].startswith("--"):
          raise ValueError(f"{name} needs a value ({'FILE[:ARG]' if name == '--config' else 'DIR'})")
        i += 1
        value = argv[i]
      if name in seen and seen[name] != value:
        raise ValueError(f"{name} is given twice ({seen[name]!r} and {value!r}); give it once")
      seen[name] = value
    elif a.startswith("-"):
      near = difflib.get_close_matches(name.lstrip("-"), [f.lstrip("-") for f in flags], n=1)
      hint = f"; did you mean --{near[0]}?" if near else ";"
      raise ValueError(f"unknown flag {name}{hint} valid flags: {valid}")
    else:
      raise ValueError(f"unexpected argument {a!r}: {prog} takes flags only ({valid})")
    i += 1
  return Args(seen.get("--config", ""), seen.get("--workdir", ""), overrides)


def load_config(args: Args) -> ml_collections.ConfigDict:
  """The config of ``args.spec`` with ``args.overrides`` applied (names first), locked; one-line errors."""
  from jgan import config as config_lib
  from jgan import config_overrides

  if not args.spec:
    raise ValueError("--config is required: an experiment file such as configs/smoke.py")
  try:
    config = config_lib.load_file(args.spec)
  except Exception as e:  # noqa: BLE001  (the file raised while loading: syntax error, bad ARG, bad import, ...)
    first = (str(e).strip().splitlines() or [""])[0]
    what = first if isinstance(e, ValueError) and first.startswith("config file ") else f"{type(e).__name__}: {first}"
    raise ValueError(f"could not load --config={args.spec}: {what}") from None
  if not isinstance(config, ml_collections.ConfigDict):
    raise ValueError(f"could not load --config={args.spec}: get_config() returned {type(config).__name__}")
  config = config_overrides.apply(config, args.overrides)
  config.lock()
  return config


def parse_cli(argv, prog: str = "jgan") -> tuple[ml_collections.ConfigDict, str]:
  """Parses ``--config FILE[:ARG] --workdir DIR [--config.KEY=VALUE ...]`` in ``argv`` (no program name).

  Returns the (locked) config with the overrides applied, and the workdir. Every error is a ValueError
  with a one-line message (see the module docstring).
  """
  args = split_args(argv, prog)
  config = load_config(args)
  if not args.workdir:
    raise ValueError("--workdir is required: the directory for config, metrics, samples and checkpoints")
  return config, args.workdir
