"""The mode-collapse protocol, ``configs/mode_collapse.py:DATASET[:METHOD]`` (jgan.labs.mode_collapse.config).

DATASET is ring8 or grid25; METHOD is gan (default), pacganM, unrolledK or an objective name.
"""

from jgan.labs import mode_collapse


def get_config(arg=None):
  return mode_collapse.config(arg)
