"""``jgan train --config FILE[:ARG] --workdir DIR [--config.KEY=VALUE ...]``: train one GAN.

Rerun on the same --workdir to resume from its latest checkpoint; SIGTERM/Ctrl-C saves one and exits
with status 75 ("preempted, resume me"; 0 = finished, 2 = an error);
--config.checkpoint.allow_config_change=True resumes even if a result-changing field differs.

Multi-process (docs/multihost.md): add --distributed (SLURM, Open MPI, TPU pods, Kubernetes: detected),
or --coordinator_address HOST:PORT --num_processes N --process_id I; --distributed_timeout S bounds the
rendezvous (default 300 s).
"""

from __future__ import annotations

import os
import shlex
import sys


def one_line(e: BaseException) -> str:
  """An exception's message on one line (multi-line messages joined with spaces)."""
  return " ".join(line.strip() for line in str(e).splitlines() if line.strip())


def main(argv) -> int:
  """Trains the config given in ``argv`` (no program name); 0 when done, 75 (``preemption.EXIT_PREEMPTED``)
  when a signal stopped it after saving a checkpoint, 2 on an error."""
  from jgan.cli import flags

  if flags.help_requested(argv, __doc__):
    return 0
  from absl import logging

  from jgan import checkpoint, multihost

  logging.set_verbosity(logging.WARNING)  # absl's INFO lines (backend probing, TFDS) drown the progress bar
  try:
    dist_kwargs, config_argv = multihost.pop_flags(argv)
    config, workdir = flags.parse_cli(config_argv, prog="jgan train")
    from jgan import config as config_lib

    config_lib.check_keys(config)  # typos in the experiment file itself
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2

  if dist_kwargs is not None:  # before anything touches a device
    try:
      multihost.initialize(**dist_kwargs)
    except multihost.DistributedError as e:
      print(f"error: {one_line(e)}", file=sys.stderr)
      return 2
  from jgan import train

  # Rerunning the same command on the same workdir resumes from its latest checkpoint.
  resume = f"cd {shlex.quote(os.getcwd())} && {shlex.join([sys.executable, *sys.argv])}"
  try:
    state = train.train_and_evaluate(config, workdir, resume_command=resume)
  except (ValueError, FileNotFoundError, FloatingPointError, checkpoint.CheckpointError) as e:
    print(f"error: {one_line(e)}", file=sys.stderr)
    return 2
  from jgan import preemption

  # Stopped by SIGTERM / SIGINT with a checkpoint saved: say so to the scheduler (requeue me).
  return preemption.EXIT_PREEMPTED if int(state.step) < config.train.steps else 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
