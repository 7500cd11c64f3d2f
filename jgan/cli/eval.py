"""``jgan eval --workdir runs/x [--metrics mnist_fid5k,...] [--step N] [--live]``, or
``jgan eval --samples DIR|FILE.npz --data NAME [--metrics fid10k,...]``.

Evaluates a finished (or running) training run's generator from its checkpoint: the EMA generator of
the latest checkpoint by default. Metrics default to ``config.evals.metrics`` of the run, else to the
data set's usual set (:data:`jgan.evaluation.DEFAULT_METRICS`). Results are printed and appended as one
JSON line to ``<workdir>/evals.jsonl``.

``--data SPLIT[:CLASS]`` evaluates real images instead of the generator, for reference rows: ``--data
test`` scores the held-out split against the train split (what a perfect generator would get at that
sample size), ``--data test:1`` only the digits of class 1, resampled with replacement (a generator
collapsed onto one mode).

``--samples DIR|FILE.npz`` scores images written by any program (a folder of PNG / JPEG / WebP / BMP
files, or an .npz of uint8 ``images`` / ``arr_0`` [N, H, W, C]) against the jgan dataset ``--data NAME``
(built in, or prepared from your images; ``--data_dir``, ``--image_size`` as for training), or against
the dataset of run ``--workdir`` when no ``--data`` is given. Their size and channels must be the
dataset's. ``jgan sample --workdir RUN --out DIR`` writes the very samples ``jgan eval --workdir RUN``
scores, so both give the same numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import numpy as np

from jgan.cli import args as args_lib


def _data_spec(text: str) -> str:
  """``SPLIT[:CLASS]`` with CLASS an integer >= 0, or "" (argparse type of ``--data``)."""
  split, colon, cls = text.partition(":")
  if text and (not split or (colon and not cls.isdigit())):
    raise argparse.ArgumentTypeError(f"{text!r} is not SPLIT[:CLASS] (e.g. test or test:1)")
  return text


def _samples_path(text: str) -> str:
  """``--samples``: a folder (of image files) or an .npz file that exists (argparse type)."""
  if not os.path.exists(text):
    raise argparse.ArgumentTypeError(f"{text!r} does not exist; give a folder of images or an .npz file")
  if not os.path.isdir(text) and not text.endswith(".npz"):
    raise argparse.ArgumentTypeError(f"{text!r} is neither a folder of images nor an .npz file")
  return text


# Flags of a run's generator, and flags of --samples only: a command line mixing them is refused.
GENERATOR_ONLY = ("step", "live", "seed", "save_stats")
SAMPLES_ONLY = ("data_dir", "image_size")


def _check_modes(args) -> str | None:
  """What is wrong with the combination of flags (one line), or None."""
  flag = lambda k: f"--{k}"
  if args.samples:
    given = [flag(k) for k in GENERATOR_ONLY if getattr(args, k) not in (None, False)]
    if given:
      return f"{', '.join(given)}: only for a run's generator; --samples scores image files"
    return None
  if not args.workdir:
    return "the following arguments are required: --workdir (or --samples DIR|FILE.npz --data NAME)"
  given = [flag(k) for k in SAMPLES_ONLY if getattr(args, k) is not None]
  if given:
    return f"{', '.join(given)}: only with --samples (the dataset the image files are compared with)"
  return None


def _metric_names() -> list[str]:
  from jgan.metrics import METRICS

  return sorted(METRICS)


def _parser() -> argparse.ArgumentParser:
  from jgan.cli import args as a

  p = a.Parser(prog="jgan eval", description=__doc__.split("\n\n")[1])
  p.add_argument(
    "--workdir", default=None, type=a.run_dir, help="run directory, local or gs:// (with checkpoints/ and config.json)"
  )
  p.add_argument(
    "--samples",
    default=None,
    type=_samples_path,
    metavar="DIR|FILE.npz",
    help="score these images (a folder of image files, or an .npz) instead of a generator",
  )
  p.add_argument("--data_dir", default=None, type=a.new_dir, help="--samples: TFDS data directory of --data")
  p.add_argument(
    "--image_size", type=a.positive_int, default=None, help="--samples: image size of --data (default: its own)"
  )
  p.add_argument("--seed", type=a.seed, default=None, help="noise seed of the generated samples (default: the run's)")
  p.add_argument(
    "--metrics",
    default="",
    type=a.names_in(_metric_names, "metric"),
    help="comma list of jgan.metrics.METRICS names (default: the run's evals.metrics, else the data set's default)",
  )
  p.add_argument("--step", type=a.nonneg_int, default=None, help="checkpoint step (default: the latest)")
  p.add_argument("--live", action="store_true", help="evaluate the live generator instead of its EMA")
  p.add_argument("--num_samples", type=a.positive_int, default=None, help="override every metric's sample count")
  p.add_argument("--batch_size", type=a.positive_int, default=None, help="samples per generator / extractor call")
  p.add_argument("--classifier", default=None, help="domain classifier directory (mnist_* metrics)")
  p.add_argument("--inception_weights", default=None, help="path of pt_inception-2015-12-05-6726825d.pth")
  p.add_argument(
    "--fid_mode",
    default=None,
    type=a.one_of(("legacy_pytorch", "clean"), "--fid_mode"),
    help="how images are resized for Inception (legacy_pytorch: pytorch-fid's; clean: clean-fid's)",
  )
  p.add_argument(
    "--save_stats",
    "--save-stats",
    default=None,
    type=a.new_file,
    metavar="PATH.npz",
    help="write the FID statistics (mu, sigma; pytorch-fid's .npz format) of the generator, or of --data, "
    "for the one FID metric of --metrics (default: the first), and evaluate nothing else",
  )
  p.add_argument(
    "--ref_stats",
    "--ref-stats",
    default=None,
    type=a.existing_file,
    metavar="PATH.npz",
    help="compute FID against these statistics (a pytorch-fid / clean-fid / --save_stats .npz) instead of real data",
  )
  p.add_argument("--real_split", default=None, help="real split compared with (default: the train split)")
  p.add_argument("--cache_dir", default=None, type=a.new_dir, help="real-feature cache (default: WORKDIR/eval_cache)")
  p.add_argument(
    "--data",
    default="",
    type=_data_spec,
    metavar="SPLIT[:CLASS] | NAME",
    help="evaluate real images of SPLIT (only CLASS, resampled) instead of the generator; "
    "with --samples: the dataset NAME they are compared with",
  )
  p.add_argument("--no_progress", action="store_true", help="no progress bars")
  return p


def _data_source(config, spec: str, n: int) -> np.ndarray:
  """Real images of ``SPLIT`` (in the fixed evaluation order) or of one class of it, resampled to ``n``."""
  from jgan import data as data_lib

  split, _, cls = spec.partition(":")
  images, labels = data_lib.split_arrays(config.data, split)
  if not cls:
    return images
  pool = images[labels == int(cls)]
  if not len(pool):
    raise ValueError(f"no images of class {cls} in split {split!r}")
  return pool[np.random.default_rng(0).integers(0, len(pool), n)]


def load_run_config(workdir: str):
  """The resolved config a run stored (``WORKDIR/config.json``); FileNotFoundError if it is no run."""
  import ml_collections

  from jgan import storage

  path = storage.join(workdir, "config.json")
  if not storage.exists(path):
    raise FileNotFoundError(f"{path} not found: --workdir must be a jgan run directory")
  return ml_collections.ConfigDict(json.loads(storage.read_text(path)))


def _settings(config, args):
  """``config.evals`` completed with the defaults and the command line's overrides."""
  from jgan import evaluation

  settings = evaluation.eval_settings(config)
  for key, value in (
    ("num_samples", args.num_samples),
    ("batch_size", args.batch_size),
    ("classifier_path", args.classifier),
    ("inception_weights", args.inception_weights),
    ("real_split", args.real_split),
    ("fid_mode", args.fid_mode),
    ("ref_stats", args.ref_stats),
    ("cache_dir", args.cache_dir),
  ):
    if value is not None:
      settings[key] = value
  return settings


