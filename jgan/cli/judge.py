"""``jgan judge``: a real-vs-fake study with people (HYPE), served from this machine.

    jgan judge --workdir RUN [--data NAME[:SPLIT]] [--n 100] [--seed 0] [--mode infinite|time]
               [--checks 4] [--study NAME] [--host 127.0.0.1] [--port 8765] [--prepare_only]
    jgan judge --serve RUN/judge/STUDY [--host 127.0.0.1] [--port 8765]
    jgan judge --report RUN/judge/STUDY [--bootstrap 2000]

The first form prepares a study in ``RUN/judge/STUDY/`` (``n/2`` fakes of the run's EMA generator drawn
with ``--seed``, ``n/2`` held-out real images of SPLIT (default ``test``; ``train``, the only split, for
a dataset prepared from your images by ``jgan data prepare PATH``), ``--checks`` attention checks)
and serves it; ``--serve`` serves a prepared one again (after a stop or crash: answers are kept, each
evaluator continues where they stopped); ``--report`` prints HYPE-infinity (overall, fakes, reals) with
95 % bootstrap intervals and per-evaluator rows, and writes ``report.md``, ``report.json`` and the most /
least convincing fakes' grids into the study directory. The server prints two URLs: the study's (send it
to the evaluators) and the results page's; both carry random tokens and everything else answers 403.
Only this machine can connect unless ``--host`` says otherwise (e.g. ``--host 0.0.0.0``).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

DEFAULT_PORT = 8765
STUDY_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")


def _parser() -> argparse.ArgumentParser:
  from jgan.cli import args as A
  from jgan.labs.judge_study import MODES

  p = A.Parser(prog="jgan judge", description=__doc__)
  what = p.add_mutually_exclusive_group(required=True)
  what.add_argument("--workdir", type=A.existing_dir, help="a training run: prepare a new study from it and serve it")
  what.add_argument(
    "--serve", type=A.existing_dir, metavar="STUDY_DIR", help="serve a prepared study (RUN/judge/STUDY)"
  )
  what.add_argument("--report", type=A.existing_dir, metavar="STUDY_DIR", help="print and write a study's results")
  p.add_argument("--data", default="", metavar="NAME[:SPLIT]", help="real images (default: the run's data, test)")
  p.add_argument(
    "--n", type=A.even_int_in(2, 100_000), default=100, help="study images, even: half fakes, half reals (default 100)"
  )
  p.add_argument("--seed", type=A.seed, default=0, help="seed of the fakes, the reals chosen, ids and orders")
  p.add_argument(
    "--mode", type=A.one_of(MODES, "mode"), default="infinite", help="infinite (HYPE-infinity) or time (HYPE-time)"
  )
  p.add_argument(
    "--checks", type=A.even_int_in(0, 1000), default=4, help="attention checks, even: half noise, half real (4)"
  )
  p.add_argument("--study", default="", help="study name (default: hype_inf_n<N>_seed<S> / hype_time_...)")
  p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
  p.add_argument(
    "--port", type=A.int_in(0, 65535), default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)"
  )
  p.add_argument("--prepare_only", action="store_true", help="prepare the study and exit (serve it with --serve)")
  p.add_argument("--bootstrap", type=A.positive_int, default=2000, help="--report: bootstrap replicates (default 2000)")
  p.add_argument("--no_progress", action="store_true", help="no progress bars")
  return p


def _check_run(args) -> tuple[str, str, str]:
  """``(study_dir, data name, split)`` after the cheap checks of a new study's arguments."""
  from jgan import data as data_lib

  if not os.path.isdir(args.workdir):
    raise FileNotFoundError(f"--workdir {args.workdir!r} does not exist (train one: jgan train --workdir ...)")
  config_path = os.path.join(args.workdir, "config.json")
  ckpt_dir = os.path.join(args.workdir, "checkpoints")
  steps = [d for d in os.listdir(ckpt_dir) if d.isdigit()] if os.path.isdir(ckpt_dir) else []
  if not os.path.isfile(config_path) or not steps:
    raise FileNotFoundError(f"--workdir {args.workdir!r} holds no checkpoint (no config.json or checkpoints/<step>/)")
  with open(config_path) as f:
    run_data = json.load(f).get("data", {})
  name, _, split = args.data.partition(":")
  name, data_dir = name or run_data.get("name", ""), run_data.get("data_dir", "")
  if data_lib.folder_datasets.image_spec(name, data_dir) is None:  # neither built in nor prepared
    valid = ", ".join(sorted(data_lib.IMAGE_DATASETS))
    prepared = data_lib.folder_datasets.prepared_names(data_dir)
    valid += f", or one prepared from images: {', '.join(prepared)}" if prepared else ""
    raise ValueError(f"--data {name!r} is not an image dataset; valid choices: {valid}")
  split = split or ("test" if name in data_lib.IMAGE_DATASETS else "train")  # a prepared folder's only split
  study = args.study or f"hype_{'inf' if args.mode == 'infinite' else 'time'}_n{args.n}_seed{args.seed}"
  if not STUDY_NAME.match(study):
    raise ValueError(f"--study {study!r} must be a plain directory name (letters, digits, '_', '.', '-')")
  study_dir = os.path.join(args.workdir, "judge", study)
  if os.path.exists(study_dir):
    raise ValueError(
      f"study {study_dir!r} already exists; serve it with `jgan judge --serve {study_dir}` or choose another --study"
    )
  return study_dir, name, split


