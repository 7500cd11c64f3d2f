"""jgan's command line.

Train:   python launch.py --config configs/dcgan_mnist5k.py --workdir runs/x [--config.KEY=VALUE ...]
         (rerun on the same --workdir to resume from its latest checkpoint; SIGTERM/Ctrl-C saves one;
         --config.checkpoint.allow_config_change=True resumes even if a result-changing field differs)
Multi-process (docs/multihost.md): add --distributed (SLURM, Open MPI, TPU pods, Kubernetes: detected),
         or --coordinator_address HOST:PORT --num_processes N --process_id I; --distributed_timeout S
         bounds the rendezvous (default 300 s)
Others:  python launch.py SUBCOMMAND [args]   (run `python launch.py SUBCOMMAND --help`)
"""

import importlib
import os
import shlex
import sys

import jgan  # noqa: F401  (first: applies the XLA:CPU work-around before JAX starts)

# Subcommands with their own argument parsers: name -> module with main(argv) -> int.
SUBCOMMANDS = {
    "dynamics": "jgan.dynamics_report",
    "sweep": "jgan.sweep_cli",
    "latent": "jgan.latent_cli",
    "eval": "jgan.eval_cli",
}


def _train(argv):
  if any(a in ("-h", "--help", "--helpshort", "--helpfull") for a in argv[1:]):
    print(__doc__.strip())
    return 0
  from absl import logging

  from jgan import checkpoint, config as config_lib, distributed

  logging.set_verbosity(logging.WARNING)  # absl's INFO lines (backend probing, TFDS) drown the progress bar
  try:
    dist_kwargs, config_argv = distributed.pop_flags(argv)
    config, workdir = config_lib.parse_cli(config_argv)
    from configs import common

    config_lib.check_keys(config, common.get_config())  # typos in the experiment file itself
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2

  if dist_kwargs is not None:  # before anything touches a device
    try:
      distributed.initialize(**dist_kwargs)
    except distributed.DistributedError as e:
      print(f"error: {_one_line(e)}", file=sys.stderr)
      return 2
  from jgan import train

  # Rerunning the same command on the same workdir resumes from its latest checkpoint.
  resume = f"cd {shlex.quote(os.getcwd())} && {shlex.join([sys.executable, *argv])}"
  try:
    train.train_and_evaluate(config, workdir, resume_command=resume)
  except (ValueError, FileNotFoundError, FloatingPointError, checkpoint.CheckpointError) as e:
    print(f"error: {_one_line(e)}", file=sys.stderr)
    return 2
  return 0


def _one_line(e: BaseException) -> str:
  return " ".join(line.strip() for line in str(e).splitlines() if line.strip())


def run(argv):
  if len(argv) > 1 and argv[1] in SUBCOMMANDS:
    module = importlib.import_module(SUBCOMMANDS[argv[1]])
    return module.main(argv[2:])
  if len(argv) > 1 and not argv[1].startswith("-"):
    print(f"error: unknown subcommand {argv[1]!r}; valid choices: train (default), {', '.join(SUBCOMMANDS)}",
          file=sys.stderr)
    return 2
  return _train(argv)


if __name__ == "__main__":
  sys.exit(run(sys.argv))
