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

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory):
  """A .pth of pytorch-fid's Inception with random weights (tests/test_metrics_inception.py writes it without
  torch): the real weights cannot be downloaded offline, and the FID code path is the same with these."""
  from tests.test_metrics_inception import random_fid_state_dict, write_torch_zip

  path = tmp_path_factory.mktemp("inception") / "pt_inception.pth"
  write_torch_zip(path, random_fid_state_dict())
  return str(path)
