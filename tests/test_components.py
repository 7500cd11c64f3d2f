"""components.build: every part of a run built once, and user components registered from test code.

A model and an objective are registered here (no edit of jgan), trained through the library entry
point with the model's own config field, and a misspelt field is refused with that model's fields.
"""

import collections
import json
import os

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from jgan import components, models, objectives, optim, penalties, train, update_rules
from jgan import config as config_lib
from jgan.objectives import Objective
from tests.helpers import load_config, setup


class _BlockG(nnx.Module):
  """z -> 2-D points through ``num_blocks`` residual tanh blocks (the user's own architecture)."""

  def __init__(self, latent_dim: int, num_blocks: int, width: int, rngs: nnx.Rngs):
    self.inp = nnx.Linear(latent_dim, width, rngs=rngs)
    self.blocks = nnx.List([nnx.Linear(width, width, rngs=rngs) for _ in range(num_blocks)])
    self.out = nnx.Linear(width, 2, rngs=rngs)

  def __call__(self, z):
    h = self.inp(z)
    for b in self.blocks:
      h = h + jnp.tanh(b(h))
    return self.out(h)


class _BlockD(nnx.Module):
  def __init__(self, in_dim: int, num_blocks: int, width: int, rngs: nnx.Rngs):
    self.g = _BlockG(in_dim, num_blocks, width, rngs)  # the same trunk, read out to a score
    self.score = nnx.Linear(2, 1, rngs=rngs)

  def __call__(self, x):
    return self.score(self.g(x))[:, 0]


def _user_objective(scale: float = 1.0) -> Objective:
  """A least-squares objective with a user parameter: D pushes real to +scale, fake to -scale."""

  def loss(d_real, d_fake, state):
    del state
    d = jnp.mean((d_real - scale) ** 2) + jnp.mean((d_fake + scale) ** 2)
    return d, jnp.mean((d_fake - scale) ** 2)

  return Objective(loss=loss)


@pytest.fixture
def user_components():
  calls = collections.Counter()

  def make_g(cfg, data_shape, rngs):
    calls["generator"] += 1
    return _BlockG(cfg.latent_dim, cfg.num_blocks, cfg.width, rngs)

  def make_d(cfg, input_shape, rngs):
    calls["discriminator"] += 1
    return _BlockD(input_shape[-1], cfg.num_blocks, cfg.width, rngs)

  models.register("user_blocks", make_g, make_d, defaults={"num_blocks": 2, "width": 16})
  objectives.register("user_ls", _user_objective)
  yield calls
  models.MODELS.unregister("user_blocks")
  objectives.OBJECTIVES.unregister("user_ls")


def _user_config():
  c = load_config("ring8")
  config_lib.set_model(c, "user_blocks", latent_dim=2, num_blocks=3)
  c.objective = {"name": "user_ls", "scale": 0.5}
  c.train.steps, c.train.steps_per_call, c.train.log_every, c.train.sample_every = 5, 1, 5, 0
  c.train.progress, c.parallel.num_devices, c.checkpoint.async_save = False, 1, False
  return c


def test_user_model_and_objective_train_with_their_own_fields(user_components, tmp_path):
  state = train.train_and_evaluate(_user_config(), str(tmp_path))
  assert int(state.step) == 5
  assert len(state.g.params["blocks"]) == 3  # model.num_blocks reached the user's factory
  assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.g.params))
  stored = json.load(open(os.path.join(tmp_path, "config.json")))
  assert stored["model"]["num_blocks"] == 3 and stored["model"]["width"] == 16  # its default, filled in
  assert stored["objective"] == {"name": "user_ls", "scale": 0.5}
  assert "d_norm" not in stored["model"] and "depth" not in stored["model"]  # other models' fields dropped
  assert user_components == {"generator": 1, "discriminator": 1}


