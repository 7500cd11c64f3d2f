"""R3GAN's schedules (jgan.schedules, the optimisers' lr / beta2, the penalty weight, the EMA) against their
closed forms, and a run stopped mid-schedule that resumes bit for bit.

The closed forms are the reference's (brownvc/R3GAN ``training/training_loop.py``), typed in here:
``cosine_decay_with_warmup(cur_nimg, base, total, final)`` without warm-up is
``base + (1 - 0.5 * (1 + cos(pi * cur / total))) * (final - base)``, ``final`` once ``cur > total``;
the EMA's ``beta = 0.5 ** (batch_size / max(ema_nimg, 1e-8))``, ``p_ema = p.lerp(p_ema, beta)``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jgan import presets, schedules, train
from jgan import step as step_lib
from tests.helpers import setup


def _reference_cosine(cur, base, total, final):
  decay = 0.5 * (1 + math.cos(math.pi * cur / total))
  return final if cur > total else base + (1 - decay) * (final - base)


@pytest.mark.parametrize("n", [0, 1, 250, 999, 1000, 1001, 5000])
def test_cosine_is_the_references(n):
  got = float(schedules.cosine(2e-4, 5e-5, 1000)(jnp.int32(n)))
  assert got == pytest.approx(_reference_cosine(n, 2e-4, 1000, 5e-5), rel=1e-6)


def test_ema_beta_is_the_references():
  for half_life in (0.0, 1.0, 640.0, 5e6):
    want = 0.5 ** (64 / max(half_life, 1e-8))
    assert float(schedules.ema_beta(jnp.float32(half_life), 64)) == pytest.approx(want, rel=1e-6, abs=1e-30)


def test_cosine_to_final_moves_each_players_rate_over_the_span():
  """SGD on a unit gradient moves a parameter by the rate of each update: the reference's cosine from lr to
  lr * lr_final_scale over schedule_kimg, counted in each player's updates (G: 4 of 16 images, D: 8 with
  n_critic 2), then held at the final rate."""
  from jgan import optim

  c = presets.r3gan_mnist5k()
  c.train.steps, c.train.n_critic, c.train.batch_size = 10, 2, 16
  c.optim.schedule_kimg = 0.064  # 64 images = 4 steps
  for who in ("g", "d"):
    c.optim[who] = dict(name="sgd", lr=0.5)
  g_tx, d_tx = optim.make_optimizers(c)
  for tx, n in ((g_tx, 4), (d_tx, 8)):
    p, opt = jnp.zeros(()), tx.init(jnp.zeros(()))
    for u in range(n + 3):
      upd, opt = tx.update(jnp.ones(()), opt, p)
      np.testing.assert_allclose(-upd, _reference_cosine(u, 0.5, n, 0.5 * 0.25), rtol=1e-6)
      p = p + upd


def _tiny():
  """The CPU R3GAN preset at its smallest (28 px, widths 32/16/8), batch 8, for step-level checks."""
  c = presets.r3gan_mnist5k()
  c.model.arch, c.model.width = "small", 32
  c.train.batch_size, c.train.steps = 8, 100
  c.optim.schedule_kimg = 0.4  # 50 steps of 8 images: the schedules end half-way through the run
  c.optim.ema_half_life_kimg = 0.08
  return c


def _step(parts):
  return jax.jit(functools.partial(step_lib.train_step, components=parts))


def _batch(rows, b=8, seed=0):
  return {"x": jnp.asarray(np.random.default_rng(seed).uniform(-1, 1, (rows, b, 28, 28, 1)), jnp.float32)}


def test_optimiser_hyperparameters_follow_their_cosines():
  """After t updates, the learning rate and beta2 the optimiser used are the cosine at t updates."""
  c, parts, state = setup(_tiny())
  fn = _step(parts)
  for t in range(3):
    state = dataclasses.replace(state, step=jnp.int32(t * 20))
    state, _ = fn(state, _batch(2, seed=t))
  # G updates = 3 (counts 0, 1, 2: the injected hyperparameters are those of the last update's count).
  hp = state.g.opt.hyperparams
  images = 2 * 8  # G's optimiser count is 2 at its third update: 16 images into a 400-image span
  assert float(hp["learning_rate"]) == pytest.approx(_reference_cosine(images, 2e-4, 400, 5e-5), rel=1e-6)
  assert float(hp["b2"]) == pytest.approx(_reference_cosine(images, 0.9, 400, 0.99), rel=1e-6)


@pytest.mark.parametrize("step", [0, 7, 25, 50, 80])
def test_penalty_weight_and_ema_follow_their_schedules(step):
  """At step t the penalty is gamma(t) = gamma * cosine(1 -> 0.1) of t * batch images, i.e. the same D
  loss as a constant-gamma run with gamma(t); the EMA moves by beta(t) of its half-life schedule."""
  c, parts, state = setup(_tiny())
  state = dataclasses.replace(state, step=jnp.int32(step))
  gamma_t = c.penalty.gamma * _reference_cosine(step * 8, 1.0, 400, 0.1)  # the preset's gamma, to a tenth
  const = _tiny()
  const.penalty.final_scale, const.penalty.gamma = 1.0, gamma_t
  _, parts_c, state_c = setup(const)
  state_c = dataclasses.replace(state_c, step=jnp.int32(step))
  batch = _batch(2)
  new, m = _step(parts)(state, batch)
  _, m_c = _step(parts_c)(state_c, batch)
  assert float(m["penalty"]) == pytest.approx(float(m_c["penalty"]), rel=1e-5)
  assert float(m["d_loss"]) == pytest.approx(float(m_c["d_loss"]), rel=1e-5)
  beta = 0.5 ** (8 / max(_reference_cosine(step * 8, 0.0, 400, 80.0), 1e-8))
  for e0, p, e1 in zip(jax.tree.leaves(state.g_ema), jax.tree.leaves(new.g.params), jax.tree.leaves(new.g_ema)):
    np.testing.assert_allclose(e1, beta * np.asarray(e0) + (1 - beta) * np.asarray(p), rtol=1e-5, atol=1e-7)


def _leaves(state):
  """Every leaf of ``state`` as numpy (typed keys as their bits), as tests/test_checkpoint.py compares states."""
  return [
    np.asarray(jax.random.key_data(x) if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key) else x)
    for x in jax.tree.leaves(state)
  ]


@pytest.mark.slow
def test_resume_mid_schedule_is_bit_exact(tmp_path):
  """A run stopped at step 3 of 6 (its last checkpoint) and continued to 6 equals the uninterrupted 6-step run
  leaf for leaf, bit for bit: the schedules span steps 0-4 (32 images of 8 per step), so the stop falls
  mid-schedule. The state holds the optimisers' injected learning rate and beta2, the EMA, LeCam's anchors
  and the data position of G's own real batch (RpGAN); the metrics rows are equal too."""

  def config(steps):
    c = _tiny()
    c.train.steps, c.train.log_every, c.train.progress, c.train.sample_every = steps, 3, False, 0
    c.optim.schedule_kimg, c.optim.ema_half_life_kimg = 0.032, 0.016  # a span independent of train.steps
    c.lecam.weight = 0.3
    c.checkpoint.every_steps = 3
    c.parallel.num_devices = 1
    return c

  whole = jax.device_get(train.train_and_evaluate(config(6), str(tmp_path / "whole")))
  stopped = jax.device_get(train.train_and_evaluate(config(3), str(tmp_path / "resumed")))
  assert int(stopped.step) == 3
  hp = stopped.g.opt.hyperparams  # mid-schedule: strictly between the start and final values
  assert 5e-5 < float(hp["learning_rate"]) < 2e-4 and 0.9 < float(hp["b2"]) < 0.99
  resumed = jax.device_get(train.train_and_evaluate(config(6), str(tmp_path / "resumed")))
  assert int(resumed.step) == 6
  assert float(whole.obj_state.alpha_real) != 0.0  # LeCam's anchors moved and were restored
  for a, b in zip(_leaves(whole), _leaves(resumed), strict=True):
    np.testing.assert_array_equal(a, b)
  rows = [json.loads(x) for x in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
  want = [json.loads(x) for x in (tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()]
  clock = lambda r: {k: v for k, v in r.items() if k != "steps_per_sec"}  # wall-clock speed differs
  assert [clock(r) for r in rows] == [clock(r) for r in want] and [r["step"] for r in rows] == [3, 6]
