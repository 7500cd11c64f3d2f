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

# The figures (jgan.labs.latent_figures.OP_FNS; tests/test_labs_latent.py checks they agree).
OPS = ("interpolate", "walk", "arithmetic", "neighbours")


def _parser() -> argparse.ArgumentParser:
  from jgan.cli import args as a

  p = a.Parser(prog="jgan latent", description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True, type=a.existing_dir, help="a training run directory (with checkpoints/)")
  p.add_argument("--op", required=True, type=a.one_of(OPS, "op"), metavar="OP", help="the figure: " + ", ".join(OPS))
  p.add_argument("--n", type=a.nonneg_int, default=0, help="rows / walks / samples (default per op: 8, 16, 8, 16)")
  p.add_argument("--seed", type=a.seed, default=0, help="seed of every z drawn")
  p.add_argument(
    "--classifier",
    default="",
    help="domain classifier directory (default $JGAN_CLASSIFIER or ~/.cache/jgan/classifier_mnist5k)",
  )
  p.add_argument(
    "--frames", type=a.nonneg_int, default=0, help="interpolate: points per row (10); walk: frames per leg (16)"
  )
  p.add_argument("--points", type=a.int_in(2), default=4, help="walk: latent points per closed loop (>= 2)")
  p.add_argument("--method", default="slerp", type=a.one_of(("slerp", "lerp"), "--method"), help="slerp or lerp")
  p.add_argument("--expr", default="thick7 - thin7 + thin1", help="arithmetic: expression on concepts")
  p.add_argument("--k", type=a.positive_int, default=3, help="arithmetic: z's averaged per concept (DCGAN: 3)")
  p.add_argument("--pool", type=a.positive_int, default=1024, help="arithmetic: z's drawn to choose concepts from")
  p.add_argument(
    "--min-confidence",
    type=a.float_in(0.0, 1.0),
    default=0.9,
    help="arithmetic: classifier probability needed for a z to count as its label",
  )
  p.add_argument("--step", type=a.nonneg_int, default=None, help="checkpoint step (default: latest)")
  p.add_argument("--live", action="store_true", help="use G's live parameters instead of their EMA")
  p.add_argument(
    "--label", type=a.nonneg_int, default=None, help="class-conditional runs: the class of every sample (default 0)"
  )
  p.add_argument("--out", default="", type=a.new_dir, help="output directory (default WORKDIR/latent)")
  p.add_argument("--scale", type=a.int_in(1, 64), default=3, help="PNG/GIF pixel upscaling (nearest)")
  return p


def _check_args(args) -> None:
  from jgan.labs import latent, latent_figures

  if args.op not in latent_figures.OP_FNS:
    raise ValueError(f"unknown op {args.op!r}; valid choices: {', '.join(latent_figures.OP_FNS)}")
  if args.method not in latent.METHODS:
    raise ValueError(f"unknown --method {args.method!r}; valid choices: {', '.join(latent.METHODS)}")
  if args.op == "interpolate" and args.frames == 1:
    raise ValueError("--frames must be >= 2 for interpolate (both endpoints are shown)")


def main(argv) -> int:
  """``jgan latent --workdir DIR --op OP [...]``; 0 on success, 2 with a one-line error."""
  from jgan.cli import args as args_lib

  args = args_lib.parse(_parser(), argv)
  if isinstance(args, int):
    return args
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
