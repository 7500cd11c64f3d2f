"""SNGAN's ResNet at 28 px on mnist5k, class-conditional, sized for a 2-core CPU (jgan.presets.resnet_mnist5k).

--config.model.conditional=False trains the unconditional model.

The experiment: the keys it sets on ``jgan.config.defaults()`` (``jgan config show configs/resnet_mnist5k.py``
lists every key with its doc and valid values; ``--changed`` prints these lines)::

    c.model.name = 'resnet'
    c.objective.name = 'hinge'
    c.data.channels = 1
    c.model.latent_dim = 64
    c.model.conditional = True
    c.model.num_classes = 10
    c.model.g_width = 32
    c.model.d_width = 32
    c.train.steps = 2000
"""

from jgan import presets


def get_config(arg=None):
  return presets.resnet_mnist5k(arg)  # arg: another objective with its recipe
