"""Every config key the source of jgan reads, found with ``ast`` (the helper of tests/test_config_schema.py).

A read is an attribute chain, a ``.get("key")`` call or a ``["key"]`` subscript on a name that holds a
config or a section of one. Which names do is written down here, not guessed from types:

* in every module, a name ``config`` and an attribute ``.config`` hold a whole run config;
* :data:`MODULE_NAMES` adds, per module, the other names that hold one (``c``, ``r``, ``base`` where the
  module uses them so) or a section of one (a factory's ``cfg`` is the model section, an optimiser's
  ``c`` its ``optim.g`` / ``optim.d`` section, ...);
* inside a function, ``t = config.train`` makes ``t`` the ``train`` section until the function ends.

:func:`reads` returns ``{dotted key: ["path:line", ...]}``; :func:`config_names` lists every function
parameter of jgan named like a config (``config``, ``cfg``, ``*_cfg``, ``settings``), so a test can check
each one is covered by the rules above.
"""

from __future__ import annotations

import ast
import os

from tests.helpers import ROOT

ROOTS = {"config": ""}
WHOLE = {"c": ""}  # the modules where ``c`` is a run config (elsewhere a channel count, a Components, a row...)
# Methods of ConfigDict: a chain ending in one is not a key.
METHODS = {
  "get",
  "items",
  "keys",
  "values",
  "to_dict",
  "to_json",
  "to_json_best_effort",
  "update",
  "update_from_flattened_dict",
  "lock",
  "unlock",
  "ignore_type",
  "unlocked",
  "copy_and_resolve_references",
  "is_locked",
}
# module -> {name: the section it holds ("" = a whole config), or None: not a config in that module}.
MODULE_NAMES: dict[str, dict[str, str | None]] = {
  "jgan/config.py": {"c": "", "r": ""},
  "jgan/config_overrides.py": {"c": "", "out": ""},
  "jgan/components.py": WHOLE,
  "jgan/presets.py": WHOLE,
  "jgan/recipes.py": WHOLE,
  "jgan/ensemble.py": {"base": ""},
  "jgan/ensemble_step.py": {"c": "", "base": ""},
  "jgan/labs/mode_collapse.py": WHOLE,
  "jgan/labs/sweep_scoring.py": WHOLE,
  "jgan/labs/sweep_spec.py": {"c": "", "base": ""},
  "jgan/classifier_training.py": WHOLE,
  "jgan/checkpoint.py": {"ckpt_cfg": "checkpoint"},
  "jgan/models/__init__.py": {"cfg": "model", "model_cfg": "model"},
  "jgan/models/resnet.py": {"cfg": "model"},
  "jgan/models/biggan.py": {"cfg": "model"},
  "jgan/models/r3gan.py": {"cfg": "model"},
  "jgan/models/conditional.py": {"cfg": "model"},
  "jgan/models/autoencoder.py": {"cfg": "model"},
  "jgan/optim.py": {"c": "optim.g", "cfg": "optim.g"},  # one optimiser's section (optim.g or optim.d)
  "jgan/evaluation.py": {"settings": "evals", "data_cfg": "data"},
  "jgan/data/__init__.py": {"data_cfg": "data"},
  "jgan/data/prepare.py": {"data_cfg": "data"},
  "jgan/data/stacked.py": {"data_cfg": "data"},
  "jgan/data/mnist5k.py": {"data_cfg": "data"},
  "jgan/data/on_device.py": {"data_cfg": "data"},
  "jgan/data/pipeline.py": {"data_cfg": "data"},
  "jgan/labs/judge_study.py": {"settings": None},  # a study's own settings (study.json), not a run config
  "jgan/labs/latent_figures.py": {"data_cfg": "data"},
  "jgan/metrics/classifier.py": {"model_cfg": "model"},
}
# Modules whose config is the domain classifier's (jgan.classifier_training.FIELDS), not a GAN run's.
CLASSIFIER_MODULES = {"jgan/classifier_training.py", "jgan/metrics/classifier.py", "jgan/cli/classifier.py"}
CONFIG_LIKE = ("config", "cfg", "settings")


