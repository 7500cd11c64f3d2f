"""jgan's command line: ``jgan SUBCOMMAND [args]`` (also ``python -m jgan`` and ``python launch.py``).

Each subcommand is a module of this package with ``main(argv) -> exit status``; the modules parse
arguments and print, and leave the work to the library (the training core and :mod:`jgan.labs`).
Exit status: 0 success, 2 a bad input or a failure named in one ``error:`` line.
"""

from __future__ import annotations

import importlib
import logging
import sys

# name -> (module, one-line description). ``jgan --help`` lists them in this order.
SUBCOMMANDS = {
  "train": ("jgan.cli.train", "train a GAN from a config file (the default: `jgan --config ...`)"),
  "eval": ("jgan.cli.eval", "evaluate a run's generator or image files (FID, KID, IS, precision/recall, modes)"),
  "sample": ("jgan.cli.sample", "write a run's samples as PNG files or one .npz (jgan eval's very samples)"),
  "latent": ("jgan.cli.latent", "latent-space figures: interpolation, walks, arithmetic, neighbours"),
  "sweep": ("jgan.cli.sweep", "a reproducible sweep over config values, with its results table"),
  "dynamics": ("jgan.cli.dynamics", "the game-dynamics lab: bilinear game, Dirac-GAN, update rules"),
  "classifier": ("jgan.cli.classifier", "train the domain classifier of the mnist_* metrics"),
  "judge": ("jgan.cli.judge", "a real-vs-fake study with people (HYPE): study page, answers, report"),
  "data": ("jgan.cli.data", "prepare a TFDS dataset or your own folder / zip of images (jgan data prepare)"),
  "config": ("jgan.cli.config", "an experiment's resolved config with each key's doc (jgan config show FILE)"),
}


class _Stderr(logging.StreamHandler):
  """A handler writing to the *current* ``sys.stderr`` (tests and tools may swap it after set-up)."""

  @property
  def stream(self):
    return sys.stderr

  @stream.setter
  def stream(self, value):
    pass


class _Lines(logging.Formatter):
  """The library's messages as the command line prints them: info as is, ``warning: ...``, ``error: ...``."""

  def format(self, record):
    text = record.getMessage()
    if record.levelno >= logging.ERROR:
      return f"error: {text}"
    if record.levelno >= logging.WARNING:
      lead = len(text) - len(text.lstrip("\n"))  # a message that starts below a progress bar
      return f"{text[:lead]}warning: {text[lead:]}"
    return text


def show_library_messages(level: int = logging.INFO) -> None:
  """Prints the ``jgan`` loggers' messages (library code logs; the command line decides what is shown)
  on stderr, one line each, from ``level`` up. Idempotent."""
  logger = logging.getLogger("jgan")
  if not any(isinstance(h, _Stderr) for h in logger.handlers):
    handler = _Stderr()
    handler.setFormatter(_Lines())
    logger.addHandler(handler)
  logger.setLevel(level)
  logger.propagate = False  # absl's root handler would print them a second time


def usage() -> str:
  """The text of ``jgan --help``."""
  width = max(map(len, SUBCOMMANDS))
  lines = ["usage: jgan SUBCOMMAND [args]     (jgan SUBCOMMAND --help for its arguments)", "", "subcommands:"]
  lines += [f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()]
  lines += ["", "Without a subcommand, arguments that start with '-' go to `train`."]
  return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
  """Runs ``jgan``'s subcommand named by ``argv[0]`` (default ``sys.argv[1:]``); returns its exit status.

  Without ``argv`` this is the process's own command line (the console script, ``python -m jgan``,
  launch.py): ``jgan train`` then keeps its signal guard until the process ends.
  """
  entry = argv is None
  argv = sys.argv[1:] if argv is None else list(argv)
  if not argv or argv[0] in ("-h", "--help", "help"):
    print(usage())
    return 0 if argv else 2
  if argv[0] == "--version":
    import jgan

    print(f"jgan {jgan.__version__}")
    return 0
  name, rest = (argv[0], argv[1:]) if not argv[0].startswith("-") else ("train", argv)
  if name not in SUBCOMMANDS:
    print(f"error: unknown subcommand {name!r}; valid choices: {', '.join(SUBCOMMANDS)}", file=sys.stderr)
    return 2
  show_library_messages()
  module = importlib.import_module(SUBCOMMANDS[name][0])
  return module.main(rest, until_exit=True) if name == "train" and entry else module.main(rest)
