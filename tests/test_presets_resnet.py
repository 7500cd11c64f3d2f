"""The ResNet / BigGAN experiments train: one step of each CIFAR-10 config (on TFDS mock data), a few steps
of the mnist5k demos through ``jgan.train_and_evaluate``, and the published recipes in the configs.

The recipes are checked against the numbers their docstrings cite (Mimicry's CIFAR-10 table for SNGAN,
PyTorch-StudioGAN's ``src/configs/CIFAR10/BigGAN.json`` for BigGAN), typed in here, not read from jgan.
"""

from __future__ import annotations

import json
import math

import pytest
import tensorflow_datasets as tfds

from jgan import config as config_lib
from jgan import train
from tests.helpers import load_config

CIFAR_CONFIGS = ["sngan_cifar10", "sngan_cifar10_cond", "biggan_cifar10"]
MNIST5K_CONFIGS = ["resnet_mnist5k", "biggan_mnist5k"]


def _short(c, steps: int, batch: int):
  c.parallel.num_devices = 1
  c.train.progress = False
  c.train.steps, c.train.log_every, c.train.sample_every = steps, steps, 0
  c.train.batch_size = batch
  c.train.num_samples = 10
  c.checkpoint.every_steps = 0
  return c


def _rows(workdir) -> list[dict]:
  return [json.loads(line) for line in open(workdir / "metrics.jsonl")]


def test_sngan_recipe_is_mimicrys():
  """Mimicry README, CIFAR-10 training parameters: batch 64, lr 2e-4, betas (0.0, 0.9), linear decay,
  n_dis 5, 100K iterations; hinge loss; SNGAN's D normalises every layer (no extra wrapping)."""
  for name, conditional in (("sngan_cifar10", False), ("sngan_cifar10_cond", True)):
    c = config_lib.resolve(load_config(name))
    assert (c.model.name, c.model.conditional, c.model.latent_dim) == ("resnet", conditional, 128)
    assert (c.model.g_width, c.model.d_width) == (0, 0)  # the reference widths, 256 / 128 at 32 px
    assert c.objective.name == "hinge" and c.train.n_critic == 5 and c.train.batch_size == 64
    for who in ("g", "d"):
      assert dict(c.optim[who]) == dict(name="adam", lr=2e-4, b1=0.0, b2=0.9, b2_final=0.0, eps=1e-8)
    assert c.optim.lr_schedule == "linear" and c.train.steps == 100_000 and c.optim.ema_decay == 0.0
    assert (c.data.name, c.data.image_size) == ("cifar10", 32)
    assert c.model.num_classes == (10 if conditional else 0)


def test_biggan_recipe_is_studiogans():
  """StudioGAN src/configs/CIFAR10/BigGAN.json: big_resnet, projGAN, z 80, shared 128, conv dims 96,
  attention after G block 2 / D block 1 (16 px), Adam 2e-4 / 2e-4 (0.5, 0.999), batch 64, 5 D steps,
  100,000 steps, hinge, EMA 0.9999."""
  c = config_lib.resolve(load_config("biggan_cifar10"))
  assert (c.model.name, c.model.conditional, c.model.latent_dim, c.model.shared_dim) == ("biggan", True, 80, 128)
  assert (c.model.g_width, c.model.d_width, c.model.attn_res) == (0, 0, -1)  # 96, 96, 16 px at 32 px
  assert c.objective.name == "hinge" and c.train.n_critic == 5 and c.train.batch_size == 64
  for who in ("g", "d"):
    assert dict(c.optim[who]) == dict(name="adam", lr=2e-4, b1=0.5, b2=0.999, b2_final=0.0, eps=1e-8)
  assert c.optim.ema_decay == 0.9999 and c.train.steps == 100_000


@pytest.mark.slow
@pytest.mark.parametrize("name", CIFAR_CONFIGS)
def test_cifar10_config_trains_one_step_on_mock_data(name, tmp_path):
  """The full-size CIFAR-10 models (4.3M / 9.4M parameter generators), n_critic 5, batch 8 of mock
  CIFAR-10 images through the library entry point."""
  c = _short(load_config(name), steps=1, batch=8)
  with tfds.testing.mock_data(num_examples=48, policy=tfds.testing.MockPolicy.USE_CODE):
    train.train_and_evaluate(c, str(tmp_path))
  (row,) = _rows(tmp_path)
  assert row["step"] == 1 and all(math.isfinite(v) for v in row.values())


@pytest.mark.slow
@pytest.mark.parametrize("name", MNIST5K_CONFIGS)
def test_mnist5k_demo_trains(name, tmp_path):
  """A few steps of the demo as shipped (batch 64, conditional), then the unconditional variant."""
  c = _short(load_config(name), steps=4, batch=64)
  c.train.log_every = 2
  train.train_and_evaluate(c, str(tmp_path / "cond"))
  rows = _rows(tmp_path / "cond")
  assert [r["step"] for r in rows] == [2, 4] and all(math.isfinite(v) for r in rows for v in r.values())
  u = _short(load_config(name), steps=2, batch=16)
  u.model.conditional = False
  train.train_and_evaluate(u, str(tmp_path / "uncond"))
  assert all(math.isfinite(v) for v in _rows(tmp_path / "uncond")[-1].values())
