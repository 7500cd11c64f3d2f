"""Domain classifier for 28/32 px digits: features and labels for MNIST-FID/KID/IS/PR and mode counts.

Inception features are a poor fit for 28 px grayscale digits (the images are up-sampled 10x and look
nothing like ImageNet), so MNIST-like datasets are evaluated, as in much of the GAN literature, with a
small CNN trained on the dataset itself: its penultimate layer gives the features (FID, KID,
precision/recall, density/coverage), its softmax the class probabilities (Inception Score with K = 10)
and its argmax the class of each sample (mode counts; Stacked MNIST's 1,000 modes by classifying each
of the 3 channels).

Train one with::

  python -m jgan.metrics.classifier --config configs/classifier_mnist5k.py --workdir runs/clf

(about a minute on 2 CPU cores; mnist5k's 4,500 train digits with random +-2 px shifts). The directory
holds ``params/`` (an Orbax PyTree checkpoint of the parameters), ``config.json`` (the model and data
config) and ``classifier.json`` (held-out accuracy, parameter digest, library versions);
:func:`load_classifier` rebuilds the model from them.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import sys
import time
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
from flax import nnx

CLASSIFIER_ENV = "JGAN_CLASSIFIER"
DEFAULT_PATH = os.path.join("~", ".cache", "jgan", "classifier_mnist5k")
INPUT_SIZE = 28
# Datasets whose images one classifier understands: a digit classifier serves mnist5k and MNIST.
DOMAINS = {"mnist5k": "digits", "mnist": "digits", "fashion_mnist": "fashion"}


def to_classifier_input(images: jax.Array) -> jax.Array:
  """``[B, H, W, 1]`` images in [-1, 1] -> ``[B, 28, 28, 1]`` float32.

  32 px digits are jgan's 28 px digits zero-padded by 2 (:func:`jgan.data.preprocess_image`), so they
  are centre-cropped back; any other size is resized (bilinear, antialiased).
  """
  b, h, w, c = images.shape
  if c != 1:
    raise ValueError(f"the digit classifier takes 1-channel images; got shape {images.shape} "
                     "(Stacked MNIST: classify each channel, see stacked_labels)")
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
    init = dict(kernel_init=_he_normal, bias_init=_zeros, rngs=rngs)
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
  return DigitClassifier(widths=tuple(model_cfg.widths), feature_dim=model_cfg.feature_dim,
                         num_classes=model_cfg.num_classes, rngs=rngs)


def random_shift(rng: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
  """Translates each image of ``[B, H, W, C]`` by independent integer offsets in ``[-max_shift, max_shift]``.

  Vacated pixels are filled with -1 (the background of [-1, 1] digits).
  """
  if max_shift == 0:
    return images
  b, h, w, _ = images.shape
  padded = jnp.pad(images, ((0, 0), (max_shift,) * 2, (max_shift,) * 2, (0, 0)), constant_values=-1.0)
  offsets = jax.random.randint(rng, (b, 2), 0, 2 * max_shift + 1)
  crop = lambda img, o: jax.lax.dynamic_slice(img, (o[0], o[1], 0), (h, w, img.shape[-1]))
  return jax.vmap(crop)(padded, offsets)


def split_arrays(data_cfg, split: str, limit: int | None = None) -> tuple[np.ndarray, np.ndarray]:
  """A dataset split as arrays: images float32 ``[N, S, S, C]`` in [-1, 1] and labels int32 ``[N]``.

  ``limit``: the first ``limit`` examples of a fixed permutation (all if None); see
  :func:`jgan.evaluation.split_batches`.
  """
  from jgan import evaluation

  batches = list(evaluation.split_batches(data_cfg, split, limit, batch_size=1000))
  return np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])


def _loss(model: DigitClassifier, images, labels):
  _, logits = model(images)
  return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def params_digest(params) -> str:
  """SHA-256 (first 16 hex digits) of a parameter pytree's bytes: identifies a trained classifier."""
  h = hashlib.sha256()
  for leaf in jax.tree.leaves(params):
    h.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
  return h.hexdigest()[:16]


def accuracy(apply_fn: Callable, images: np.ndarray, labels: np.ndarray, batch_size: int = 500) -> float:
  """Share of ``images`` whose argmax class equals ``labels`` (``apply_fn(x) -> (features, logits)``)."""
  hits = 0
  for i in range(0, len(images), batch_size):
    _, logits = apply_fn(images[i:i + batch_size])
    hits += int(np.sum(np.asarray(jnp.argmax(logits, -1)) == labels[i:i + batch_size]))
  return hits / len(images)


