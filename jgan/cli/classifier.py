"""``jgan classifier --config configs/classifier_mnist5k.py --workdir DIR``: train the domain classifier.

The classifier gives the features and labels of the ``mnist_*`` metrics (:mod:`jgan.metrics.classifier`);
training is :func:`jgan.classifier_training.train_classifier`.
"""

from __future__ import annotations

import os
import sys


def main(argv) -> int:
  """Trains and saves the classifier of ``--config`` into ``--workdir``; 0 on success, 2 on a bad config."""
  from jgan.cli import flags

  if flags.help_requested(argv, __doc__):
    return 0
  from jgan import classifier_training

  try:
    config, workdir = flags.parse_cli(argv, prog="jgan classifier")
    classifier_training.validate(config)  # before any data is read or anything compiles
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  summary = classifier_training.train_classifier(config, workdir)
  print(
    f"held-out accuracy {100 * summary['test_accuracy']:.1f}% on {summary['num_test']} "
    f"{config.data.name} '{summary['test_split']}' digits (train {100 * summary['train_accuracy']:.1f}%, "
    f"{summary['seconds']:.0f} s); saved to {os.path.abspath(workdir)}"
  )
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
