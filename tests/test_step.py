"""The train step: data parallelism (1 vs 8 devices), determinism, no recompilation, n_critic, fusion."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from jgan import data as data_lib
from jgan import sharding, train
from jgan import step as step_lib
from tests.helpers import load_config, setup

# 1 vs 8 devices: the same maths with a different reduction order (BatchNorm statistics and gradient
# all-reduce are sums split 8 ways), so they agree to float32 rounding amplified by 10 Adam steps,
# not bit for bit (DESIGN.md). Measured on smoke (seed 0): parameters, statistics and EMA within
# 7.1e-5 after 10 steps (7e-8 through step 7; at step 8 a LeakyReLU input of D's first layer lies
# within rounding of 0 and takes the other slope on 8 devices, so one gradient element differs by
# ~0.07); we allow 1e-4 there. Adam's first moments hold that gradient (0.1 of it): 1.2e-2, allowed 5e-2.
DEVICE_ATOL = 1e-4
MOMENT_ATOL = 5e-2


def _smoke(num_devices, **overrides):
  c = load_config("smoke")
  c.parallel.num_devices = num_devices
  for k, v in overrides.items():
    section, key = k.split(".")
    c[section][key] = v
  return c


@pytest.fixture(scope="module")
def smoke_runs(tmp_path_factory):
  out = {}
  for name, n in [("one", 1), ("eight", 8), ("one_again", 1)]:
    out[name] = jax.device_get(train.train_and_evaluate(_smoke(n), str(tmp_path_factory.mktemp(name))))
  return out


def _leaves(state):
  return jax.tree.leaves((state.g, state.d, state.g_ema))


def _worst(a, b) -> float:
  a, b = jax.tree.leaves(a), jax.tree.leaves(b)
  assert len(a) == len(b)
  return max(float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64)))) for x, y in zip(a, b))


def test_one_vs_eight_devices_agree(smoke_runs):
  one, eight = smoke_runs["one"], smoke_runs["eight"]
  models = lambda s: (s.g.params, s.g.stats, s.d.params, s.d.stats, s.g_ema)
  assert _worst(models(one), models(eight)) < DEVICE_ATOL
  assert _worst((one.g.opt, one.d.opt), (eight.g.opt, eight.d.opt)) < MOMENT_ATOL
  assert int(eight.step) == 10


def test_same_seed_is_bit_identical(smoke_runs):
  for x, y in zip(_leaves(smoke_runs["one"]), _leaves(smoke_runs["one_again"])):
    assert np.array_equal(np.asarray(x), np.asarray(y))


def _setup(config, num_devices):
  config, parts, state = setup(config)
  mesh = sharding.make_mesh(num_devices)
  sh = sharding.make_shardings(mesh, config.train.steps_per_call)
  state = jax.device_put(state, sh.replicated)
  fn = step_lib.make_train_step(parts, config.train.steps_per_call, sh.replicated, sh.batch, sh.data)
  return config, sh, state, fn


def _ring_batch(config, index):
  it = data_lib.make_iterator(
    config.data, config.train.batch_size * config.train.n_critic * config.train.steps_per_call, seed=config.seed
  )
  it.set_state({"index": index})
  return train.stack_batch(next(it), config.train.n_critic, config.train.steps_per_call)


def test_second_step_does_not_recompile():
  c = load_config("ring8")
  c.train.steps_per_call = 1
  config, sh, state, fn = _setup(c, 2)
  for i in range(3):
    state, _ = fn(state, jax.device_put(_ring_batch(config, i), sh.batch))
  assert fn._cache_size() == 1
  assert int(state.step) == 3


def test_fused_steps_equal_single_steps():
  base = load_config("ring8")
  base.train.steps_per_call = 1
  c1, sh1, s1, f1 = _setup(base, 1)
  fused = load_config("ring8")
  fused.train.steps_per_call = 4
  c4, sh4, s4, f4 = _setup(fused, 1)
  singles = []
  # The fused call's batch holds 4 single-step batches; feed the single steps the same rows.
  big = _ring_batch(c4, 0)  # [4, n_critic, B, 2]
  for i in range(4):
    s1, m = f1(s1, jax.device_put({"x": big["x"][i]}, sh1.batch))
    singles.append(float(m["d_loss"]))
  s4, m4 = f4(s4, jax.device_put(big, sh4.batch))
  np.testing.assert_allclose(np.asarray(m4["d_loss"]), singles, rtol=1e-5)
  for x, y in zip(jax.tree.leaves(s1.g.params), jax.tree.leaves(s4.g.params)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-6)
  assert int(s4.step) == 4


def test_n_critic_runs_that_many_d_updates():
  c = load_config("ring8")
  c.train.steps_per_call = 1
  c.train.n_critic = 3
  config, sh, state, fn = _setup(c, 1)
  batch = _ring_batch(config, 0)
  assert batch["x"].shape == (3, config.train.batch_size, 2)
  state, _ = fn(state, jax.device_put(batch, sh.batch))
  # Adam's step count in D's optimiser state counts D updates.
  counts = [int(x) for x in jax.tree.leaves(state.d.opt) if jnp.ndim(x) == 0 and x.dtype == jnp.int32]
  assert counts and all(c == 3 for c in counts), counts
  g_counts = [int(x) for x in jax.tree.leaves(state.g.opt) if jnp.ndim(x) == 0 and x.dtype == jnp.int32]
  assert all(c == 1 for c in g_counts)


def test_indivisible_batch_is_a_clear_error():
  mesh = sharding.make_mesh(8)
  with pytest.raises(ValueError, match=r"batch_size=20 does not divide by the 8 devices"):
    sharding.check_batch_size(20, mesh)


def test_noise_is_drawn_for_the_global_batch():
  # Same z on 1 and 8 devices: the first D loss of both runs matches to rounding.
  c = load_config("ring8")
  c.train.steps_per_call = 1
  ms = []
  for n in (1, 8):
    config, sh, state, fn = _setup(c, n)
    _, m = fn(state, jax.device_put(_ring_batch(config, 0), sh.batch))
    ms.append(float(m["d_loss"]))
  assert abs(ms[0] - ms[1]) < 1e-5


def test_rpgan_trains_g_on_its_own_real_batch_and_noise():
  """RpGAN (g_own_batch): batch["x"] has n_critic + 1 rows; D's update reads the first, G's loss the last
  with its own noise fold_in(z key, G_NOISE_STREAM). With simultaneous updates G's loss is against the
  initial D, so it is recomputed here from the initial networks: softplus(D(x_g) - D(G(z_g))) (ring8's
  MLP: no batch statistics)."""
  c = load_config("ring8")
  c.objective = {"name": "rpgan"}
  c.train.steps_per_call, c.train.update_rule = 1, "simultaneous"
  _, parts, state = setup(c)
  assert parts.real_batches(c.train.n_critic) == 2
  b = c.train.batch_size
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(2, b, 2)), jnp.float32)
  fn = jax.jit(lambda s, batch: step_lib.train_step(s, batch, components=parts))
  _, m = fn(state, {"x": x})
  _, m_g = fn(state, {"x": x.at[1].add(0.5)})  # another batch for G only
  _, m_d = fn(state, {"x": x.at[0].add(0.5)})  # another batch for D only
  assert float(m_g["d_loss"]) == float(m["d_loss"]) and float(m_g["g_loss"]) != float(m["g_loss"])
  assert float(m_d["d_loss"]) != float(m["d_loss"]) and float(m_d["g_loss"]) == float(m["g_loss"])
  keys = step_lib.step_keys(state.rng, state.step)
  z_g = jax.random.normal(jax.random.fold_in(keys.z, step_lib.G_NOISE_STREAM), (b, c.model.latent_dim), jnp.float32)
  g = nnx.merge(state.g_graphdef, state.g.params, state.g.stats)
  d = nnx.merge(state.d_graphdef, state.d.params, state.d.stats)
  d_fake, d_real = np.asarray(d(g(z_g)), np.float64), np.asarray(d(x[1]), np.float64)
  want = np.mean(np.log1p(np.exp(d_real - d_fake)))
  assert float(m["g_loss"]) == pytest.approx(want, rel=1e-5)