def train_classifier(config, workdir: str) -> dict:
  """Trains the classifier of ``config`` (see configs/classifier_mnist5k.py) and saves it in ``workdir``.

  Adam with a cosine-decayed learning rate on ``config.train.steps`` batches drawn with replacement from
  the train split, each image shifted by up to ``config.train.shift`` px. Returns the summary also
  written to ``classifier.json``: ``{"test_accuracy": float in [0, 1], "train_accuracy", "seconds",
  "digest", ...}``.
  """
  import orbax.checkpoint as ocp
  from jgan import train as train_lib

  t0 = time.perf_counter()
  c = config
  x_train, y_train = split_arrays(c.data, c.data.train_split)
  x_test, y_test = split_arrays(c.data, c.data.test_split)
  model = make_model(c.model, nnx.Rngs(c.seed))
  graphdef, params = nnx.split(model)
  tx = optax.adamw(optax.cosine_decay_schedule(c.train.lr, c.train.steps), weight_decay=c.train.weight_decay)
  opt_state = tx.init(params)
  x_dev, y_dev = jax.device_put(x_train), jax.device_put(y_train)

  @jax.jit
  def step(params, opt_state, x_dev, y_dev, rng, i):  # the data are arguments, not baked-in constants
    k_idx, k_shift = jax.random.split(jax.random.fold_in(rng, i))  # folded inside: eager fold_in is slow
    idx = jax.random.randint(k_idx, (c.train.batch_size,), 0, x_dev.shape[0])
    images = random_shift(k_shift, x_dev[idx], c.train.shift)
    loss, grads = jax.value_and_grad(lambda p: _loss(nnx.merge(graphdef, p), images, y_dev[idx]))(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  rng = jax.random.key(c.seed)
  for i in range(c.train.steps):
    params, opt_state, loss = step(params, opt_state, x_dev, y_dev, rng, i)
    if c.train.log_every and (i + 1) % c.train.log_every == 0:
      print(f"step {i + 1}/{c.train.steps}: loss {float(loss):.4f}", file=sys.stderr)
  apply_fn = jax.jit(lambda x: nnx.merge(graphdef, params)(x))
  summary = {
      "test_accuracy": accuracy(apply_fn, x_test, y_test),
      "train_accuracy": accuracy(apply_fn, x_train, y_train),
      "test_split": c.data.test_split, "num_test": int(len(y_test)), "num_train": int(len(y_train)),
      "seconds": time.perf_counter() - t0, "digest": params_digest(params),
      "versions": train_lib.library_versions(),
  }
  workdir = os.path.abspath(workdir)
  os.makedirs(workdir, exist_ok=True)
  with ocp.StandardCheckpointer() as ckptr:
    ckptr.save(os.path.join(workdir, "params"), nnx.to_pure_dict(params), force=True)
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(c.to_json_best_effort(indent=2, sort_keys=True))
  with open(os.path.join(workdir, "classifier.json"), "w") as f:
    json.dump(summary, f, indent=2)
  return summary


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
        f"minute on CPU): python -m jgan.metrics.classifier --config configs/classifier_mnist5k.py "
        f"--workdir {chosen}; or point evals.classifier_path (CLI: --classifier) or ${CLASSIFIER_ENV} at one.")
  return chosen


def load(path: str = "") -> LoadedClassifier:
  """Restores a classifier saved by :func:`train_classifier` (see :func:`classifier_path` for ``path``)."""
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
  digits = [jnp.argmax(logits_fn(images[..., i:i + 1]), axis=-1) for i in range(3)]
  return (100 * digits[0] + 10 * digits[1] + digits[2]).astype(jnp.int32)


def main(argv) -> int:
  """``python -m jgan.metrics.classifier --config configs/classifier_mnist5k.py --workdir DIR``."""
  from absl import flags

  from jgan import config as config_lib

  try:
    config, workdir = config_lib.parse_cli(argv, flags.FlagValues())
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  summary = train_classifier(config, workdir)
  print(f"held-out accuracy {100 * summary['test_accuracy']:.1f}% on {summary['num_test']} "
        f"{config.data.name} '{summary['test_split']}' digits (train {100 * summary['train_accuracy']:.1f}%, "
        f"{summary['seconds']:.0f} s); saved to {os.path.abspath(workdir)}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv))
