"""Shared test helpers (configs sized for tests)."""

from __future__ import annotations

import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, "configs")


def load_config(name: str, arg=None):
  """``configs/<name>.py``'s ``get_config(arg)`` (:func:`jgan.config.load_file`)."""
  from jgan import config as config_lib

  return config_lib.load_file(os.path.join(CONFIG_DIR, f"{name}.py"), arg)


def config_names() -> list[str]:
  """The GAN experiment configs (the domain classifier's ``classifier_*`` configs are not GANs)."""
  return sorted(
    f[:-3]
    for f in os.listdir(CONFIG_DIR)
    if f.endswith(".py") and f not in ("__init__.py", "common.py") and not f.startswith("classifier_")
  )


def setup(config, data_shape=None, rng=None):
  """``(resolved config, components, initial state)`` of ``config``, as a run builds them.

  ``data_shape`` defaults to the config's sample shape, ``rng`` (the state's step key) to
  the run's step key ``jgan.rng.run_keys(config.seed).train``.
  """
  from jgan import components, data, state
  from jgan import config as config_lib
  from jgan import rng as rng_lib

  c = config_lib.resolve(config)
  parts = components.build(c, tuple(data_shape) if data_shape is not None else data.sample_shape(c.data))
  return c, parts, state.create_state(parts, rng_lib.run_keys(c.seed).train if rng is None else rng)


def wait_until(condition, *, timeout_s: float, what: str, proc=None, poll_s: float = 0.002) -> None:
  """Polls ``condition()`` until it holds: the way tests synchronise with processes and files.

  ``timeout_s`` is a hang guard, not a measurement: it fails the test (naming ``what``) only when the
  condition never comes, e.g. a process that hangs. If ``proc`` (a ``subprocess.Popen``) ends first, the
  test fails with its status and the end of its stderr.
  """
  import time

  import pytest

  deadline = time.monotonic() + timeout_s
  while not condition():
    if proc is not None and proc.poll() is not None:
      err = proc.stderr.read() if proc.stderr is not None else ""
      pytest.fail(f"the process ended (status {proc.returncode}) before {what}: {(err or '')[-2000:]}")
    if time.monotonic() > deadline:
      pytest.fail(f"hang guard: {what} did not happen within {timeout_s:g} s")
    time.sleep(poll_s)


def run_cli(*argv: str) -> tuple[int, str, str]:
  """``jgan ARGV`` in this process, as a user types it: (exit status, stdout, stderr).

  Not for ``jgan train``: its absl flags are process-global (run it with subprocess).
  """
  import contextlib
  import io

  from jgan import cli

  out, err = io.StringIO(), io.StringIO()
  with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    rc = cli.main(list(argv))
  return rc, out.getvalue(), err.getvalue()
