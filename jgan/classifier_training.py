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
import os
import sys
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
from flax import nnx

from jgan import data as data_lib
from jgan import run_info
from jgan.metrics import classifier


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


def train_classifier(config, workdir: str) -> dict:
  """Trains the classifier of ``config`` (see configs/classifier_mnist5k.py) and saves it in ``workdir``.

  Adam with a cosine-decayed learning rate on ``config.train.steps`` batches drawn with replacement from
  the train split, each image shifted by up to ``config.train.shift`` px. Returns the summary also
  written to ``classifier.json``: ``{"test_accuracy": float in [0, 1], "train_accuracy", "seconds",
  "digest", ...}``.
  """
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
  for i in range(c.train.steps):
    params, opt_state, loss = step(params, opt_state, x_dev, y_dev, rng, i)
    if c.train.log_every and (i + 1) % c.train.log_every == 0:
      print(f"step {i + 1}/{c.train.steps}: loss {float(loss):.4f}", file=sys.stderr)
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
