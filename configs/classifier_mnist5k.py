"""The domain classifier for digit datasets (jgan.metrics.classifier), trained on mnist5k's 4,500 train digits.

jgan classifier --config configs/classifier_mnist5k.py --workdir ~/.cache/jgan/classifier_mnist5k

Held-out accuracy is measured on mnist5k's 500 'test' digits (50 per class) and written to
classifier.json. About a minute on 2 CPU cores.
"""

import ml_collections


def get_config(arg=None):
  del arg
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.name = "mnist5k"
  c.data.image_size = 28
  c.data.split = ""  # unused (the two splits below are read); kept for jgan.data.tfds_source
  c.data.data_dir = ""  # "" = TFDS's default (TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.data.train_split = "train"
  c.data.test_split = "test"

  c.model = ml_collections.ConfigDict()
  c.model.widths = (16, 32, 64)  # channels of the 28, 14 and 7 px conv stages
  c.model.feature_dim = 128  # penultimate layer: the features of mnist_fid*, mnist_kid*, mnist_pr* ...
  c.model.num_classes = 10

  c.train = ml_collections.ConfigDict()
  c.train.steps = 2000  # ~28 epochs of 4,500 digits
  c.train.batch_size = 64
  c.train.lr = 2e-3  # peak of a cosine decay to 0
  c.train.weight_decay = 1e-4
  c.train.shift = 2  # augmentation: random translations of up to this many px
  c.train.log_every = 500
  return c
