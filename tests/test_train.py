"""Every registered objective trains the ring8 MLP GAN and the (smoke-sized) MNIST DCGAN without NaN,
with its recipe from jgan.recipes; plus spectral normalisation and lazy penalties in the step."""

import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgan import train
from jgan.models import spectral
from jgan.objectives import OBJECTIVES
from tests.helpers import load_config


def _run(config_name, objective, tmp_path, steps, **overrides):
  c = load_config(config_name, objective)
  c.parallel.num_devices = 1
  c.train.progress = False
  c.train.steps, c.train.log_every, c.train.sample_every = steps, steps, 0
  c.train.steps_per_call = 1
  c.train.num_samples = min(c.train.num_samples, 256)
  for k, v in overrides.items():
    section, key = k.split(".")
    c[section][key] = v
  train.train_and_evaluate(c, str(tmp_path))
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  return rows[-1]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(OBJECTIVES))
def test_objective_trains_without_nan(name, tmp_path):
  for cfg, steps in (("ring8", 30), ("smoke", 6)):
    last = _run(cfg, name, tmp_path / cfg, steps)
    assert all(math.isfinite(v) for v in last.values()), (cfg, last)


def test_spectral_norm_brings_top_singular_value_to_one():
  layer = nnx.Linear(40, 30, rngs=nnx.Rngs(0))
  layer.kernel[...] = layer.kernel[...] * 7.0  # top singular value far from 1
  sn = spectral.SpectralNorm(layer, n_steps=1, rngs=nnx.Rngs(1))
  x = jnp.ones((2, 40))
  for _ in range(30):  # one power iteration per training step
    sn(x)
  sigma, _ = spectral.power_iteration(sn.layer.kernel[...], sn.u[...], 1)
  w_sn = np.asarray(sn.layer.kernel[...]) / float(sigma)
  assert abs(np.linalg.svd(w_sn, compute_uv=False)[0] - 1.0) < 1e-2
  # The raw weight stays the parameter: the call does not overwrite the kernel.
  assert np.linalg.svd(np.asarray(sn.layer.kernel[...]), compute_uv=False)[0] > 5.0


def test_spectral_norm_output_and_gradient_use_normalised_weight():
  conv = nnx.Conv(3, 4, (3, 3), rngs=nnx.Rngs(0))
  sn = spectral.SpectralNorm(conv, n_steps=50, rngs=nnx.Rngs(1))
  x = jax.random.normal(jax.random.key(2), (2, 5, 5, 3))
  y = sn(x)
  w = np.asarray(conv.kernel[...])
  top = np.linalg.svd(w.reshape(-1, 4), compute_uv=False)[0]
  ref = jax.lax.conv_general_dilated(
    x, jnp.asarray(w / top), (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
  ) + conv.bias[...].reshape(1, 1, 1, -1)
  np.testing.assert_allclose(y, ref, atol=1e-4)


def test_r1_penalty_every_k_steps_is_logged_and_scaled(tmp_path):
  last = _run(
    "ring8", "non_saturating", tmp_path, 4, **{"penalty.name": "r1", "penalty.every": 2, "train.log_every": 1}
  )
  rows = [json.loads(line) for line in open(tmp_path / "metrics.jsonl")]
  pens = [r["penalty"] for r in rows]
  # Steps 0 and 2 (state.step before the update) carry the penalty, steps 1 and 3 none.
  assert pens[0] > 0 and pens[2] > 0 and pens[1] == 0 and pens[3] == 0, pens
  assert math.isfinite(last["d_loss"])