def _samples_config(args):
  """The config ``--samples`` are scored with: dataset ``--data`` (or the run's), evals settings."""
  from jgan import config as config_lib
  from jgan import data as data_lib

  if args.data:
    config = load_run_config(args.workdir) if args.workdir else config_lib.defaults()
    config.data.name = args.data
    config.data.data_dir = args.data_dir or ""
    config.data.split = ""
    config.data.channels = 0
    data_lib.check_dataset_name(args.data, config.data.data_dir, what="--data")
    if args.data in data_lib.MIXTURES:
      raise ValueError(f"--data {args.data!r} is 2-D points; --samples are images")
    size = args.image_size or data_lib.image_spec(config.data).native_size
    if not size:
      raise ValueError(f"--image_size is needed for --data {args.data!r} (its images have no single size)")
    config.data.image_size = size
  elif args.workdir:
    config = load_run_config(args.workdir)
    if config.data.name in data_lib.MIXTURES:
      raise ValueError(f"the run trains on 2-D points ({config.data.name!r}); --samples are images")
  else:
    raise ValueError("--samples needs --data NAME (the dataset they are compared with) or --workdir RUN")
  data_lib.check_image_data(config.data)
  config.model.conditional = False  # files carry no generator; class_match metrics cannot apply
  return config


def _eval_samples(args) -> int:
  """``jgan eval --samples``: scores image files against a dataset (module docstring)."""
  from jgan import data as data_lib
  from jgan import evaluation, samples
  from jgan.metrics import METRICS, protocols

  config = _samples_config(args)
  settings = _settings(config, args)
  if not args.workdir and not settings.cache_dir:
    settings.cache_dir = os.path.join("~", ".cache", "jgan", "eval_cache")
  config.evals = settings
  name = config.data.name
  metrics = args.metrics or settings.metrics or evaluation.DEFAULT_METRICS.get(name, evaluation.FALLBACK_METRICS)
  matches = [m for m in protocols.parse_metric_names(metrics) if METRICS[m].distance == "class_match"]
  if matches:
    raise ValueError(f"{matches[0]} needs the class each sample was generated for; --samples carry none")
  images = samples.read_samples(args.samples)
  samples.check_shape(images, data_lib.sample_shape(config.data), args.samples, name)
  ev = evaluation.Evaluator(config, args.workdir or "", metrics, progress=not args.no_progress)
  n = max(ev.num_samples(m) for m in ev.metrics)
  if len(images) < n:  # as --data: score all of them, named by their number
    settings.num_samples = len(images)
    ev = evaluation.Evaluator(config, args.workdir or "", metrics, progress=not args.no_progress)
    print(
      f"note: {args.samples} holds {len(images)} images, fewer than the {n} the metrics ask for; computed on all "
      f"{len(images)} ({', '.join(ev.result_keys())})",
      file=sys.stderr,
    )
  results = ev.evaluate(images)
  source = f"samples:{os.path.abspath(args.samples)}"
  if args.workdir:
    evaluation.append_results(
      args.workdir, 0, results, generator=source, num_samples=settings.num_samples or None, **ev.record_fields()
    )
  print(f"{args.samples} ({len(images)} images) against {name!r}:")
  print(evaluation.format_results(results))
  return 0


