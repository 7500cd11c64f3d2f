"""What a run records about itself: library versions, the resolved config, seed, devices, XLA flags."""

from __future__ import annotations

import json
import os
import platform
import sys
from importlib import metadata

import jax

from jgan import storage


def library_versions() -> dict[str, str]:
  """Versions of Python and the packages that decide a run's numbers."""
  out = {"python": platform.python_version()}
  for pkg in ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "grain", "tensorflow-datasets", "numpy", "jgan"):
    try:
      out[pkg] = metadata.version(pkg)
    except metadata.PackageNotFoundError:
      out[pkg] = "not installed"
  return out


def write_run_info(config, workdir: str, resumed_from: int | None = None) -> None:
  """Writes the resolved config (``config.json``) and versions / seed / devices (``run_info.json``)."""
  storage.makedirs(workdir)
  storage.write_text(storage.join(workdir, "config.json"), config.to_json_best_effort(indent=2, sort_keys=True))
  info = {
    "versions": library_versions(),
    "seed": config.seed,
    "argv": sys.argv,
    "devices": [str(d) for d in jax.devices()],
    "process_count": jax.process_count(),
    "xla_flags": os.environ.get("XLA_FLAGS", ""),
    "resumed_from_step": resumed_from,
  }
  storage.write_text(storage.join(workdir, "run_info.json"), json.dumps(info, indent=2))
