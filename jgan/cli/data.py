"""``jgan data prepare NAME [--data_dir DIR]``: download and prepare a TFDS dataset as array_record.

NAME is one of jgan's image datasets (mnist, fashion_mnist, cifar10, celeb_a, lsun_bedroom, mnist5k)
or any TFDS name. Preparing needs TensorFlow (``pip install 'jgan[prepare]'``); training afterwards
does not. Then train with ``--config.data.data_dir=DIR`` (or set ``$TFDS_DATA_DIR``).
``jgan data check NAME [--data_dir DIR] [--split SPLIT]`` says whether jgan can read it, and if not why.
"""

from __future__ import annotations

import argparse
import re
import sys


def _name(text: str) -> str:
  """A TFDS name: lower-case letters, digits and ``_`` (optionally ``/config`` and ``:version``)."""
  if not re.fullmatch(r"[a-z][a-z0-9_]*(/[A-Za-z0-9_.-]+)?(:[0-9.*]+)?", text):
    raise argparse.ArgumentTypeError(f"{text!r} is not a dataset name (e.g. cifar10, svhn_cropped)")
  return text


def _parser() -> argparse.ArgumentParser:
  from jgan.cli import args

  p = args.Parser(prog="jgan data", description=__doc__.split("\n\n")[0])
  sub = p.add_subparsers(dest="action", required=True, parser_class=args.Parser)
  for action, text in (("prepare", "download and prepare NAME"), ("check", "can jgan read NAME?")):
    a = sub.add_parser(action, help=text)
    a.add_argument("name", type=_name, help="a jgan dataset or any TFDS name (e.g. cifar10, svhn_cropped)")
    a.add_argument(
      "--data_dir",
      default=None,
      type=args.new_dir,
      help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)",
    )
    if action == "prepare":
      a.add_argument("--no_progress", action="store_true", help="no progress bars")
    else:
      a.add_argument("--split", default=None, help="a split to look for (e.g. test)")
  return p


def main(argv) -> int:
  """Entry point of ``jgan data``; returns 0 on success, 2 with one ``error:`` line otherwise."""
  from jgan.cli import flags

  if flags.help_requested(argv, __doc__) and len(argv) <= 1:
    return 0
  from jgan.cli import args as args_lib

  args = args_lib.parse(_parser(), argv)
  if isinstance(args, int):
    return args
  from jgan.data import prepare

  try:
    if args.action == "prepare":
      path = prepare.prepare(args.name, args.data_dir, progress=not args.no_progress)
      print(f"{args.name}: ready in {path}")
      return 0
    why = prepare.diagnose(args.name, args.data_dir, args.split)
    print(f"{args.name}: {why or 'ready'}")
    return 2 if why else 0
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