def modules() -> list[str]:
  """Every module of jgan, as a path relative to the repository root."""
  out = []
  for dirpath, _, files in os.walk(os.path.join(ROOT, "jgan")):
    out += [os.path.relpath(os.path.join(dirpath, f), ROOT) for f in files if f.endswith(".py")]
  return sorted(out)


def _join(base: str, key: str) -> str:
  return f"{base}.{key}" if base else key


class _Reads(ast.NodeVisitor):
  def __init__(self, module: str):
    self.module = module
    self.names = {**ROOTS, **MODULE_NAMES.get(module, {})}
    self.scopes: list[dict[str, str | None]] = [{}]
    self.found: dict[str, list[str]] = {}

  def lookup(self, name: str) -> str | None:
    for scope in reversed(self.scopes):
      if name in scope:
        return scope[name]
    return self.names.get(name)

  def resolve(self, node) -> str | None:
    """The dotted key ``node`` evaluates to ("" = a whole config), or None if it is no config."""
    if isinstance(node, ast.Name):
      return self.lookup(node.id)
    if isinstance(node, ast.Attribute):
      base = self.resolve(node.value)
      if base is None:  # self.config, self.settings, ...: an attribute named like a config of the module
        return self.names.get(node.attr) if len(node.attr) > 1 else None
      return None if node.attr in METHODS else _join(base, node.attr)
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) and isinstance(node.slice.value, str):
      base = self.resolve(node.value)
      return None if base is None else _join(base, node.slice.value)
    if (
      isinstance(node, ast.Call)
      and isinstance(node.func, ast.Attribute)
      and node.func.attr == "get"
      and node.args
      and isinstance(node.args[0], ast.Constant)
      and isinstance(node.args[0].value, str)
    ):
      base = self.resolve(node.func.value)
      return None if base is None else _join(base, node.args[0].value)
    return None

  def record(self, node) -> None:
    key = self.resolve(node)
    if key:
      self.found.setdefault(key, []).append(f"{self.module}:{node.lineno}")

  def visit_Attribute(self, node):
    self.record(node)
    self.generic_visit(node)

  def visit_Subscript(self, node):
    self.record(node)
    self.generic_visit(node)

  def visit_Call(self, node):
    self.record(node)
    self.generic_visit(node)

  def visit_Assign(self, node):
    key = self.resolve(node.value)
    for target in node.targets:
      if not isinstance(target, ast.Name):
        continue
      if key is not None:  # t = config.train: t is the train section
        self.scopes[-1][target.id] = key
      elif target.id not in self.names:  # x = anything else: x is no config
        self.scopes[-1][target.id] = None
      # c = config_lib.defaults(), c = load(...): a name that holds a config keeps holding one
    self.generic_visit(node)

  def _function(self, node):
    self.scopes.append({a.arg: self.names.get(a.arg) for a in (*node.args.args, *node.args.kwonlyargs)})
    self.generic_visit(node)
    self.scopes.pop()

  visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function


def reads(module: str) -> dict[str, list[str]]:
  """``{dotted key: ["path:line", ...]}`` of the config reads in ``module`` (a path under the root)."""
  v = _Reads(module)
  v.visit(ast.parse(open(os.path.join(ROOT, module)).read()))
  return v.found


def config_names() -> list[tuple[str, str, str]]:
  """``(module, function, parameter)`` for every parameter of jgan named like a config."""
  out = []
  for module in modules():
    for node in ast.walk(ast.parse(open(os.path.join(ROOT, module)).read())):
      if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
        for a in (*node.args.args, *node.args.kwonlyargs):
          if a.arg in CONFIG_LIKE or a.arg.endswith("_cfg"):
            out.append((module, node.name, a.arg))
  return out
