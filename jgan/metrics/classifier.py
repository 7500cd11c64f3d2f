"""Domain classifier for 28/32 px digits: features and labels for MNIST-FID/KID/IS/PR and mode counts.

Inception features are a poor fit for 28 px grayscale digits (the images are up-sampled 10x and look
nothing like ImageNet), so MNIST-like datasets are evaluated, as in much of the GAN literature, with a
small CNN trained on the dataset itself: its penultimate layer gives the features (FID, KID,
precision/recall, density/coverage), its softmax the class probabilities (Inception Score with K = 10)
and its argmax the class of each sample (mode counts; Stacked MNIST's 1,000 modes by classifying each
of the 3 channels).

Train one with ``jgan classifier --config configs/classifier_mnist5k.py --workdir DIR``
(:mod:`jgan.classifier_training`; about a minute on 2 CPU cores). The directory holds ``params/``,
``config.json`` and ``classifier.json``; :func:`load` and :func:`load_classifier` rebuild the model from them.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from flax import nnx

CLASSIFIER_ENV = "JGAN_CLASSIFIER"
DEFAULT_PATH = os.path.join("~", ".cache", "jgan", "classifier_mnist5k")
INPUT_SIZE = 28
# Datasets whose images one classifier understands: a digit classifier serves mnist5k and MNIST.
DOMAINS = {"mnist5k": "digits", "mnist": "digits", "stacked_mnist5k": "digits", "fashion_mnist": "fashion"}


def to_classifier_input(images: jax.Array) -> jax.Array:
  """``[B, H, W, 1]`` images in [-1, 1] -> ``[B, 28, 28, 1]`` float32.

  32 px digits are jgan's 28 px digits zero-padded by 2 (:func:`jgan.data.preprocess_image`), so they
  are centre-cropped back; any other size is resized (bilinear, antialiased).
  """
  b, h, w, c = images.shape
  if c != 1:
    raise ValueError(
      f"the digit classifier takes 1-channel images; got shape {images.shape} "
      "(Stacked MNIST: classify each channel, see stacked_labels)"
    )
  x = images.astype(jnp.float32)
  if (h, w) == (32, 32):
    return x[:, 2:30, 2:30]
  if (h, w) != (INPUT_SIZE, INPUT_SIZE):
    x = jax.image.resize(x, (b, INPUT_SIZE, INPUT_SIZE, 1), "bilinear")
  return x


def _he_normal(key, shape, dtype=jnp.float32):
  """He-normal weights drawn with numpy from ``key``: eager jax.random would compile once per shape."""
  if isinstance(key, jax.core.Tracer):  # under nnx.eval_shape only the shape matters
    return jnp.zeros(shape, dtype)
  gen = np.random.default_rng(np.asarray(jax.random.key_data(key)))
  return jax.device_put(gen.normal(0.0, np.sqrt(2.0 / np.prod(shape[:-1])), shape).astype(dtype))


def _zeros(key, shape, dtype=jnp.float32):
  del key
  return jax.device_put(np.zeros(shape, dtype))


class DigitClassifier(nnx.Module):
  """CNN: ``[B, H, W, 1]`` in [-1, 1] -> ``(features [B, feature_dim] >= 0, logits [B, num_classes])``.

  Three 3x3 conv + ReLU stages (28 -> 14 -> 7 px by 2x2 max pooling), a ReLU dense layer (the
  features) and a linear output. No BatchNorm, so the model is a function of its parameters alone.
  """

  def __init__(self, *, widths=(16, 32, 64), feature_dim: int = 128, num_classes: int = 10, rngs: nnx.Rngs):
    convs, cin = [], 1
    for w in widths:
      convs.append(nnx.Conv(cin, w, (3, 3), padding="SAME", kernel_init=_he_normal, bias_init=_zeros, rngs=rngs))
      cin = w
    self.convs = nnx.List(convs)
    side = INPUT_SIZE // 2 ** (len(widths) - 1)
    init: dict[str, Any] = dict(kernel_init=_he_normal, bias_init=_zeros, rngs=rngs)
    self.dense = nnx.Linear(side * side * cin, feature_dim, **init)
    self.out = nnx.Linear(feature_dim, num_classes, **init)

  def __call__(self, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    x = to_classifier_input(images)
    for i, conv in enumerate(self.convs):
      if i > 0:  # pool between stages: 28 -> 14 -> 7
        x = nnx.max_pool(x, (2, 2), (2, 2))
      x = jax.nn.relu(conv(x))
    features = jax.nn.relu(self.dense(x.reshape(x.shape[0], -1)))
    return features, self.out(features)


def make_model(model_cfg, rngs: nnx.Rngs) -> DigitClassifier:
  """The classifier described by a config's ``model`` section (``widths``, ``feature_dim``, ``num_classes``)."""
  return DigitClassifier(
    widths=tuple(model_cfg.widths), feature_dim=model_cfg.feature_dim, num_classes=model_cfg.num_classes, rngs=rngs
  )


