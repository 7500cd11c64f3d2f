"""The domain classifier for digit datasets (jgan.metrics.classifier), trained on mnist5k's 4,500 train digits.

jgan classifier --config configs/classifier_mnist5k.py --workdir ~/.cache/jgan/classifier_mnist5k

Held-out accuracy is measured on mnist5k's 500 'test' digits (50 per class) and written to
classifier.json. About a minute on 2 CPU cores.
"""

from jgan import classifier_training


def get_config(arg=None):
  del arg
  return classifier_training.default_config()
