"""Update rules (jgan.update_rules), Unrolled GAN and PacGAN packing in the real train step, checked against
direct autodiff of the full losses (no vjp reuse, no shared code with jgan.step beyond the models)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgan import data as data_lib
from jgan import objectives, train
from jgan import step as step_lib
from jgan.update_rules import UPDATE_RULES
from tests.helpers import load_config, setup

LR = 0.05


def _setup(rule, unrolled=0, pack=1):
  c = load_config("ring8")
  c.train.steps_per_call, c.train.update_rule, c.train.unrolled_steps = 1, rule, unrolled
  c.model.pack, c.model.g_width, c.model.d_width = pack, 16, 16
  c.train.batch_size = 8
  c.optim.ema_decay = 0.0
  for who in ("g", "d"):
    c.optim[who] = dict(name="sgd", lr=LR)
  c, parts, state = setup(c, (2,), jax.random.key(0))
  it = data_lib.make_iterator(c.data, c.train.batch_size, seed=0)
  batch = train.stack_batch(next(it), 1, 1)
  return c, state, batch, step_lib.make_train_step(parts)


def _losses(state, real, z, objective, pack):
  """(d_loss(g_params, d_params), g_loss(g_params, d_params)) written directly from the models."""

  def run(g_params, d_params, fixed_fake=False):
    g = nnx.merge(state.g_graphdef, g_params, state.g.stats, copy=True)
    d = nnx.merge(state.d_graphdef, d_params, state.d.stats, copy=True)
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


def _alternating(th, ph, d_loss, g_loss):  # D first, then G against the new D
  ph1 = _sgd(ph, jax.grad(d_loss, 1)(th, ph))
  return _sgd(th, jax.grad(g_loss, 0)(th, ph1)), ph1


def _simultaneous(th, ph, d_loss, g_loss):
  return _sgd(th, jax.grad(g_loss, 0)(th, ph)), _sgd(ph, jax.grad(d_loss, 1)(th, ph))


def _extragradient(th, ph, d_loss, g_loss):  # gradients at the look-ahead point, applied at the original
  th_la, ph_la = _simultaneous(th, ph, d_loss, g_loss)
  return _sgd(th, jax.grad(g_loss, 0)(th_la, ph_la)), _sgd(ph, jax.grad(d_loss, 1)(th_la, ph_la))


def _optimistic_first_step(th, ph, d_loss, g_loss):  # 2 g_0 - g_{-1} with g_{-1} = 0 (two steps: below)
  twice = lambda p, g: jax.tree.map(lambda x, a: x - LR * 2 * a, p, g)
  return twice(th, jax.grad(g_loss, 0)(th, ph)), twice(ph, jax.grad(d_loss, 1)(th, ph))


# One SGD step of every registered update rule, written from its definition. A rule added to
# jgan.update_rules.UPDATE_RULES needs its line here (test_every_rule_has_a_reference).
REFERENCE = {
  "alternating": _alternating,
  "simultaneous": _simultaneous,
  "extragradient": _extragradient,
  "optimistic": _optimistic_first_step,
}


def test_every_rule_has_a_reference():
  assert sorted(REFERENCE) == sorted(UPDATE_RULES)


@pytest.mark.parametrize("rule", sorted(UPDATE_RULES))
def test_update_rule_matches_direct_autodiff(rule):
  c, state, batch, fn = _setup(rule)
  real, z = jnp.asarray(batch["x"][0]), _z(state, c.train.batch_size)
  d_loss, g_loss = _losses(state, real, z, objectives.make_objective(**c.objective), 1)
  th1, ph1 = REFERENCE[rule](state.g.params, state.d.params, d_loss, g_loss)
  th1, ph1 = jax.tree.map(np.asarray, (th1, ph1))  # the state's buffers are donated to the step
  new, m = fn(state, batch)
  assert _max_diff(new.g.params, th1) < 1e-5 and _max_diff(new.d.params, ph1) < 1e-5
  assert np.isfinite(float(m["g_loss"]))


def test_optimistic_uses_two_g_minus_previous_g():
  """Two steps of optimistic GD against direct autodiff. The previous gradients are computed here (step
  0's gradients at the initial point, g_{-1} = 0), not read from the state."""
  c, state, batch, fn = _setup("optimistic")
  real, b = jnp.asarray(batch["x"][0]), c.train.batch_size
  objective = objectives.make_objective(**c.objective)
  sgd = lambda p, now, prev: jax.tree.map(lambda x, a, z: x - LR * (2 * a - z), p, now, prev)

  def grads_at(s, th, ph):  # (G's, D's) loss gradients at (th, ph) with step s's noise
    d_loss, g_loss = _losses(s, real, _z(s, b), objective, 1)
    return jax.grad(g_loss, 0)(th, ph), jax.grad(d_loss, 1)(th, ph)

  th0, ph0 = jax.tree.map(np.asarray, (state.g.params, state.d.params))
  gg0, gd0 = grads_at(state, th0, ph0)
  zero = jax.tree.map(np.zeros_like, (gg0, gd0))
  th1, ph1 = jax.tree.map(np.asarray, (sgd(th0, gg0, zero[0]), sgd(ph0, gd0, zero[1])))
  s1, _ = fn(state, batch)
  assert _max_diff(s1.g.params, th1) < 1e-5 and _max_diff(s1.d.params, ph1) < 1e-5
  gg1, gd1 = grads_at(s1, th1, ph1)
  th2, ph2 = jax.tree.map(np.asarray, (sgd(th1, gg1, gg0), sgd(ph1, gd1, gd0)))  # s1 is donated next
  s2, _ = fn(s1, batch)
  assert _max_diff(s2.g.params, th2) < 1e-5 and _max_diff(s2.d.params, ph2) < 1e-5
  assert _max_diff(th2, sgd(th1, gg1, zero[0])) > 1e-7  # the previous gradient matters


def test_unrolled_gan_differentiates_through_d_updates():
  k = 2
  c, state, batch, fn = _setup("alternating", unrolled=k)
  real, z = jnp.asarray(batch["x"][0]), _z(state, c.train.batch_size)
  d_loss, g_loss = _losses(state, real, z, objectives.make_objective(**c.objective), 1)

  def d_loss_full(gp, dp):  # D's loss with G's dependence kept (the unrolled path)
    g = nnx.merge(state.g_graphdef, gp, state.g.stats, copy=True)
    d = nnx.merge(state.d_graphdef, dp, state.d.stats, copy=True)
    fake = g(z)
    return objectives.make_objective(**c.objective).loss(d(real), d(fake), ())[0]

  th, ph = state.g.params, state.d.params
  ph1 = _sgd(ph, jax.grad(d_loss, 1)(th, ph))

  def unrolled_g_loss(gp):
    dp = ph1
    for _ in range(k):
      dp = _sgd(dp, jax.grad(d_loss_full, 1)(gp, dp))
    return g_loss(gp, dp)

  th1 = _sgd(th, jax.grad(unrolled_g_loss)(th))
  th_plain = jax.tree.map(np.asarray, _sgd(th, jax.grad(g_loss, 0)(th, ph1)))
  new, _ = fn(state, batch)
  assert _max_diff(new.d.params, ph1) < 1e-5  # the real D takes one normal update
  assert _max_diff(new.g.params, th1) < 1e-5
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
  th, ph = state.g.params, state.d.params
  ph1 = _sgd(ph, jax.grad(d_loss, 1)(th, ph))
  th1 = _sgd(th, jax.grad(g_loss, 0)(th, ph1))
  new, _ = fn(state, batch)
  assert _max_diff(new.g.params, th1) < 1e-5 and _max_diff(new.d.params, ph1) < 1e-5


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
    setup(c)
