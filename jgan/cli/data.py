"""``jgan data prepare``: make a dataset jgan trains on, from TFDS or from your own images.

    jgan data prepare NAME [--data_dir DIR]                   # a TFDS dataset (mnist, cifar10, celeb_a, ...)
    jgan data prepare PATH --name NAME --image_size S [--crop center|none]
        [--labels auto|subfolders|dataset.json|none] [--channels auto|1|3] [--skip_bad] [--data_dir DIR]
    jgan data check NAME [--data_dir DIR] [--split SPLIT]     # can jgan read NAME? if not, why
    jgan data list [--data_dir DIR]                           # the datasets prepared from your images

PATH is a folder of PNG / JPEG / WebP / BMP images (searched recursively) or a zip of them, e.g. a
stylegan2-ada dataset zip. Every image is converted once (grey / RGBA / palette / 16-bit / CMYK, EXIF
orientation) to the dataset's channels (auto: 1 if all images are grey, else 3), centre-cropped
(``--crop none``: squashed) and resized to S px, and written as a TFDS dataset under DIR/NAME.
Labels: ``subfolders`` (one top-level sub-folder per class), ``dataset.json`` (stylegan2-ada's),
``none``; ``auto`` (the default) reads dataset.json when PATH has one, else none. Files that cannot be
read (truncated, not images) are listed and refused, or left out with ``--skip_bad`` (recorded in the
dataset's metadata). Then: ``jgan train ... --config.data.name=NAME --config.data.image_size=S``
(``--config.data.data_dir=DIR`` if you gave one; ``--config.model.conditional=True`` uses the labels).

A TFDS NAME needs TensorFlow to prepare (``pip install 'jgan[prepare]'``); training never does, and
your own images never need it.
"""

from __future__ import annotations

import argparse
import os
import re
import sys

PATH_ONLY = ("crop", "labels", "channels", "skip_bad")  # prepare PATH's own flags (--name, --image_size: a PATH)
_TFDS_NAME = re.compile(r"[a-z][a-z0-9_]*(/[A-Za-z0-9_.-]+)?(:[0-9.*]+)?")


def _name(text: str) -> str:
  """A TFDS name: lower-case letters, digits and ``_`` (optionally ``/config`` and ``:version``)."""
  if not _TFDS_NAME.fullmatch(text):
    raise argparse.ArgumentTypeError(f"{text!r} is not a dataset name (e.g. cifar10, svhn_cropped)")
  return text


def _looks_like_path(text: str) -> bool:
  return os.path.exists(text) or "/" in text or os.sep in text or text.lower().endswith(".zip")


def _name_or_path(text: str) -> str:
  """``prepare``'s argument: a TFDS name, or a folder / zip of images (an existing path, or one with a
  ``/`` or ending in ``.zip``: whether it exists is checked once the other flags are known)."""
  if _TFDS_NAME.fullmatch(text) or _looks_like_path(text):
    return text
  raise argparse.ArgumentTypeError(
    f"{text!r} is not a dataset name (e.g. cifar10) nor a folder or zip of images (no such path)"
  )


def _new_dataset_name(text: str) -> str:
  """``--name``: the name of a dataset prepared from images (snake_case, as TFDS names are)."""
  from jgan.data import folder_datasets

  if not folder_datasets.NAME_PATTERN.fullmatch(text):
    raise argparse.ArgumentTypeError(
      f"{text!r} must be snake_case (a lower-case letter, then lower-case letters, digits, _)"
    )
  return text


def _parser() -> argparse.ArgumentParser:
  from jgan.cli import args
  from jgan.data import folder_datasets, image_files

  p = args.Parser(prog="jgan data", description=__doc__.split("\n\n")[0])
  sub = p.add_subparsers(dest="action", required=True, parser_class=args.Parser)
  texts = {
    "prepare": "prepare a TFDS NAME, or a folder / zip PATH of images",
    "check": "can jgan read NAME?",
    "list": "datasets prepared from folders / zips",
  }
  for action, text in texts.items():
    a = sub.add_parser(action, help=text)
    if action == "prepare":
      a.add_argument("name", type=_name_or_path, help="a jgan / TFDS dataset name, or a folder or zip of images")
    elif action == "check":
      a.add_argument("name", type=_name, help="a jgan dataset, one prepared from images, or any TFDS name")
    a.add_argument(
      "--data_dir",
      default=None,
      type=args.new_dir,
      help="TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)",
    )
    if action == "prepare":
      a.add_argument("--no_progress", action="store_true", help="no progress bars")
      a.add_argument(
        "--name", dest="dataset_name", type=_new_dataset_name, default=None, help="PATH: the new dataset's name"
      )
      a.add_argument(
        "--image_size",
        type=args.int_in(1, folder_datasets.MAX_IMAGE_SIZE),
        default=None,
        help="PATH: side of the stored square images in px",
      )
      a.add_argument(
        "--crop",
        default=None,
        type=args.one_of(image_files.CROPS, "--crop"),
        help="PATH: center (largest centred square; the default) or none (squash)",
      )
      a.add_argument(
        "--labels",
        default=None,
        type=args.one_of(folder_datasets.LABEL_MODES, "--labels"),
        help="PATH: auto (the default), subfolders, dataset.json or none",
      )
      a.add_argument(
        "--channels",
        default=None,
        type=args.one_of(("auto", "1", "3"), "--channels"),
        help="PATH: auto (1 if every image is grey, else 3; the default), 1 or 3",
      )
      a.add_argument(
        "--skip_bad", action="store_true", default=None, help="PATH: leave unreadable files out instead of refusing"
      )
    elif action == "check":
      a.add_argument("--split", default=None, help="a split to look for (e.g. test)")
  return p


