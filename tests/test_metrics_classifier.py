"""The digit domain classifier: training, saving/loading, input handling, Stacked-MNIST labels, accuracy.

``small_classifier`` (a few seconds of training) serves the evaluation tests; ``full_classifier`` is the
real configs/classifier_mnist5k.py model (slow), which must reach >= 97% on mnist5k's held-out digits.
Both are trained once per test session, shared by the pytest-xdist workers through a file lock.
"""

from __future__ import annotations

import fcntl
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import classifier_training
from jgan.metrics import classifier
from tests.helpers import load_config


def _shared_classifier(tmp_path_factory, name: str, **overrides) -> str:
  """Trains configs/classifier_mnist5k.py with ``overrides`` once for all workers; returns its directory."""
  root = tmp_path_factory.getbasetemp()
  root = root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root  # shared by the xdist workers
  path = str(root / name)
  with open(str(root / f"{name}.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.exists(os.path.join(path, "classifier.json")):
      config = load_config("classifier_mnist5k")
      for key, value in overrides.items():
        section, _, field = key.partition(".")
        config[section][field] = value
      config.train.log_every = 0
      classifier_training.train_classifier(config, path)
  return path


def _read_json(directory: str) -> dict:
  with open(os.path.join(directory, "classifier.json")) as f:
    return json.load(f)


@pytest.fixture(scope="session")
def small_classifier(tmp_path_factory) -> str:
  """A tiny classifier (~90% accurate): enough to tell real digits from collapsed ones in tests."""
  return _shared_classifier(
    tmp_path_factory, "clf_small", **{"model.widths": (8, 16, 16), "model.feature_dim": 32, "train.steps": 150}
  )


@pytest.fixture(scope="session")
def full_classifier(tmp_path_factory) -> str:
  return _shared_classifier(tmp_path_factory, "clf_full")


def test_saved_classifier_loads_and_handles_sizes(small_classifier):
  features_fn, logits_fn = classifier.load_classifier(small_classifier)
  info = _read_json(small_classifier)
  assert info["num_test"] == 500 and info["num_train"] == 4500
  assert info["test_accuracy"] > 0.8, info
  x = jnp.asarray(np.random.default_rng(0).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32))
  f, logits = features_fn(x), logits_fn(x)
  assert f.shape == (3, 32) and logits.shape == (3, 10) and float(jnp.min(f)) >= 0.0
  # 32 px digits are 28 px ones zero-padded (background -1) by 2: the classifier crops them back.
  x32 = jnp.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1.0)
  np.testing.assert_allclose(np.asarray(logits_fn(x32)), np.asarray(logits), rtol=1e-6, atol=1e-6)
  # Reloading gives the same function (and the digest of the parameters that were saved).
  loaded = classifier.load(small_classifier)
  np.testing.assert_array_equal(np.asarray(loaded.apply(x)[1]), np.asarray(logits))
  assert loaded.info["digest"] == info["digest"] and loaded.config.data.name == "mnist5k"


def test_missing_classifier_says_how_to_train(tmp_path, monkeypatch):
  monkeypatch.delenv(classifier.CLASSIFIER_ENV, raising=False)
  with pytest.raises(FileNotFoundError, match="jgan classifier --config"):
    classifier.classifier_path(str(tmp_path / "none"))
  with pytest.raises(ValueError, match="1-channel"):
    classifier.to_classifier_input(jnp.zeros((1, 28, 28, 3)))


def test_random_shift_translates_within_range():
  x = jnp.asarray(np.random.default_rng(1).uniform(-1, 1, (16, 6, 7, 1)).astype(np.float32))
  assert classifier_training.random_shift(jax.random.key(0), x, 0) is x
  out = np.asarray(classifier_training.random_shift(jax.random.key(0), x, 2))
  padded = np.pad(np.asarray(x), ((0, 0), (2, 2), (2, 2), (0, 0)), constant_values=-1.0)
  seen = set()
  for i in range(16):
    matches = [
      (dy, dx) for dy in range(5) for dx in range(5) if np.array_equal(out[i], padded[i, dy : dy + 6, dx : dx + 7])
    ]
    assert matches, f"image {i} is not a translation by at most 2 px"
    seen.add(matches[0])
  assert len(seen) > 1  # offsets differ between images


def test_stacked_labels():
  # A stand-in classifier that reads the digit off a constant channel value d / 10.
  logits_fn = lambda x: jax.nn.one_hot(jnp.round(10 * x.mean(axis=(1, 2, 3))).astype(jnp.int32), 10)
  digits = np.array([[3, 0, 7], [9, 9, 9], [0, 0, 1]])
  images = jnp.asarray(np.broadcast_to(digits[:, None, None, :] / 10, (3, 28, 28, 3)).astype(np.float32))
  np.testing.assert_array_equal(np.asarray(classifier.stacked_labels(logits_fn, images)), [307, 999, 1])


@pytest.mark.slow
def test_full_classifier_reaches_97_percent_on_held_out_digits(full_classifier):
  info = _read_json(full_classifier)
  print(f"held-out accuracy {info['test_accuracy']:.3f} in {info['seconds']:.0f} s")
  assert info["num_test"] == 500
  assert info["test_accuracy"] >= 0.97, info
