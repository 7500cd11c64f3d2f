"""``jgan sample --workdir RUN --n N --out DIR|FILE.npz [--labels 0,3] [--step S] [--live] [--seed S]``.

Writes N samples of a run's generator (the EMA generator of the latest checkpoint by default) as PNG
files ``000000.png``, ``000001.png``, ... in a new (or empty) folder DIR, or as one FILE.npz
(``images`` uint8 [N, H, W, C], ``labels`` int32 [N]), for other tools (clean-fid, torch-fidelity) and
figures. Deterministic: the noise is the run's evaluation key for ``--seed`` (default: the run's seed),
drawn per batch of the run's ``evals.batch_size``, so the files hold exactly the samples ``jgan eval
--workdir RUN`` scores and ``jgan eval --samples DIR`` gives the same numbers.

A conditional generator is asked for the classes of ``--labels`` in turn (``--labels 3``: all of class
3; default: every class in turn, as evaluation asks); a PNG folder then gets a stylegan2-ada
``dataset.json`` with the labels (``jgan data prepare DIR --labels dataset.json`` reads it back).
"""

from __future__ import annotations

import argparse
import os
import sys


def _out(text: str) -> str:
  """``--out``: a new FILE.npz, or a new or empty folder (never overwrites; argparse type)."""
  from jgan.cli import args

  if text.endswith(".npz"):
    args.new_file(text)
    if os.path.exists(text):
      raise argparse.ArgumentTypeError(f"{text!r} exists; give a new .npz path (or delete it)")
    return text
  args.new_dir(text)  # not a file, nor under one
  if os.path.isdir(text) and os.listdir(text):
    raise argparse.ArgumentTypeError(f"{text!r} exists and is not empty; give a new or empty folder (or a .npz path)")
  return text


def _class_ids(text: str) -> str:
  """``--labels``: a comma list of class ids (integers >= 0), kept as text (the run says how many exist)."""
  items = [t.strip() for t in text.split(",")]
  if text and not all(t.isdigit() for t in items):
    raise argparse.ArgumentTypeError(f"{text!r} is not a comma list of class ids (integers >= 0, e.g. 0,3)")
  return text


def _parser() -> argparse.ArgumentParser:
  from jgan.cli import args as a

  p = a.Parser(prog="jgan sample", description=__doc__.split("\n\n")[0])
  p.add_argument("--workdir", required=True, type=a.run_dir, help="a training run directory, local or gs://")
  p.add_argument("--n", type=a.positive_int, required=True, help="how many samples to write")
  p.add_argument("--out", required=True, type=_out, help="a new or empty folder for PNGs, or a new FILE.npz")
  p.add_argument(
    "--labels", default="", type=_class_ids, help="conditional G: comma list of classes asked for in turn (default all)"
  )
  p.add_argument("--step", type=a.nonneg_int, default=None, help="checkpoint step (default: the latest)")
  p.add_argument("--live", action="store_true", help="sample the live generator instead of its EMA")
  p.add_argument("--seed", type=a.seed, default=None, help="noise seed (default: the run's; jgan eval's samples)")
  p.add_argument("--batch_size", type=a.positive_int, default=None, help="samples per call (default evals.batch_size)")
  p.add_argument("--no_progress", action="store_true", help="no progress bar")
  return p


def parse_labels(text: str, num_classes: int) -> list[int]:
  """``--labels`` (``"0,3,7"``; ``""``: every class) -> class ids in [0, num_classes); ValueError otherwise.

  ``num_classes`` is 0 for an unconditional generator, which takes no labels.
  """
  if not text:
    return list(range(num_classes))
  if not num_classes:
    raise ValueError(f"--labels {text!r}: the run's generator is unconditional (model.conditional=False)")
  try:
    labels = [int(t) for t in text.split(",") if t.strip()]
  except ValueError:
    raise ValueError(f"--labels {text!r} must be a comma list of class ids in 0..{num_classes - 1}") from None
  bad = [c for c in labels if not 0 <= c < num_classes]
  if bad or not labels:
    raise ValueError(f"--labels {text!r}: class ids must lie in 0..{num_classes - 1} (the run's {num_classes} classes)")
  return labels


def main(argv) -> int:
  """Entry point of ``jgan sample``; returns 0 on success, 2 with one ``error:`` line otherwise."""
  from jgan.cli import args as args_lib

  args = args_lib.parse(_parser(), argv)
  if isinstance(args, int):
    return args
  from jgan import checkpoint as ckpt_lib

  try:
    from jgan import data as data_lib
    from jgan import evaluation, resume, samples
    from jgan import rng as rng_lib
    from jgan.cli.eval import load_run_config

    samples.output_kind(args.out)  # refuses to overwrite, before anything loads
    config = load_run_config(args.workdir)
    if config.data.name in data_lib.MIXTURES:
      raise ValueError(f"the run trains on 2-D points ({config.data.name!r}), not images; nothing to write as images")
    conditional = config.model.get("conditional", False)
    classes = parse_labels(args.labels, config.model.num_classes if conditional else 0)
    state, config = resume.load_state(args.workdir, step=args.step)
    seed = config.seed if args.seed is None else args.seed
    batch_size = args.batch_size or evaluation.eval_settings(config).batch_size
    sampler = samples.state_sampler(state, ema=not args.live)
    batches = samples.generated_batches(sampler, rng_lib.run_keys(seed).eval, args.n, batch_size, classes)
    out = samples.write_samples(batches, args.n, args.out, progress=not args.no_progress)
  except (ValueError, FileNotFoundError, ckpt_lib.CheckpointError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  which = "live" if args.live else "ema"
  print(f"wrote {args.n} samples of {args.workdir} step {int(state.step)} ({which}, seed {seed}) to {out}")
  return 0