def _is_path(args) -> bool:
  """Whether ``prepare``'s argument is a folder / zip of images rather than a TFDS name."""
  named = args.dataset_name is not None or args.image_size is not None
  return named or _looks_like_path(args.name)


def _prepare_folder(args) -> int:
  from jgan.data import folder_datasets

  if args.dataset_name is None:
    raise ValueError(f"--name is required to prepare the images in {args.name!r} (the dataset's name, snake_case)")
  if args.image_size is None:
    raise ValueError("--image_size is required to prepare images (the side of the stored square images, e.g. 64)")
  req = folder_datasets.Request(
    path=args.name,
    name=args.dataset_name,
    image_size=args.image_size,
    crop=args.crop or "center",
    labels=args.labels or "auto",
    channels={"auto": 0, "1": 1, "3": 3}[args.channels or "auto"],
    skip_bad=bool(args.skip_bad),
    data_dir=args.data_dir or "",
  )
  folder_datasets.check_request(req)
  if not os.path.exists(args.name):
    raise ValueError(f"{args.name!r} does not exist; give a folder of images or a zip of them")
  done = folder_datasets.prepare(req, progress=not args.no_progress)
  rec = done.record
  classes = rec["class_names"]
  labels = f"{len(classes)} classes ({', '.join(classes[:10])}{', ...' if len(classes) > 10 else ''})"
  print(
    f"{req.name}: {rec['num_examples']} images from {rec['source']} at {rec['image_size']} px, "
    f"{rec['channels']} channel(s), {labels if classes else 'no labels'}"
  )
  if rec["skipped"]:
    named = folder_datasets.listing([f"{s['file']} ({s['error']})" for s in rec["skipped"]])
    print(f"skipped {len(rec['skipped'])} unreadable file(s): {named}")
  if rec["ignored"]:
    print(f"ignored {len(rec['ignored'])} file(s) that are not images: {folder_datasets.listing(rec['ignored'])}")
  flags = f"--config.data.name={req.name} --config.data.image_size={rec['image_size']}"
  if args.data_dir:
    flags += f" --config.data.data_dir={args.data_dir}"
  if classes:
    flags += " [--config.model.conditional=True]"
  print(f"ready in {done.path}; train with: jgan train --config CONFIG --workdir RUN {flags}")
  return 0


def _list(data_dir: str | None) -> int:
  from jgan.data import folder_datasets

  names = folder_datasets.prepared_names(data_dir or "")
  print(f"prepared from images under {folder_datasets.root_dir(data_dir or '')}: {len(names)}")
  for name in names:
    rec = folder_datasets.read_record(name, data_dir or "") or {}
    classes = len(rec.get("class_names", []))
    print(
      f"  {name}: {rec.get('num_examples')} images, {rec.get('image_size')} px, {rec.get('channels')} channel(s), "
      f"{classes or 'no'} classes, {len(rec.get('skipped', []))} skipped; from {rec.get('source')}"
    )
  return 0


def main(argv) -> int:
  """Entry point of ``jgan data``; returns 0 on success, 2 with one ``error:`` line otherwise."""
  from jgan.cli import flags

  if flags.help_requested(argv, __doc__) and len(argv) <= 1:
    return 0
  from jgan.cli import args as args_lib

  args = args_lib.parse(_parser(), argv)
  if isinstance(args, int):
    return args
  from jgan.data import folder_datasets, prepare

  try:
    if args.action == "list":
      return _list(args.data_dir)
    if args.action == "prepare":
      if _is_path(args):
        return _prepare_folder(args)
      given = [f"--{k}" for k in PATH_ONLY if getattr(args, k) is not None]
      if given:
        raise ValueError(
          f"{', '.join(given)}: only for a folder or zip of images; {args.name!r} is read as a TFDS name "
          "(a PATH must exist, contain a /, or end in .zip)"
        )
      path = prepare.prepare(args.name, args.data_dir, progress=not args.no_progress)
      print(f"{args.name}: ready in {path}")
      return 0
    rec = folder_datasets.read_record(args.name, args.data_dir or "")
    if rec is not None:
      why = (
        "" if args.split in (None, "train") else f"dataset {args.name!r} has no split {args.split!r}; its splits: train"
      )
      print(f"{args.name}: {why or 'ready'} (prepared from {rec['source']}: {rec['num_examples']} images)")
      return 2 if why else 0
    why = prepare.diagnose(args.name, args.data_dir, args.split)
    print(f"{args.name}: {why or 'ready'}")
    return 2 if why else 0
  except (ValueError, FileNotFoundError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
