"""The ``make demo`` default: the class-conditional DCGAN on mnist5k, 28 px (jgan.presets.demo_mnist5k).

The first demo, the unconditional DCGAN, is configs/dcgan_mnist5k.py; benchmarks/bench_demo.py runs the two
side by side (wall time and mnist_fid5k; docs/models.md).

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/demo_mnist5k.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.data.channels = 1
    c.model.latent_dim = 64
    c.model.conditional = True
    c.model.num_classes = 10
    c.model.g_width = 32
    c.model.d_width = 32
    c.train.steps = 8000
    c.train.batch_size = 16
    c.train.log_every = 200
    c.train.sample_every = 2000
    c.train.num_samples = 100
    c.checkpoint.every_steps = 2000
"""

from jgan import presets


def get_config(arg=None):
  return presets.demo_mnist5k(arg)  # arg: an objective with its recipe, e.g. configs/demo_mnist5k.py:hinge
