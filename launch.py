"""jgan's command line.

Train:   python launch.py --config configs/dcgan_mnist5k.py --workdir runs/x [--config.KEY=VALUE ...]
Others:  python launch.py SUBCOMMAND [args]   (run `python launch.py SUBCOMMAND --help`)
"""

import importlib
import sys

import jgan  # noqa: F401  (first: applies the XLA:CPU work-around before JAX starts)

# Subcommands with their own argument parsers: name -> module with main(argv) -> int.
SUBCOMMANDS = {
    "dynamics": "jgan.dynamics_report",
    "eval": "jgan.eval_cli",
}


def _train(argv):
  from absl import app, flags
  from ml_collections import config_flags

  config_flags.DEFINE_config_file("config", None, "Experiment config file (configs/*.py[:arg]).",
                                  lock_config=True)
  flags.DEFINE_string("workdir", None, "Directory for config, metrics, samples and checkpoints.")
  flags.mark_flags_as_required(["config", "workdir"])

  def main(_):
    from absl import logging

    from jgan import train

    logging.set_verbosity(logging.WARNING)  # absl's INFO lines (backend probing, TFDS) drown the progress bar

    try:
      train.train_and_evaluate(flags.FLAGS.config, flags.FLAGS.workdir)
    except (ValueError, FileNotFoundError, FloatingPointError) as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
    return 0

  app.run(main, argv=argv)


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