def _bind(args):
  from jgan.labs import judge_web

  try:
    return judge_web.open_socket(args.host, args.port)
  except OSError as e:
    raise ValueError(f"cannot listen on --host {args.host!r} --port {args.port}: {e.strerror or e}") from None


def _serve(study_dir: str, sock, host: str) -> int:
  from jgan.labs import judge_study, judge_web

  study = judge_study.load(study_dir)
  port = sock.getsockname()[1]
  study_url, results_url = judge_web.urls(study, host, port)
  if host not in ("127.0.0.1", "localhost", "::1"):
    print(f"note: listening on {host}: anyone who can reach this machine and has the study URL can answer")
  checks = study["num_checks"]
  mode = "HYPE-time" if study["mode"] == "time" else "HYPE-infinity"
  print(f"study:   {study_url}   (send this link to the evaluators)", flush=True)
  print(f"results: {results_url}   (yours: it shows the answers and the truth)")
  print(f"serving {study_dir} ({study['n']} images + {checks} attention checks, {mode}); Ctrl-C stops", flush=True)
  judge_web.serve(study_dir, sock)
  return 0


def main(argv) -> int:
  """``jgan judge ...``; 0 on success, 2 with a one-line ``error:`` for bad input."""
  from jgan.cli import args as arg_types

  args = arg_types.parse(_parser(), argv)
  if isinstance(args, int):
    return args
  try:
    import starlette  # noqa: F401
    import uvicorn  # noqa: F401
  except ImportError as e:
    print(f"error: jgan judge needs the judge extra ({e.name} is missing): pip install 'jgan[judge]'", file=sys.stderr)
    return 2
  from jgan.labs import judge_stats, judge_study

  sock = None
  errors: tuple[type[Exception], ...] = (ValueError, FileNotFoundError)  # DatasetNotReady is a FileNotFoundError
  try:
    if args.report:
      judge_study.load(args.report)
      _, text = judge_stats.write_report(args.report, num=args.bootstrap)
      print(text, end="")
      return 0
    if args.serve:
      judge_study.load(args.serve)
      sock = _bind(args)
      return _serve(args.serve, sock, args.host)
    from jgan import checkpoint  # loads JAX: only a new study needs it

    errors += (checkpoint.CheckpointError,)
    study_dir, name, split = _check_run(args)
    sock = None if args.prepare_only else _bind(args)
    judge_study.prepare(
      args.workdir,
      study_dir,
      data=name,
      split=split,
      n=args.n,
      seed=args.seed,
      num_checks=args.checks,
      mode=args.mode,
      progress=not args.no_progress,
    )
    print(f"prepared {study_dir}", flush=True)
    if sock is None:
      return 0
    return _serve(study_dir, sock, args.host)
  except errors as e:
    print("error: " + " ".join(line.strip() for line in str(e).splitlines() if line.strip()), file=sys.stderr)
    return 2
  except KeyboardInterrupt:
    return 0
  finally:
    if sock is not None:
      sock.close()
