"""Every config file loads, resolves in the registries and builds its models (abstractly), and its docstring
lists the keys that make its experiment (generated from the resolved config, kept current here)."""

import os

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from jgan import config as config_lib
from jgan import data as data_lib
from jgan.models import make_models
from jgan.objectives import OBJECTIVES
from tests.helpers import CONFIG_DIR, config_names, load_config


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
    "demo_mnist5k",
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
    "r3gan_cifar10",
    "r3gan_ffhq64",
    "r3gan_mnist5k",
    "r3gan_stacked_mnist5k",
  }
  assert want <= set(config_names())


# Each configs/*.py shows its experiment: its docstring ends with the keys that make it (what
# `jgan config show FILE --changed` prints), kept current here; `python -m tests.test_presets` rewrites them.
HEADER = (
  "The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/{name}.py``\n"
  "lists every key with its doc and valid values; ``--changed`` prints these lines)::\n"
)


def _path(name: str) -> str:
  return os.path.join(CONFIG_DIR, f"{name}.py")


def experiment_lines(name: str) -> list[str]:
  """The resolved config of ``configs/<name>.py`` (its default ARG) as ``c.KEY = VALUE`` lines."""
  from jgan.cli import config as config_cli

  return config_cli.changed_lines(config_lib.resolve(load_config(name)))


def _docstring(text: str) -> tuple[int, int]:
  """Start and end offsets of the module docstring's body in ``text`` (between the triple quotes)."""
  start = text.index('"""') + 3
  return start, text.index('"""', start)


def rewritten(name: str) -> str:
  """``configs/<name>.py`` with its docstring's experiment listing (re)generated."""
  text = open(_path(name)).read()
  start, end = _docstring(text)
  head = text[start:end].split(HEADER.format(name=name))[0].rstrip("\n")
  block = "\n".join("    " + line for line in experiment_lines(name))
  return text[:start] + head + "\n\n" + HEADER.format(name=name) + "\n" + block + "\n" + text[end:]


@pytest.mark.parametrize("name", config_names())
def test_config_file_lists_its_experiment(name):
  assert open(_path(name)).read() == rewritten(name), (
    f"configs/{name}.py: the experiment listing in its docstring is stale: run `python -m tests.test_presets`"
  )


if __name__ == "__main__":
  for name in config_names():
    with open(_path(name)) as f:
      text = f.read()
    new = rewritten(name)
    if new != text:
      with open(_path(name), "w") as f:
        f.write(new)
      print(f"rewrote configs/{name}.py")
