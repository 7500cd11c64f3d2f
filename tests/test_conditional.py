"""Class-conditional GANs: labels reach G and D, the projection D's formula, class_match, num_examples.

References are computed here independently: D's projection term with numpy from the wrapped D's own
features, the step's D outputs by calling the initial networks directly on the step's batch and noise,
class_match against a hand count.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgan import components, presets, train
from jgan import config as config_lib
from jgan import data as data_lib
from jgan import state as state_lib
from jgan import step as step_lib
from jgan.metrics import modes, protocols


def _config(**model):
  c = presets.smoke()
  c.model.conditional = True
  for k, v in model.items():
    c.model[k] = v
  return config_lib.resolve(c)


def test_num_classes_comes_from_the_dataset():
  assert _config().model.num_classes == 10
  with pytest.raises(ValueError, match="model.pack=2 \\(PacGAN\\) cannot be combined"):
    _config(pack=2)
  c = presets.smoke()
  c.model.num_classes = 10
  with pytest.raises(ValueError, match="set model.conditional=True"):
    config_lib.resolve(c)


def test_projection_discriminator_formula():
  c = _config()
  parts = components.build(c, (28, 28, 1))
  d = nnx.merge(parts.d.graphdef, parts.d.params, parts.d.stats)
  d.eval()
  # A non-zero class embedding, so the projection term is exercised.
  d.embed.embedding[...] = jax.random.normal(jax.random.key(3), d.embed.embedding[...].shape)
  x = jax.random.uniform(jax.random.key(1), (6, 28, 28, 1), minval=-1, maxval=1)
  y = jnp.array([0, 1, 2, 9, 9, 4])
  h = np.asarray(d.base.features(x), np.float64)  # [B, s, s, C]
  expect = np.asarray(d.base(x), np.float64) + np.einsum(
    "bc,bc->b", np.asarray(d.embed.embedding[...])[y], h.sum((1, 2))
  )
  np.testing.assert_allclose(np.asarray(d(x, y)), expect, rtol=1e-5, atol=1e-5)


def test_generator_depends_on_its_labels():
  c = _config()
  st = state_lib.create_state(components.build(c, (28, 28, 1)), jax.random.key(0))
  z = jax.random.normal(jax.random.key(2), (10, c.model.latent_dim))
  a = state_lib.generate(st, z, jnp.zeros(10, jnp.int32))
  b = state_lib.generate(st, z, jnp.arange(10, dtype=jnp.int32))
  assert a.shape == (10, 28, 28, 1)
  assert float(jnp.abs(a[1:] - b[1:]).min()) > 0 and float(jnp.abs(a[0] - b[0]).max()) == 0
  # Default labels are i % K.
  np.testing.assert_array_equal(np.asarray(state_lib.generate(st, z)), np.asarray(b))
  with pytest.raises(ValueError, match="unconditional"):
    state_lib.generate(st.replace(num_classes=0), z, jnp.zeros(10, jnp.int32))


def test_step_feeds_the_batch_labels_to_d_for_real_and_fake():
  c = _config()
  parts = components.build(c, (28, 28, 1))
  st = state_lib.create_state(parts, jax.random.key(0))
  # The initial networks, called directly (the step reports D's outputs before its update).
  g = nnx.merge(parts.g.graphdef, parts.g.params, parts.g.stats, copy=True)
  d = nnx.merge(parts.d.graphdef, parts.d.params, parts.d.stats, copy=True)
  it = data_lib.make_iterator(c.data, c.train.batch_size * 2, seed=0)
  batch = train.stack_batch(next(it), 2, 1, ("x", "label"))
  assert batch["label"].shape == (2, c.train.batch_size)
  last = {k: v[-1:] for k, v in batch.items()}
  _, metrics = jax.jit(lambda s, b: step_lib.train_step(s, b, components=parts))(st, last)
  # The step's noise (jgan.step.train_step): z_all = normal(split(fold_in(rng, step))[0], ...).
  k_z, _ = jax.random.split(jax.random.fold_in(st.rng, st.step))
  z = jax.random.normal(k_z, (1, c.train.batch_size, c.model.latent_dim))[0]
  x, y = last["x"][0], last["label"][0]
  g.train(), d.train()
  fake = g(z, y)
  np.testing.assert_allclose(float(metrics["d_real"]), float(jnp.mean(d(x, y))), rtol=1e-5)
  np.testing.assert_allclose(float(metrics["d_fake"]), float(jnp.mean(d(fake, y))), rtol=1e-5)
  assert float(jnp.abs(g(z, (y + 1) % 10) - fake).max()) > 0  # the labels matter
  # n_critic = 2: the scanned critic update gets its labels too.
  c.train.n_critic = 2
  parts2 = components.build(c, (28, 28, 1))
  new, m2 = jax.jit(lambda s, b: step_lib.train_step(s, b, components=parts2))(
    state_lib.create_state(parts2, jax.random.key(0)), batch
  )
  assert int(new.step) == 1 and np.isfinite(float(m2["d_loss"]))


def test_class_match_against_a_hand_count():
  requested = np.array([0, 1, 2, 0, 1, 2])
  predicted = np.array([0, 1, 1, 0, 2, 2])
  out = modes.class_match(predicted, requested, 3)
  assert out == {"accuracy": 4 / 6, "worst_class": 0.5}
  # The protocol asks sample i for class i % 10.
  pred = np.arange(500) % 10
  pred[:50] = 3  # the first 50 samples all drawn as 3: 5 of them were asked for 3
  res = protocols.compute("mnist_class_match500", {"labels": pred})
  assert res == {"mnist_class_match500/accuracy": 455 / 500, "mnist_class_match500/worst_class": 45 / 50}


def test_num_examples_trains_on_a_fixed_subset():
  c = presets.smoke()
  c.data.num_examples = 40
  c = config_lib.resolve(c)
  seen = set()
  for seed in (0, 1):  # every seed sees the same 40 examples
    it = data_lib.make_iterator(c.data, 20, seed=seed)
    for _ in range(6):  # 3 epochs
      for x in next(it)["x"]:
        seen.add(np.asarray(x).tobytes())
  src = data_lib.tfds_source(c.data)  # the split in its stored order
  expect = {
    data_lib.preprocess_image(np.asarray(src[int(i)]["image"]), 28).tobytes()
    for i in data_lib.subset_indices(len(src), 40)
  }
  assert seen == expect
  with pytest.raises(ValueError, match="data.num_examples=99999 must be in 1..4500"):
    data_lib.subset_indices(4500, 99999)
