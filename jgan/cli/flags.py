"""Command-line config flags: ``--config FILE[:ARG] --workdir DIR [--config.KEY=VALUE ...]``.

:func:`parse_cli` turns every command-line config error (unknown ``--config.x`` key, a value of the wrong
type, a missing or broken config file, a missing ``--workdir``) into a ValueError with one line.
"""

from __future__ import annotations

import re

import ml_collections

from jgan import config as config_lib

HELP_FLAGS = ("-h", "--help", "--helpshort", "--helpfull")


def help_requested(argv, doc: str) -> bool:
  """Prints ``doc`` (a subcommand module's docstring) and returns True when ``argv`` asks for help.

  absl's own ``--help`` would list every absl flag of every imported library; the module docstring says
  what the subcommand takes.
  """
  if any(a in HELP_FLAGS for a in argv):
    print(doc.strip())
    return True
  return False


def _config_overrides(argv) -> list[tuple[str, str]]:
  """``(dotted key, raw text)`` of every ``--config.KEY=VALUE`` (or ``--config.KEY VALUE``) argument."""
  out = []
  for i, a in enumerate(argv):
    if a.startswith("--config."):
      key, eq, val = a[len("--config.") :].partition("=")
      out.append((key, val if eq else (argv[i + 1] if i + 1 < len(argv) else "")))
  return out


def parse_cli(argv, flag_values=None, prog: str = "jgan") -> tuple[ml_collections.ConfigDict, str]:
  """Parses the flags ``--config FILE[:ARG] --workdir DIR [--config.KEY=VALUE ...]`` in ``argv``.

  ``argv`` holds the arguments only (no program name; ``prog`` stands in for it). Returns the (locked)
  config and the workdir. Every error is a ValueError with a one-line message:
  a missing or broken config file, an unknown ``--config.`` key (with the closest valid key), a value
  that does not parse as the field's type, a missing ``--workdir``.
  """
  from absl import flags
  from ml_collections import config_flags

  argv = [prog, *argv]
  fv = flags.FLAGS if flag_values is None else flag_values
  if "config" not in fv:
    # The --config.KEY overrides are registered from argv when the flag is defined.
    config_flags.DEFINE_config_file(
      "config",
      None,
      "Experiment config file (configs/*.py[:arg]).",
      lock_config=True,
      flag_values=fv,
      sys_argv=list(argv),
    )
    flags.DEFINE_string("workdir", None, "Directory for config, metrics, samples and checkpoints.", flag_values=fv)
  spec = _config_spec(argv)
  try:
    fv(argv)
  except flags.Error as e:
    raise ValueError(_flag_error_message(str(e), fv, spec)) from None
  except (AttributeError, KeyError) as e:  # ml_collections: an unknown key in a --config.KEY override
    raise ValueError(_unknown_override_message(argv, e)) from None
  except Exception as e:  # the config file raised while loading (syntax error, bad import, ...)
    raise ValueError(f"could not load --config={spec}: {type(e).__name__}: {str(e).splitlines()[0]}") from None
  if fv["config"].value is None:
    raise ValueError("--config is required: an experiment file such as configs/smoke.py")
  try:
    config = fv.config
    config.get("seed")  # a config file that failed to load raises on first access
  except OSError as e:
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip()]
    raise ValueError(f"could not load --config={spec}: {lines[-1]}") from None
  if not fv.workdir:
    raise ValueError("--workdir is required: the directory for config, metrics, samples and checkpoints")
  return config, fv.workdir


def _config_spec(argv) -> str:
  """The value of ``--config`` in ``argv`` ("" if absent)."""
  for i, a in enumerate(argv):
    if a.startswith("--config="):
      return a.partition("=")[2]
    if a == "--config" and i + 1 < len(argv):
      return argv[i + 1]
  return ""


def _flag_error_message(text: str, fv, spec: str) -> str:
  """One line for an absl flag error: a config file that raised, a bad --config.KEY value, a bad flag."""
  lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
  first = lines[0]
  if "Error whilst parsing config file" in text:  # get_config() raised; its traceback ends with the error
    return f"could not load --config={spec}: {lines[-1]}"
  if first.startswith("flag --config.") and ": " in first:  # a value that does not parse as the field's type
    flag, _, why = first[len("flag ") :].partition(": ")
    key = flag[len("--config.") :].partition("=")[0]
    field = fv["config"].value
    try:
      for part in key.split("."):
        field = field[part]
    except (KeyError, TypeError, AttributeError):
      return f"bad value in {flag}: {why}"
    if isinstance(field, ml_collections.ConfigDict):
      return (
        f"bad value in {flag}: {key!r} is a section; set its keys instead, e.g. --config.{key}.{next(iter(field))}=..."
      )
    if isinstance(field, bool):
      why = "not a boolean"
    return f"bad value in {flag}: {why}; expected {type(field).__name__} like the default {field!r}"
  m = re.match(r"Unknown command line(?: flag)? '([^']+)'(?:\. Did you mean: ([\w.]+)\s*\?)?", first)
  if m:
    hint = f"; did you mean --{m.group(2)}?" if m.group(2) else ";"
    return f"unknown flag --{m.group(1)}{hint} valid flags: --config FILE[:ARG], --workdir DIR, --config.KEY=VALUE"
  return first.replace("Flag ", "").replace("flag ", "")


def _unknown_override_message(argv, e: BaseException) -> str:
  """The one-line message for an unknown ``--config.KEY`` (found by loading the file without overrides)."""
  try:
    ref = dict(config_lib.walk(config_lib.load_file(_config_spec(argv))))
  except Exception:  # noqa: BLE001 (fall back to the library's own message)
    return f"unknown config key: {str(e).strip(chr(34) + chr(39))}"
  for key, raw in _config_overrides(argv):
    if key not in ref:
      return config_lib.unknown_key_message(key, ref, f" (from --config.{key}={raw})")
  return f"bad config override: {e}"
