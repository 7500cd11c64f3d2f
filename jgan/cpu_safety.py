"""Work-arounds for known XLA:CPU defects, applied when jgan is imported.

XLA:CPU's YNN fusion miscompiles simple jitted reductions in jaxlib 0.10.2 and 0.12.0.1: for example
``jax.jit(lambda x: (x @ jnp.ones((256, 8))).sum(0))`` on a (1024, 256) input returns NaN / -inf or
values off by 1e25 while eager execution is right (jax issues #39103, #39257, #40412). Setting the flag
``--xla_cpu_experimental_ynn_fusion_type=`` (empty value) turns the fusion off and fixes it.

XLA reads ``XLA_FLAGS`` once, when the first backend initialises. jgan therefore appends the flag at
import time, before anything asks JAX for a device, keeping the user's other flags. The flag only
affects the CPU backend, which every jaxlib build contains, so it is harmless on GPU/TPU hosts.
"""

from __future__ import annotations

import os
import warnings

YNN_FLAG = "--xla_cpu_experimental_ynn_fusion_type"


def backends_initialised() -> bool:
  """Whether JAX has started its backends in this process (then XLA flags can no longer change)."""
  import sys

  if "jax" not in sys.modules:
    return False
  try:
    from jax._src import xla_bridge  # private, but the only way to ask without initialising

    return bool(xla_bridge._backends)
  except Exception:  # a changed private API must not break import
    return False


def apply_cpu_workarounds() -> bool:
  """Appends the YNN-off flag to ``XLA_FLAGS`` unless the user set that flag already.

  Returns:
    True if the flag is (now) present in ``XLA_FLAGS``. Warns when JAX's backends were initialised
    before jgan was imported, since the flag then takes effect only in new processes.
  """
  flags = os.environ.get("XLA_FLAGS", "")
  if YNN_FLAG in flags:
    return True
  os.environ["XLA_FLAGS"] = (flags + " " + YNN_FLAG + "=").strip()
  if backends_initialised():
    warnings.warn(
      "jgan was imported after JAX initialised its backends, so the XLA:CPU miscompile work-around "
      f"({YNN_FLAG}=) cannot take effect in this process. Import jgan before using JAX, or set "
      f"XLA_FLAGS='{YNN_FLAG}=' in the environment.",
      RuntimeWarning,
      stacklevel=3,
    )
  return True