def main(argv) -> int:
  """Entry point of ``jgan eval``; returns the exit status (0 ok, 2 usage or input error)."""
  parser = _parser()
  args = args_lib.parse(parser, argv)
  if isinstance(args, int):
    return args
  why = _check_modes(args)
  if why:
    print(f"error: {why} (see {parser.prog} --help)", file=sys.stderr)
    return 2
  from jgan import checkpoint as ckpt_lib
  from jgan import evaluation, resume

  try:
    if args.samples:
      return _eval_samples(args)
    state = None
    if args.data:
      config = load_run_config(args.workdir)
      step = 0  # real data: no training step
    else:
      state, config = resume.load_state(args.workdir, step=args.step)
      step = int(state.step)
    if args.seed is not None:
      config.seed = args.seed
    settings = _settings(config, args)
    config.evals = settings
    metrics = (
      args.metrics or settings.metrics or evaluation.DEFAULT_METRICS.get(config.data.name, evaluation.FALLBACK_METRICS)
    )
    from jgan.metrics import protocols

    protocols.parse_metric_names(metrics)  # a misspelt name fails here, before any network is loaded
    if args.save_stats:
      from jgan.metrics import METRICS, protocols, save_stats

      fids = [m for m in protocols.parse_metric_names(metrics) if METRICS[m].distance == "fid"]
      if not fids:
        raise ValueError(f"--save_stats needs a FID metric in --metrics (got {metrics!r}); e.g. --metrics fid10k")
      ev = evaluation.Evaluator(config, args.workdir, fids[0], progress=not args.no_progress)
      n = ev.num_samples(fids[0])
      if args.data:
        stats_source: Any = _data_source(config, args.data, n)
        if len(stats_source) < n:
          raise ValueError(f"split {args.data!r} holds {len(stats_source)} images; {fids[0]} needs {n} (--num_samples)")
      else:
        stats_source = evaluation.state_sampler(state, ema=not args.live)
      path = save_stats(args.save_stats, *ev.fid_stats(stats_source, fids[0]))
      print(f"saved the {fids[0]} statistics ({n} samples, {ev.record_fields() or 'classifier features'}) to {path}")
      return 0
    ev = evaluation.Evaluator(config, args.workdir, metrics, progress=not args.no_progress)
    if args.data:
      n = max(ev.num_samples(m) for m in ev.metrics)
      images = _data_source(config, args.data, n)
      if len(images) < n:  # a held-out split smaller than the protocol: score all of it, named by its size
        settings.num_samples = len(images)
        ev = evaluation.Evaluator(config, args.workdir, metrics, progress=not args.no_progress)
        print(
          f"note: split {args.data!r} holds {len(images)} images, fewer than the {n} the metrics ask for; "
          f"computed on all {len(images)} ({', '.join(ev.result_keys())})",
          file=sys.stderr,
        )
      results = ev.evaluate(images)
      source = f"data:{args.data}"
    else:
      results = ev.evaluate(evaluation.state_sampler(state, ema=not args.live))
      source = "live" if args.live else "ema"
  except (ValueError, FileNotFoundError, ckpt_lib.CheckpointError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  evaluation.append_results(
    args.workdir, step, results, generator=source, num_samples=settings.num_samples or None, **ev.record_fields()
  )
  if not args.data:  # the generator's results also go to the run's TensorBoard, beside training's
    from jgan import writers

    writer = writers.RunWriter(args.workdir, filename_suffix=f".eval-{os.getpid()}-{time.time_ns()}")
    prefix = "eval" if source == "ema" else "eval_live"
    writer.scalars(step, {f"{prefix}/{k}": v for k, v in results.items()}, jsonl=False)
    writer.close()
  print(f"{args.workdir} step {step} ({source}):")
  print(evaluation.format_results(results))
  return 0
