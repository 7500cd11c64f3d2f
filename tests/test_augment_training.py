"""D-augmentation inside the train step: what D sees, ADA's p in the state, bit-exact resume.

The reference for the step is a direct call of the initial D on the augmented real batch, with the key
the step documents (``fold_in(penalty key, 101)``); resume is checked against an uninterrupted run.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgan import augment, components, presets, train, writers
from jgan import config as config_lib
from jgan import data as data_lib
from jgan import state as state_lib
from jgan import step as step_lib


def _config(name: str, **params):
  c = presets.smoke()
  c.augment.name = name
  for k, v in params.items():
    c.augment[k] = v
  c.train.steps, c.checkpoint.every_steps = 6, 3
  return c


def test_d_sees_the_augmented_real_batch():
  c = config_lib.resolve(_config("diffaugment"))
  parts = components.build(c, (28, 28, 1))
  st = state_lib.create_state(parts, jax.random.key(0))
  d = nnx.merge(parts.d.graphdef, parts.d.params, parts.d.stats, copy=True)
  it = data_lib.make_iterator(c.data, c.train.batch_size, seed=0)
  batch = train.stack_batch(next(it), 1, 1)
  _, metrics = jax.jit(lambda s, b: step_lib.train_step(s, b, components=parts))(st, batch)
  _, k_pen = jax.random.split(jax.random.fold_in(st.rng, st.step))
  key = jax.random.split(k_pen, 1)[-1]
  x = batch["x"][0]
  aug = augment.make_augment("diffaugment")
  d.train()
  seen = float(jnp.mean(d(aug.apply(jnp.asarray(x), jax.random.fold_in(key, 101), {}))))
  np.testing.assert_allclose(float(metrics["d_real"]), seen, rtol=1e-5)
  assert abs(float(jnp.mean(d(jnp.asarray(x)))) - seen) > 1e-4  # un-augmented D output differs


@pytest.mark.parametrize("name", ["ada"])
def test_ada_p_moves_is_logged_and_resume_is_bit_exact(tmp_path, name):
  # interval 1 and a fast schedule, so p changes within a few steps.
  c = _config(name, interval=1, kimg=0.05, target=0.0)
  full = train.train_and_evaluate(c, str(tmp_path / "full"))
  assert float(full.aug_state["p"]) > 0  # D(real) > 0 on most rows pushes p up from 0
  rows = writers.read_jsonl(str(tmp_path / "full" / "metrics.jsonl"))
  assert "ada_p" in rows[-1] and "ada_rt" in rows[-1]
  half = _config(name, interval=1, kimg=0.05, target=0.0)
  half.train.steps = 3
  train.train_and_evaluate(half, str(tmp_path / "resumed"))
  resumed = train.train_and_evaluate(c, str(tmp_path / "resumed"))
  for a, b in zip(jax.tree.leaves(full), jax.tree.leaves(resumed)):
    a, b = (
      np.asarray(jax.random.key_data(a) if jnp.issubdtype(a.dtype, jax.dtypes.prng_key) else a),
      np.asarray(jax.random.key_data(b) if jnp.issubdtype(b.dtype, jax.dtypes.prng_key) else b),
    )
    np.testing.assert_array_equal(a, b)


def test_augment_config_errors():
  with pytest.raises(ValueError, match="unknown augment.name='diffaug'; valid choices: none, diffaugment, ada"):
    config_lib.resolve(_config("diffaug"))
  c = presets.ring8()
  c.augment.name = "diffaugment"
  with pytest.raises(ValueError, match="augments images; data.name='ring8' is 2-D points"):
    config_lib.resolve(c)
  c = presets.smoke("began")
  c.augment.name = "ada"
  with pytest.raises(ValueError, match="needs raw D scores; energy objectives"):
    config_lib.resolve(c)