class LoadedClassifier(NamedTuple):
  """A trained classifier: ``apply(images) -> (features, logits)`` (jitted), its config and summary."""

  apply: Callable[[jax.Array], tuple[jax.Array, jax.Array]]
  config: ml_collections.ConfigDict
  info: dict  # classifier.json: test_accuracy, digest, ...


def classifier_path(path: str = "") -> str:
  """The classifier directory: ``path``, else ``$JGAN_CLASSIFIER``, else :data:`DEFAULT_PATH`.

  Raises FileNotFoundError with the command that trains one if it holds no classifier.
  """
  chosen = os.path.abspath(os.path.expanduser(path or os.environ.get(CLASSIFIER_ENV, "") or DEFAULT_PATH))
  if not os.path.isfile(os.path.join(chosen, "classifier.json")):
    raise FileNotFoundError(
      f"no trained domain classifier at {chosen!r} (metrics mnist_* need one). Train it once (about a "
      f"minute on CPU): jgan classifier --config configs/classifier_mnist5k.py "
      f"--workdir {chosen}; or point evals.classifier_path (CLI: --classifier) or ${CLASSIFIER_ENV} at one."
    )
  return chosen


def load(path: str = "") -> LoadedClassifier:
  """Restores a classifier saved by :func:`jgan.classifier_training.train_classifier`.

  ``path`` as in :func:`classifier_path`.
  """
  import orbax.checkpoint as ocp

  path = classifier_path(path)
  with open(os.path.join(path, "config.json")) as f:
    config = ml_collections.ConfigDict(json.load(f))
  with open(os.path.join(path, "classifier.json")) as f:
    info = json.load(f)
  graphdef, params = nnx.split(nnx.eval_shape(lambda: make_model(config.model, nnx.Rngs(0))))
  target = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), nnx.to_pure_dict(params))
  with ocp.StandardCheckpointer() as ckptr:
    restored = ckptr.restore(os.path.join(path, "params"), target)
  nnx.replace_by_pure_dict(params, restored)
  return LoadedClassifier(functools.partial(_apply, graphdef, params), config, info)


@functools.partial(jax.jit, static_argnums=0)
def _apply(graphdef, params, images):
  # Module level with a static (hashable) graphdef: every load of the same architecture shares one
  # compilation per input shape.
  return nnx.merge(graphdef, params)(images)


def load_classifier(path: str = "") -> tuple[Callable[[jax.Array], jax.Array], Callable[[jax.Array], jax.Array]]:
  """``(features_fn, logits_fn)`` of a saved classifier (see :func:`classifier_path` for ``path``).

  Both take images float32 ``[B, H, W, 1]`` in [-1, 1] (28 or 32 px, other sizes resized) and return
  ``[B, feature_dim]`` penultimate ReLU features and ``[B, num_classes]`` logits.
  """
  apply = load(path).apply
  return (lambda x: apply(x)[0]), (lambda x: apply(x)[1])


def stacked_labels(logits_fn: Callable[[jax.Array], jax.Array], images: jax.Array) -> jax.Array:
  """Stacked-MNIST mode of ``[B, H, W, 3]`` images: ``100 c0 + 10 c1 + c2`` (int32 ``[B]`` in [0, 1000)).

  Each channel is one digit, classified separately (Srivastava et al. 2017; Lin et al. 2018).
  """
  digits = [jnp.argmax(logits_fn(images[..., i : i + 1]), axis=-1) for i in range(3)]
  return (100 * digits[0] + 10 * digits[1] + digits[2]).astype(jnp.int32)
