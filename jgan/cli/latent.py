"""``jgan latent``: figures of a trained generator's latent space, with their z's saved.

    jgan latent --workdir runs/demo --op interpolate [--n 8] [--frames 10] [--method slerp]
    jgan latent --workdir runs/demo --op walk        [--n 16] [--points 4] [--frames 16]
    jgan latent --workdir runs/demo --op arithmetic  [--expr "thick7 - thin7 + thin1"]
    jgan latent --workdir runs/demo --op neighbours  [--n 16] [--classifier PATH]

Everything goes to ``WORKDIR/latent/`` (``--out`` to change): ``OP.png`` (and ``walk.gif``) plus
``OP.npz`` holding every z drawn (``z``, float32, latent rows in figure order), so any figure can be
redrawn with ``g(np.load(path)["z"])`` (:func:`jgan.labs.latent_figures.load_generator_fn`).

Concept names in ``--expr`` are ``[style][digit]``: ``thick7`` is the mean of the ``--k`` z's whose
samples the domain classifier labels 7 (with confidence >= ``--min-confidence``) that have the most
ink; styles are ``thick``/``thin`` (:func:`jgan.labs.attributes.thickness`), ``right``/``left``/``upright``
(:func:`jgan.labs.attributes.slant`); a bare digit picks the most confident; a bare style ignores the label.
"""

from __future__ import annotations

import argparse
import os
import sys


class _Parser(argparse.ArgumentParser):
  def error(self, message):  # one line instead of usage + message
    raise ValueError(message)


def _parser() -> argparse.ArgumentParser:
  p = _Parser(prog="jgan latent", description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True, help="a training run directory (with checkpoints/)")
  p.add_argument("--op", required=True, help="interpolate, walk, arithmetic or neighbours")
  p.add_argument("--n", type=int, default=0, help="rows / walks / samples (default per op: 8, 16, 8, 16)")
  p.add_argument("--seed", type=int, default=0, help="seed of every z drawn")
  p.add_argument(
    "--classifier",
    default="",
    help="domain classifier directory (default $JGAN_CLASSIFIER or ~/.cache/jgan/classifier_mnist5k)",
  )
  p.add_argument("--frames", type=int, default=0, help="interpolate: points per row (10); walk: frames per leg (16)")
  p.add_argument("--points", type=int, default=4, help="walk: latent points per closed loop")
  p.add_argument("--method", default="slerp", help="slerp or lerp")
  p.add_argument("--expr", default="thick7 - thin7 + thin1", help="arithmetic: expression on concepts")
  p.add_argument("--k", type=int, default=3, help="arithmetic: z's averaged per concept (DCGAN: 3)")
  p.add_argument("--pool", type=int, default=1024, help="arithmetic: z's drawn to choose concepts from")
  p.add_argument(
    "--min-confidence",
    type=float,
    default=0.9,
    help="arithmetic: classifier probability needed for a z to count as its label",
  )
  p.add_argument("--step", type=int, default=None, help="checkpoint step (default: latest)")
  p.add_argument("--live", action="store_true", help="use G's live parameters instead of their EMA")
  p.add_argument(
    "--label", type=int, default=None, help="class-conditional runs: the class of every sample (default 0)"
  )
  p.add_argument("--out", default="", help="output directory (default WORKDIR/latent)")
  p.add_argument("--scale", type=int, default=3, help="PNG/GIF pixel upscaling (nearest)")
  return p


def _check_args(args) -> None:
  from jgan.labs import latent, latent_figures

  if args.op not in latent_figures.OP_FNS:
    raise ValueError(f"unknown op {args.op!r}; valid choices: {', '.join(latent_figures.OP_FNS)}")
  if args.method not in latent.METHODS:
    raise ValueError(f"unknown --method {args.method!r}; valid choices: {', '.join(latent.METHODS)}")
  for name in ("n", "frames", "points", "k", "pool", "scale"):
    if getattr(args, name) < 0:
      raise ValueError(f"--{name} must be >= 0; got {getattr(args, name)}")
  if args.op == "interpolate" and args.frames == 1:
    raise ValueError("--frames must be >= 2 for interpolate (both endpoints are shown)")
  if args.op == "walk" and args.points < 2:
    raise ValueError(f"--points must be >= 2; got {args.points}")
  if not os.path.isdir(args.workdir):
    raise FileNotFoundError(
      f"workdir {args.workdir!r} does not exist (train one: jgan train "
      f"--config configs/dcgan_mnist5k.py --workdir {args.workdir})"
    )


def main(argv) -> int:
  """``jgan latent --workdir DIR --op OP [...]``; 0 on success, 2 with a one-line error."""
  try:
    args = _parser().parse_args(argv)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except SystemExit as e:  # --help
    return int(e.code or 0)
  from jgan import checkpoint
  from jgan import data as data_lib
  from jgan.labs import latent_figures

  try:
    _check_args(args)
    g, config = latent_figures.load_generator_fn(args.workdir, ema=not args.live, step=args.step, label=args.label)
    if config.data.name in data_lib.MIXTURES:
      raise ValueError(f"latent figures need an image dataset; {args.workdir!r} trained on {config.data.name!r}")
    out = args.out or os.path.join(args.workdir, "latent")
    os.makedirs(out, exist_ok=True)
    written = latent_figures.OP_FNS[args.op](args, g, config, out)
  except (ValueError, FileNotFoundError, checkpoint.CheckpointError) as e:
    print("error: " + " ".join(line.strip() for line in str(e).splitlines() if line.strip()), file=sys.stderr)
    return 2
  for path in written:
    print(path)
  return 0
