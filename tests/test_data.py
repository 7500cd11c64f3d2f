"""Data: every TFDS config reads batches under tfds.testing.mock_data; mnist5k; mixtures; iterator state."""

import contextlib

import numpy as np
import pytest
import tensorflow_datasets as tfds

from jgan import data as data_lib
from jgan.data import mixtures, mnist5k
from jgan.metrics import modes
from tests.helpers import load_config

TFDS_CONFIGS = ["dcgan_mnist", "dcgan_fashion_mnist", "dcgan_cifar10", "dcgan_celeb_a", "dcgan_lsun_bedroom"]


@pytest.mark.parametrize("name", TFDS_CONFIGS)
def test_tfds_config_reads_batches_under_mock_data(name):
  c = load_config(name)
  size, channels = c.data.image_size, data_lib.IMAGE_DATASETS[c.data.name].channels
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    it = data_lib.make_iterator(c.data, batch_size=5, seed=0)
    batches = [next(it) for _ in range(3)]  # crosses an epoch boundary (12 examples)
  for b in batches:
    assert b["x"].shape == (5, size, size, channels) and b["x"].dtype == np.float32
    assert b["x"].min() >= -1.0 and b["x"].max() <= 1.0
    assert b["label"].shape == (5,) and b["label"].dtype == np.int32


def test_unprepared_dataset_says_where_it_looked_and_how_to_prepare(tmp_path):
  c = load_config("dcgan_cifar10")
  c.data.data_dir = str(tmp_path)
  with pytest.raises(FileNotFoundError, match=rf"(?s)'cifar10'.*{tmp_path}.*jgan data prepare cifar10"):
    data_lib.make_iterator(c.data, batch_size=4, seed=0)


def test_mnist5k_splits_are_real_disjoint_digits():
  x, y = mnist5k.load_arrays()
  assert x.shape == (5000, 28, 28, 1) and x.dtype == np.uint8 and np.bincount(y).tolist() == [500] * 10
  s = mnist5k.split_indices(y)
  assert len(s["train"]) == 4500 and len(s["test"]) == 500 and not set(s["train"]) & set(s["test"])
  assert np.bincount(y[s["test"]]).tolist() == [50] * 10


def test_mnist5k_through_tfds_matches_the_raw_digits():
  c = load_config("dcgan_mnist5k")
  src = data_lib.tfds_source(c.data, "test")
  x, y = mnist5k.load_arrays()
  test_idx = mnist5k.split_indices(y)["test"]
  got = sorted((int(src[i]["label"]), np.asarray(src[i]["image"]).tobytes()) for i in range(len(src)))
  want = sorted((int(y[i]), x[i].tobytes()) for i in test_idx)
  assert got == want  # PNG round trip is lossless


@pytest.mark.parametrize("name", ["dcgan_mnist5k", "dcgan_cifar10"])
def test_decoded_source_gives_the_same_batches_as_the_tfds_source(name, monkeypatch):
  """The in-memory source (decode once) against TFDS's own decoding, across an epoch boundary."""
  c = load_config(name)
  with (
    tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE)
    if name != "dcgan_mnist5k"
    else contextlib.nullcontext()
  ):
    src = data_lib.cached_source(c.data)
    assert isinstance(src, data_lib.DecodedSource)
    cached = data_lib.make_iterator(c.data, 5, seed=1)
    want_batches = 2 * len(src) // 5 + 1
    got = [next(cached) for _ in range(min(want_batches, 40))]
    monkeypatch.setattr(data_lib, "CACHE_LIMIT_BYTES", 0)  # too small: the plain TFDS source
    assert not isinstance(data_lib.cached_source(c.data), data_lib.DecodedSource)
    plain = data_lib.make_iterator(c.data, 5, seed=1)
    for g in got:
      p = next(plain)
      assert np.array_equal(g["x"], p["x"]) and np.array_equal(g["label"], p["label"])


def test_variable_size_datasets_are_not_cached():
  c = load_config("dcgan_celeb_a")
  with tfds.testing.mock_data(num_examples=4, policy=tfds.testing.MockPolicy.USE_CODE):
    assert not isinstance(data_lib.cached_source(c.data), data_lib.DecodedSource)


def test_image_iterator_is_seeded_and_resumable():
  c = load_config("smoke")
  a = data_lib.make_iterator(c.data, 8, seed=3)
  first = [next(a)["label"] for _ in range(3)]
  state = a.get_state()
  rest = [next(a)["label"] for _ in range(2)]
  b = data_lib.make_iterator(c.data, 8, seed=3)
  assert all(np.array_equal(u, v) for u, v in zip(first, [next(b)["label"] for _ in range(3)]))
  c2 = data_lib.make_iterator(c.data, 8, seed=3)
  c2.set_state(state)
  assert all(np.array_equal(u, v) for u, v in zip(rest, [next(c2)["label"] for _ in range(2)]))
  other = data_lib.make_iterator(c.data, 8, seed=4)
  assert not np.array_equal(first[0], next(other)["label"])


def test_process_shards_partition_the_global_order():
  c = load_config("smoke")
  ds = [data_lib.make_image_dataset(c.data, seed=0, shard_index=i, shard_count=2) for i in range(2)]
  full = data_lib.make_image_dataset(c.data, seed=0)
  assert np.array_equal(ds[1][3]["x"], full[7]["x"])


def test_preprocess_pads_digits_to_32_and_crops_faces():
  digit = np.full((28, 28, 1), 255, np.uint8)
  out = data_lib.preprocess_image(digit, 32)
  assert out.shape == (32, 32, 1) and out[0, 0, 0] == -1.0 and out[16, 16, 0] == 1.0
  face = np.zeros((218, 178, 3), np.uint8)
  face[55:163, 35:143] = 255  # exactly the centred 108x108 crop
  out = data_lib.preprocess_image(face, 64, crop=108)
  assert out.shape == (64, 64, 3) and np.allclose(out, 1.0)


@pytest.mark.parametrize("name,m,sigma", [("ring8", 8, 0.01), ("grid25", 25, 0.05)])
def test_mixtures_cover_their_modes(name, m, sigma):
  x = mixtures.sample(name, 5000, np.random.default_rng(0))
  centres, s = mixtures.get(name)
  assert len(centres) == m and s == sigma
  r = modes.mode_metrics(x, centres, s)
  assert r["modes"] == m and r["high_quality"] > 0.98


def test_mixture_iterator_state_and_sharding():
  a = mixtures.MixtureIterator("ring8", 6, seed=1)
  b0, b1 = next(a), next(a)
  a.set_state({"index": 1})
  assert np.array_equal(next(a)["x"], b1["x"])
  halves = [next(mixtures.MixtureIterator("ring8", 3, seed=1, shard_index=i, shard_count=2))["x"] for i in (0, 1)]
  assert np.array_equal(np.concatenate(halves), b0["x"])


def test_unknown_dataset_lists_choices():
  c = load_config("smoke")
  c.data.name = "imagenet"
  with pytest.raises(ValueError, match="unknown data.name='imagenet'; valid choices: .*mnist5k.*ring8"):
    data_lib.sample_shape(c.data)