def test_misspelt_user_model_field_lists_its_fields(user_components):
  c = _user_config()
  c.model.num_block = 4
  with pytest.raises(
    ValueError,
    match=r"unknown config key 'model.num_block'; did you mean 'model.num_blocks'\? "
    r"valid keys in model: .*num_blocks.*width \(fields of model 'user_blocks'\)",
  ):
    config_lib.resolve(c)


def test_user_objective_parameter_is_checked(user_components):
  c = _user_config()
  c.objective = {"name": "user_ls", "scael": 0.5}
  with pytest.raises(
    ValueError,
    match=r"unknown config key 'objective.scael'; did you mean 'objective.scale'\? valid keys in objective: "
    r"name, scale \(fields of objective 'user_ls'\)",
  ):
    setup(c)


def test_wrong_type_of_a_model_field_is_refused(user_components):
  d = _user_config().to_dict()
  d["model"]["num_blocks"] = "3"  # e.g. a config built from JSON (ConfigDict itself refuses the assignment)
  c = ml_collections.ConfigDict(d)
  with pytest.raises(
    ValueError,
    match=r"model.num_blocks='3' has type str; expected int like the default 2",
  ):
    config_lib.resolve(c)


def test_registering_a_taken_name_is_refused():
  with pytest.raises(ValueError, match="model 'dcgan' is already registered"):
    models.register("dcgan", lambda *a: None, lambda *a: None)
  with pytest.raises(ValueError, match="shared by every model"):
    models.register("x", lambda *a: None, lambda *a: None, defaults={"latent_dim": 3})


def _count(monkeypatch, module, name, counter, key):
  fn = getattr(module, name)

  def counted(*args, **kwargs):
    counter[key] += 1
    return fn(*args, **kwargs)

  monkeypatch.setattr(module, name, counted)


def test_every_builder_is_called_once_per_run(monkeypatch, tmp_path):
  """One run (with a penalty, so every builder has work) builds each component exactly once, and
  validates the update rule once; the same counts when it resumes from its checkpoint."""
  counts = collections.Counter()
  _count(monkeypatch, objectives, "make_objective", counts, "objective")
  _count(monkeypatch, penalties, "make_penalty", counts, "penalty")
  _count(monkeypatch, optim, "make_optimizers", counts, "optimisers")
  for field in ("generator", "discriminator"):
    spec = models.MODELS["dcgan"]
    fn = getattr(spec, field)
    monkeypatch.setitem(
      models.MODELS._entries,
      "dcgan",
      spec._replace(**{field: (lambda fn, field: lambda *a, **k: counts.update([field]) or fn(*a, **k))(fn, field)}),
    )
  check = update_rules.UPDATE_RULES.check
  monkeypatch.setattr(
    update_rules.UPDATE_RULES,
    "check",
    lambda name, field="": counts.update(["update rule checks"]) or check(name, field),
  )
  c = load_config("smoke")
  c.penalty.name, c.model.d_norm, c.train.steps, c.parallel.num_devices = "r1", "none", 2, 1
  for attempt in ("fresh", "resumed"):
    counts.clear()
    c.train.steps = 2 if attempt == "fresh" else 4
    train.train_and_evaluate(c, str(tmp_path))
    assert counts == {
      "objective": 1,
      "penalty": 1,
      "optimisers": 1,
      "generator": 1,
      "discriminator": 1,
      "update rule checks": 1,
    }, (attempt, counts)


def test_abstract_build_computes_nothing_and_matches_the_real_one():
  c = config_lib.resolve(load_config("smoke"))
  real = components.build(c, (28, 28, 1))
  abstract = components.build(c, (28, 28, 1), abstract=True)
  for a, r in zip(
    jax.tree.leaves((abstract.g.params, abstract.d.stats)), jax.tree.leaves((real.g.params, real.d.stats))
  ):
    assert isinstance(a, jax.ShapeDtypeStruct) and (a.shape, a.dtype) == (r.shape, r.dtype)
