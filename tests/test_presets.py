"""Every config file loads, resolves in the registries and builds its models (abstractly)."""

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from jgan import config as config_lib
from jgan import data as data_lib
from jgan.models import make_models
from jgan.objectives import OBJECTIVES
from tests.helpers import config_names, load_config


@pytest.mark.parametrize("name", config_names())
def test_config_resolves(name):
  c = config_lib.resolve(load_config(name))
  assert c.objective.name in OBJECTIVES
  shape = data_lib.sample_shape(c.data)

  def run(z):
    g, d = make_models(c.model, shape, nnx.Rngs(0))
    if c.model.conditional:  # class-conditional configs: G(z, y), D(x, y)
      y = jnp.zeros((2,), jnp.int32)
      x = g(z, y)
      return x, d(x, y)
    x = g(z)
    return x, d(x)

  x, logits = jax.eval_shape(run, jax.ShapeDtypeStruct((2, c.model.latent_dim), "float32"))
  assert x.shape == (2,) + shape and logits.shape == (2,)


def test_expected_configs_exist():
  want = {
    "smoke",
    "dcgan_mnist5k",
    "ring8",
    "grid25",
    "dcgan_mnist",
    "dcgan_fashion_mnist",
    "dcgan_cifar10",
    "dcgan_celeb_a",
    "dcgan_lsun_bedroom",
    "sngan_cifar10",
    "sngan_cifar10_cond",
    "biggan_cifar10",
    "resnet_mnist5k",
    "biggan_mnist5k",
  }
  assert want <= set(config_names())
