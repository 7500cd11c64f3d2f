"""The image datasets jgan ships: TFDS name, channels, native size, centre crop, train split.

Datasets prepared from a user's own folders are described by the same :class:`ImageSpec`, read from
their metadata (:func:`jgan.data.folder_datasets.find_spec`).

Its own module so that :mod:`jgan.data` (reading) and :mod:`jgan.data.prepare` (preparing) share one
table without importing each other.
"""

from __future__ import annotations

from typing import NamedTuple


class ImageSpec(NamedTuple):
  """A TFDS image dataset: its TFDS name, channels, native size (None if variable) and centre crop."""

  tfds_name: str
  channels: int
  native_size: int | None
  crop: int = 0  # side of the centre crop taken before resizing (0: the largest centred square)
  train_split: str = "train"
  num_classes: int = 0  # classes of the "label" feature (0: unlabelled); conditional models use it
  stacked: bool = False  # Stacked MNIST: each example stacks 3 examples of tfds_name (jgan.data.stacked)
  fingerprint: str = ""  # a prepared folder's stored examples (jgan.data.folder_datasets); "" for TFDS's


IMAGE_DATASETS: dict[str, ImageSpec] = {
  "mnist5k": ImageSpec("mnist5k", 1, 28, num_classes=10),
  "mnist": ImageSpec("mnist", 1, 28, num_classes=10),
  "fashion_mnist": ImageSpec("fashion_mnist", 1, 28, num_classes=10),
  "stacked_mnist5k": ImageSpec("mnist5k", 3, 28, num_classes=1000, stacked=True),
  "cifar10": ImageSpec("cifar10", 3, 32, num_classes=10),
  # DCGAN-style CelebA: centre crop 108x108 of the 218x178 aligned faces, resized to 64.
  "celeb_a": ImageSpec("celeb_a", 3, None, crop=108),
  "lsun_bedroom": ImageSpec("lsun/bedroom", 3, None),
}
