"""Update rules, Unrolled GAN and PacGAN packing in the real train step, checked against direct
autodiff of the full losses (no vjp reuse, no shared code with jgan.step beyond the models)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgan import config as config_lib
from jgan import data as data_lib
from jgan import objectives, sharding, state as state_lib, step as step_lib, train
from tests.helpers import load_config

LR = 0.05


def _setup(rule, unrolled=0, pack=1):
  c = load_config("ring8")
  c.train.steps_per_call, c.train.update_rule, c.train.unrolled_steps = 1, rule, unrolled
  c.model.pack, c.model.g_width, c.model.d_width = pack, 16, 16
  c.train.batch_size = 8
  c.optim.ema_decay = 0.0
  for who in ("g", "d"):
    c.optim[who] = dict(name="sgd", lr=LR)
  c = config_lib.resolve(c)
  mesh = sharding.make_mesh(1)
  sh = sharding.make_shardings(mesh)
  state = state_lib.create_state(c, (2,), jax.random.key(0))
  it = data_lib.make_iterator(c.data, c.train.batch_size, seed=0)
  batch = train.stack_batch(next(it), 1, 1)
  return c, state, batch, step_lib.make_train_step(c)


def _losses(state, real, z, objective, pack):
  """(d_loss(g_params, d_params), g_loss(g_params, d_params)) written directly from the models."""

  def run(g_params, d_params, fixed_fake=False):
    g = nnx.merge(state.g_graphdef, g_params, state.g_stats, copy=True)
    d = nnx.merge(state.d_graphdef, d_params, state.d_stats, copy=True)
    fake = jax.lax.stop_gradient(g(z)) if fixed_fake else g(z)
    d_real, d_fake = d(step_lib.pack(real, pack)), d(step_lib.pack(fake, pack))
    return d_real, d_fake

  def d_loss(gp, dp):
    d_real, d_fake = run(gp, dp, fixed_fake=True)
    return objective.loss(d_real, d_fake, ())[0]

  def g_loss(gp, dp):
    d_real, d_fake = run(gp, dp)
    return objective.loss(d_real, d_fake, ())[1]

  return d_loss, g_loss


def _z(state, b):
  k_z, _ = jax.random.split(jax.random.fold_in(state.rng, state.step))
  return jax.random.normal(k_z, (1, b, 2))[-1]


def _sgd(p, g):
  return jax.tree.map(lambda a, b: a - LR * b, p, g)


def _max_diff(a, b):
  return max(float(jnp.max(jnp.abs(x - y))) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


@pytest.mark.parametrize("rule", ["alternating", "simultaneous", "extragradient"])
def test_update_rule_matches_direct_autodiff(rule):
  c, state, batch, fn = _setup(rule)
  real, z = jnp.asarray(batch["x"][0]), _z(state, c.train.batch_size)
  d_loss, g_loss = _losses(state, real, z, objectives.make_objective(**c.objective), 1)
  th, ph = state.g_params, state.d_params
  gd, gg = jax.grad(d_loss, 1)(th, ph), jax.grad(g_loss, 0)(th, ph)
  if rule == "alternating":
    ph1 = _sgd(ph, gd)
    th1 = _sgd(th, jax.grad(g_loss, 0)(th, ph1))
  elif rule == "simultaneous":
    th1, ph1 = _sgd(th, gg), _sgd(ph, gd)
  else:  # extragradient: gradients at the look-ahead point, applied at the original point
    th_la, ph_la = _sgd(th, gg), _sgd(ph, gd)
    th1, ph1 = _sgd(th, jax.grad(g_loss, 0)(th_la, ph_la)), _sgd(ph, jax.grad(d_loss, 1)(th_la, ph_la))
  new, m = fn(state, batch)
  assert _max_diff(new.g_params, th1) < 1e-5 and _max_diff(new.d_params, ph1) < 1e-5
  assert np.isfinite(float(m["g_loss"]))


def test_optimistic_uses_two_g_minus_previous_g():
  c, state, batch, fn = _setup("optimistic")
  s1, _ = fn(state, batch)
  # Second step from s1: the update must be lr * (2 g_1 - g_0); check via the stored previous gradients.
  prev = s1.g_opt[0]  # optimistic_gradients' state: last gradient
  real, z = jnp.asarray(batch["x"][0]), _z(s1, c.train.batch_size)
  _, g_loss = _losses(s1, real, z, objectives.make_objective(**c.objective), 1)
  g1 = jax.grad(g_loss, 0)(s1.g_params, s1.d_params)
  want = jax.tree.map(lambda p, a, b: p - LR * (2 * a - b), s1.g_params, g1, prev)
  want = jax.tree.map(np.asarray, want)  # s1's buffers are donated to the next step
  s2, _ = fn(s1, batch)
  assert _max_diff(s2.g_params, want) < 1e-5


def test_unrolled_gan_differentiates_through_d_updates():
  k = 2
  c, state, batch, fn = _setup("alternating", unrolled=k)
  real, z = jnp.asarray(batch["x"][0]), _z(state, c.train.batch_size)
  d_loss, g_loss = _losses(state, real, z, objectives.make_objective(**c.objective), 1)

  def d_loss_full(gp, dp):  # D's loss with G's dependence kept (the unrolled path)
    g = nnx.merge(state.g_graphdef, gp, state.g_stats, copy=True)
    d = nnx.merge(state.d_graphdef, dp, state.d_stats, copy=True)
    fake = g(z)
    return objectives.make_objective(**c.objective).loss(d(real), d(fake), ())[0]

  th, ph = state.g_params, state.d_params
  ph1 = _sgd(ph, jax.grad(d_loss, 1)(th, ph))

  def unrolled_g_loss(gp):
    dp = ph1
    for _ in range(k):
      dp = _sgd(dp, jax.grad(d_loss_full, 1)(gp, dp))
    return g_loss(gp, dp)

  th1 = _sgd(th, jax.grad(unrolled_g_loss)(th))
  th_plain = jax.tree.map(np.asarray, _sgd(th, jax.grad(g_loss, 0)(th, ph1)))
  new, _ = fn(state, batch)
  assert _max_diff(new.d_params, ph1) < 1e-5  # the real D takes one normal update
  assert _max_diff(new.g_params, th1) < 1e-5
  # And it differs from the non-unrolled update (the look-ahead matters).
  assert _max_diff(th1, th_plain) > 1e-7


def test_pack_joins_consecutive_samples():
  x = np.arange(6 * 2).reshape(6, 2).astype(np.float32)
  np.testing.assert_array_equal(step_lib.pack(x, 3), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
  img = np.arange(4 * 2 * 2 * 1).reshape(4, 2, 2, 1).astype(np.float32)
  p = np.asarray(step_lib.pack(img, 2))
  assert p.shape == (2, 2, 2, 2)
  np.testing.assert_array_equal(p[1, :, :, 0], img[2, :, :, 0])
  np.testing.assert_array_equal(p[1, :, :, 1], img[3, :, :, 0])


def test_pacgan_step_matches_direct_autodiff():
  c, state, batch, fn = _setup("alternating", pack=2)
  real, z = jnp.asarray(batch["x"][0]), _z(state, c.train.batch_size)
  d_loss, g_loss = _losses(state, real, z, objectives.make_objective(**c.objective), 2)
  th, ph = state.g_params, state.d_params
  ph1 = _sgd(ph, jax.grad(d_loss, 1)(th, ph))
  th1 = _sgd(th, jax.grad(g_loss, 0)(th, ph1))
  new, _ = fn(state, batch)
  assert _max_diff(new.g_params, th1) < 1e-5 and _max_diff(new.d_params, ph1) < 1e-5


@pytest.mark.parametrize("schedule", ["constant", "linear", "cosine"])
def test_lr_schedules_span_each_players_updates(schedule):
  """SGD on a unit gradient moves a parameter by the learning rate of each update: G decays over
  train.steps updates, D over train.steps * n_critic (closed forms of the three schedules)."""
  from jgan import optim

  c = load_config("ring8")
  c.train.steps, c.train.n_critic, c.optim.lr_schedule = 4, 2, schedule
  for who in ("g", "d"):
    c.optim[who] = dict(name="sgd", lr=0.5)
  g_tx, d_tx = optim.make_optimizers(c)

  def closed_form(u, n):
    frac = min(u, n) / n
    return {"constant": 0.5, "linear": 0.5 * (1 - frac), "cosine": 0.25 * (1 + np.cos(np.pi * frac))}[schedule]

  for tx, n in ((g_tx, 4), (d_tx, 8)):
    p, opt = jnp.zeros(()), tx.init(jnp.zeros(()))
    for u in range(n + 1):
      upd, opt = tx.update(jnp.ones(()), opt, p)
      np.testing.assert_allclose(-upd, closed_form(u, n), rtol=1e-6, atol=1e-7)
      p = p + upd


def test_unknown_lr_schedule_is_refused_before_compiling():
  c = load_config("ring8")
  c.optim.lr_schedule = "exponential"
  with pytest.raises(ValueError, match="optim.lr_schedule='exponential'; valid choices: constant, linear, cosine"):
    config_lib.resolve(c)
