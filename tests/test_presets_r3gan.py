"""The R3GAN presets: their recipes against the reference's numbers (brownvc/R3GAN ``train.py`` presets
``CIFAR10`` and ``FFHQ-64`` and its README's commands, typed in here, not read from jgan), and one train
step of each through ``jgan.train_and_evaluate`` (the full-size networks on TFDS mock data)."""

from __future__ import annotations

import json
import math

import pytest
import tensorflow_datasets as tfds

from jgan import config as config_lib
from jgan import train
from tests.helpers import load_config

# (config, data, px, conditional, gamma start, EMA half-life kimg, batch) from the reference.
RECIPES = {
  "r3gan_cifar10": ("cifar10", 32, True, 0.05, 5000.0, 512),  # --preset=CIFAR10 --cond=1 --batch=512
  "r3gan_ffhq64": ("celeb_a", 64, False, 2.0, 500.0, 256),  # --preset=FFHQ-64 --batch=256 (FFHQ: see the preset)
}


@pytest.mark.parametrize("name", list(RECIPES))
def test_recipe_is_the_references(name):
  data, px, cond, gamma, ema_kimg, batch = RECIPES[name]
  c = config_lib.resolve(load_config(name))
  assert (c.data.name, c.data.image_size, c.model.name, c.model.conditional) == (data, px, "r3gan", cond)
  assert (c.model.arch, c.model.width, c.model.blocks, c.model.latent_dim) == ("auto", 0, 0, 64)
  assert c.objective.name == "rpgan" and c.train.n_critic == 1 and c.train.batch_size == batch
  assert dict(c.penalty) == dict(name="r1_r2", every=1, gamma=gamma, final_scale=0.1)  # gamma -> gamma / 10
  for who in ("g", "d"):  # lr 2e-4 -> 5e-5, betas (0, 0.9 -> 0.99), eps 1e-8
    assert dict(c.optim[who]) == dict(name="adam", lr=2e-4, b1=0.0, b2=0.9, b2_final=0.99, eps=1e-8)
    assert c.optim[who].lr * c.optim.lr_final_scale == 5e-5
  assert c.optim.lr_schedule == "cosine_to_final" and c.optim.schedule_kimg == 20_000.0  # decay_nimg = 2e7
  assert c.optim.ema_half_life_kimg == ema_kimg and c.lecam.weight == 0.0
  if name == "r3gan_cifar10":  # the published budget: 250 M images
    assert c.train.steps * batch >= 250_000_000 > (c.train.steps - 1) * batch


def _short(c, batch: int):
  c.parallel.num_devices = 1
  c.train.progress = False
  c.train.steps, c.train.log_every, c.train.sample_every = 1, 1, 0
  c.train.batch_size, c.train.num_samples = batch, 4
  c.checkpoint.every_steps = 0
  c.evals.metrics = ""
  return c


def _rows(workdir) -> list[dict]:
  return [json.loads(line) for line in open(workdir / "metrics.jsonl")]


@pytest.mark.slow
@pytest.mark.parametrize("name", list(RECIPES))
def test_full_size_preset_trains_one_step_on_mock_data(name, tmp_path):
  """The paper's networks (20.8 M / 21.3 M and 22.4 M / 22.4 M parameters), R1 + R2, G's own real batch:
  one step at batch 2 on mock images."""
  c = _short(load_config(name), batch=2)
  with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE):
    train.train_and_evaluate(c, str(tmp_path))
  (row,) = _rows(tmp_path)
  assert row["step"] == 1 and all(math.isfinite(v) for v in row.values()) and row["penalty"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("name", ["r3gan_mnist5k", "r3gan_stacked_mnist5k"])
def test_cpu_preset_trains_one_step(name, tmp_path):
  c = _short(load_config(name), batch=8)
  train.train_and_evaluate(c, str(tmp_path))
  (row,) = _rows(tmp_path)
  assert row["step"] == 1 and all(math.isfinite(v) for v in row.values()) and row["penalty"] > 0


def test_cpu_preset_takes_the_ablations_objectives():
  for objective in ("non_saturating", "rpgan"):
    for name in ("r3gan_stacked_mnist5k", "r3gan_loss_stacked5k"):
      c = config_lib.resolve(load_config(name, objective))
      assert c.objective.name == objective and c.penalty.name == "r1_r2" and c.evals.metrics == "stacked_modes26k"


@pytest.mark.slow
def test_dcgan_loss_preset_trains_one_step(tmp_path):
  """The DCGAN arm of the loss ablation (R3GAN's loss and schedules on the demo DCGAN, Stacked MNIST)."""
  c = _short(load_config("r3gan_loss_stacked5k"), batch=8)
  train.train_and_evaluate(c, str(tmp_path))
  (row,) = _rows(tmp_path)
  assert row["step"] == 1 and all(math.isfinite(v) for v in row.values()) and row["penalty"] > 0
