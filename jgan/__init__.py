"""jgan: a JAX/Flax framework for training and studying GANs.

Importing jgan first applies XLA:CPU work-arounds (see ``jgan.cpu_safety``), so import it before any
JAX computation runs.
"""

from jgan.cpu_safety import apply_cpu_workarounds as _apply_cpu_workarounds

_apply_cpu_workarounds()

__version__ = "0.1.0"
