"""Test set-up: 8 fake CPU devices (so data-parallel code runs for real) and strict numpy semantics.

XLA_FLAGS must be set before JAX initialises its backend, hence at conftest import time.
"""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()

import jax  # noqa: E402

import jgan  # noqa: E402,F401  (applies the XLA:CPU work-around before the backend starts)

jax.config.update("jax_numpy_rank_promotion", "raise")

# Library code logs; the command line prints those messages on stderr (jgan.cli). In-process tests see
# them the same way, whichever test first calls the command line in a worker.
from jgan import cli  # noqa: E402

cli.show_library_messages()
