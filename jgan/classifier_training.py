"""Training the domain classifier that :mod:`jgan.metrics.classifier` loads (``jgan classifier``).

    jgan classifier --config configs/classifier_mnist5k.py --workdir ~/.cache/jgan/classifier_mnist5k

About a minute on 2 CPU cores: mnist5k's 4,500 train digits with random +-2 px shifts, Adam with a
cosine-decayed learning rate. The directory gets ``params/`` (an Orbax PyTree checkpoint of the
parameters), ``config.json`` (the model and data config) and ``classifier.json`` (held-out accuracy,
parameter digest, library versions), which :func:`jgan.metrics.classifier.load` reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

from jgan import data as data_lib
from jgan import run_info
from jgan.config_checks import Choices, Field, Range, Rule, check_value, config_from
from jgan.metrics import classifier

log = logging.getLogger(__name__)


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


def _loss(model: classifier.DigitClassifier, images, labels):
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
    _, logits = apply_fn(images[i : i + batch_size])
    hits += int(np.sum(np.asarray(jnp.argmax(logits, -1)) == labels[i : i + batch_size]))
  return hits / len(images)


def _three_positive(widths) -> str | None:
  ok = len(widths) == 3 and all(isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in widths)
  return None if ok else "must be three positive integers (channels at 28, 14 and 7 px)"


# The classifier config's keys (its own schema: jgan.config_schema is the GANs'), in order.
# fmt: off
FIELDS: tuple[Field, ...] = (
  Field("seed", int, 0, Range(0, 2**32 - 1), "initialisation and batch order"),
  Field("data.name", str, "mnist5k", Choices(lambda: data_lib.IMAGE_DATASETS), "the digits learnt from"),
  Field("data.image_size", int, 28, Range(1), "side in px"),
  Field("data.split", str, "", None, "unused (train_split and test_split are read); kept for jgan.data.tfds_source"),
  Field("data.data_dir", str, "", None, "TFDS data directory ('' = $TFDS_DATA_DIR or ~/tensorflow_datasets)"),
  Field("data.train_split", str, "train", None, "the split trained on"),
  Field("data.test_split", str, "test", None, "the held-out split the accuracy is measured on"),
  Field("model.widths", tuple, (16, 32, 64), Rule(_three_positive, "three positive integers"),
        "channels of the 28, 14 and 7 px conv stages"),
  Field("model.feature_dim", int, 128, Range(1),
        "penultimate layer: the features of mnist_fid*, mnist_kid*, mnist_pr* ..."),
  Field("model.num_classes", int, 10, Range(1), "classes"),
  Field("train.steps", int, 2000, Range(1, 2**31 - 1), "batches (2,000: ~28 epochs of 4,500 digits)"),
  Field("train.batch_size", int, 64, Range(1), "digits per batch"),
  Field("train.lr", float, 2e-3, Range(0, lo_open=True), "peak of a cosine decay to 0"),
  Field("train.weight_decay", float, 1e-4, Range(0), "AdamW's weight decay"),
  Field("train.shift", int, 2, Range(0, 13), "augmentation: random translations of up to this many px"),
  Field("train.log_every", int, 500, Range(0), "loss printed every this many steps without a progress bar (0 = never)"),
)
# fmt: on


def default_config() -> ml_collections.ConfigDict:
  """The classifier of the ``mnist_*`` metrics: mnist5k's 4,500 train digits, held-out test on its 500
  (:data:`FIELDS`' defaults).

  ``configs/classifier_mnist5k.py`` returns this; :func:`ensure_classifier` trains it on first use.
  """
  return config_from(FIELDS)


def validate(config) -> None:
  """Raises ValueError (one line naming the key) for a key :data:`FIELDS` lacks or a value out of range."""
  from jgan import config as config_lib

  config_lib.check_keys(config, default_config())
  for f in FIELDS:
    node = config
    for part in f.key.split("."):
      node = node[part]
    check_value(f, node)


def ensure_classifier(path: str = "", *, progress: bool = True) -> str:
  """The domain classifier's directory, training the default one there first if it holds none.

  ``path`` as in :func:`jgan.metrics.classifier.classifier_path` (explicit, ``$JGAN_CLASSIFIER`` or the
  cache ``~/.cache/jgan/classifier_mnist5k``). An explicit path that holds no classifier is an error
  (it names a classifier the user meant to have); the cache one is trained on demand with
  :func:`default_config` (about a minute on 2 CPU cores), into a temporary directory renamed when
  done and under a file lock, so concurrent evaluations train it once and never read half of it.
  """
  import fcntl
  import shutil

  explicit = path or os.environ.get(classifier.CLASSIFIER_ENV, "")
  if explicit:
    return classifier.classifier_path(path)
  target = os.path.abspath(os.path.expanduser(classifier.DEFAULT_PATH))
  if os.path.isfile(os.path.join(target, "classifier.json")):
    return target
  os.makedirs(os.path.dirname(target), exist_ok=True)
  with open(target + ".lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.isfile(os.path.join(target, "classifier.json")):
      log.info(
        f"the mnist_* metrics need the domain classifier; training it once into {target} (about a minute; "
        "`jgan classifier --config configs/classifier_mnist5k.py --workdir DIR` trains it by hand)"
      )
      tmp = f"{target}.tmp-{os.getpid()}"
      shutil.rmtree(tmp, ignore_errors=True)
      summary = train_classifier(default_config(), tmp, progress=progress)
      shutil.rmtree(target, ignore_errors=True)  # a directory without classifier.json: an interrupted copy
      os.replace(tmp, target)
      log.info(f"domain classifier: held-out accuracy {100 * summary['test_accuracy']:.1f}%")
  return target


def train_classifier(config, workdir: str, *, progress: bool = False) -> dict:
  """Trains the classifier of ``config`` (see configs/classifier_mnist5k.py) and saves it in ``workdir``.

  Adam with a cosine-decayed learning rate on ``config.train.steps`` batches drawn with replacement from
  the train split, each image shifted by up to ``config.train.shift`` px. Returns the summary also
  written to ``classifier.json``: ``{"test_accuracy": float in [0, 1], "train_accuracy", "seconds",
  "digest", ...}``.
  """
  validate(config)
  t0 = time.perf_counter()
  c = config
  x_train, y_train = data_lib.split_arrays(c.data, c.data.train_split)
  x_test, y_test = data_lib.split_arrays(c.data, c.data.test_split)
  model = classifier.make_model(c.model, nnx.Rngs(c.seed))
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
  bar = None
  if progress:
    from tqdm import tqdm

    bar = tqdm(total=c.train.steps, unit="step", desc="domain classifier", file=sys.stderr)
  for i in range(c.train.steps):
    params, opt_state, loss = step(params, opt_state, x_dev, y_dev, rng, i)
    if bar is not None:
      bar.update(1)
    elif c.train.log_every and (i + 1) % c.train.log_every == 0:
      log.info(f"step {i + 1}/{c.train.steps}: loss {float(loss):.4f}")
  if bar is not None:
    bar.close()
  apply_fn = jax.jit(lambda x: nnx.merge(graphdef, params)(x))
  summary = {
    "test_accuracy": accuracy(apply_fn, x_test, y_test),
    "train_accuracy": accuracy(apply_fn, x_train, y_train),
    "test_split": c.data.test_split,
    "num_test": int(len(y_test)),
    "num_train": int(len(y_train)),
    "seconds": time.perf_counter() - t0,
    "digest": params_digest(params),
    "versions": run_info.library_versions(),
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
