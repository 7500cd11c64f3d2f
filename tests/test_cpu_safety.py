"""Regression test for the XLA:CPU YNN-fusion miscompile (jax #39103, #39257, #40412)."""

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

from jgan import cpu_safety


def test_flag_is_set_after_import():
  assert cpu_safety.YNN_FLAG + "=" in os.environ["XLA_FLAGS"].split()


def test_jitted_reduction_matches_numpy():
  # The exact program that returned NaN / -inf / 1e25-scale garbage with the fusion on.
  x = jax.random.normal(jax.random.key(0), (1024, 256), jnp.float32)
  got = np.asarray(jax.jit(lambda x: (x @ jnp.ones((256, 8))).sum(0))(x))
  want = (np.asarray(x, np.float64) @ np.ones((256, 8))).sum(0)
  assert np.all(np.isfinite(got))
  np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-2)


def test_user_flags_are_kept_and_fix_applies_in_fresh_process():
  code = (
    "import os, jgan, jax, jax.numpy as jnp, numpy as np\n"
    "print(os.environ['XLA_FLAGS'])\n"
    "x = jax.random.normal(jax.random.key(0), (1024, 256))\n"
    "got = np.asarray(jax.jit(lambda x: (x @ jnp.ones((256, 8))).sum(0))(x))\n"
    "want = (np.asarray(x, np.float64) @ np.ones((256, 8))).sum(0)\n"
    "print(len(jax.devices()), bool(np.allclose(got, want, rtol=1e-4, atol=1e-2)))\n"
  )
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=3"}
  out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
  flags, result = out.strip().splitlines()[-2:]
  assert "--xla_force_host_platform_device_count=3" in flags and cpu_safety.YNN_FLAG + "=" in flags
  assert result == "3 True"
