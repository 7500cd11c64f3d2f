"""Shared test helpers (configs sized for tests)."""

from __future__ import annotations

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, "configs")


def load_config(name: str, arg=None):
  """``configs/<name>.py``'s ``get_config(arg)``."""
  spec = importlib.util.spec_from_file_location(f"configs.{name}", os.path.join(CONFIG_DIR, f"{name}.py"))
  mod = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(mod)
  return mod.get_config(arg)


def config_names() -> list[str]:
  """The GAN experiment configs (the domain classifier's ``classifier_*`` configs are not GANs)."""
  return sorted(f[:-3] for f in os.listdir(CONFIG_DIR)
                if f.endswith(".py") and f not in ("__init__.py", "common.py") and not f.startswith("classifier_"))
