"""Test set-up: 8 fake CPU devices (so data-parallel code runs for real) and strict numpy semantics.

XLA_FLAGS must be set before JAX initialises its backend, hence at conftest import time.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402

import jgan  # noqa: E402,F401  (applies the XLA:CPU work-around before the backend starts)

jax.config.update("jax_numpy_rank_promotion", "raise")
