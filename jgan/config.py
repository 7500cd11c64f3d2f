"""The config of a run: its defaults, their resolution and their validation, before anything compiles.

Every key, its type, default, valid range or choices and doc are one table, :mod:`jgan.config_schema`;
this module derives from it:

* :func:`defaults`: every key a run reads, with the DCGAN recipe's values (the schema's defaults and the
  default components' own fields); experiment files and :mod:`jgan.presets` start from it.
  :func:`set_component` switches an open section (``model``, ``objective``, ``penalty``, ``augment``,
  ``optim.g``, ``optim.d``) to another component with its own fields at their registered defaults;
  :func:`set_model` is that for the model.
* :func:`resolve` returns a copy with every implicit default made explicit (each open section's
  component fields; fields of other models and optimisers dropped) and validates it with
  :func:`validate`: one-line ``ValueError`` naming the key, the bad value and what is valid, for
  unknown keys, wrong types (bool is not int; floats must be finite), values out of range, unknown
  component names and the rules between fields (sizes that must divide, data the model needs, ...).
  Where components are built (:func:`jgan.components.build`) only what needs the data's shape is left.
* :func:`check_keys` rejects keys the schema lacks (typos in experiment files) naming the closest valid
  key; :func:`flatten` is the config as ``{dotted key: value}``; :func:`load_file` runs an experiment
  file. Command-line overrides are :mod:`jgan.config_overrides`.
"""

from __future__ import annotations

import difflib
import importlib.util
import os

import ml_collections

from jgan import config_schema as schema
from jgan import data as data_lib
from jgan import objectives as objectives_lib
from jgan.config_checks import check_value, config_from
from jgan.models import MODELS

ENSEMBLE_MODES = schema.ENSEMBLE_MODES  # how ensemble members share a device (jgan.ensemble)
BEST_MODES = schema.BEST_MODES
OPEN_SECTIONS = tuple(schema.SECTIONS)  # sections whose keys depend on the chosen component


def _check(cond: bool, msg: str) -> None:
  if not cond:
    raise ValueError(msg)


def section_node(c, section: str):
  """The node of dotted ``section`` in config ``c`` (``section_node(c, "optim.g")`` is ``c.optim.g``)."""
  for part in section.split("."):
    c = c[part]
  return c


def defaults() -> ml_collections.ConfigDict:
  """The defaults of every jgan experiment (the DCGAN recipe of Radford et al. 2015): a new ConfigDict.

  Every key a run reads is here (:data:`jgan.config_schema.FIELDS` and the default components' own
  fields), so ``--config.KEY=VALUE`` overrides are type-checked and a misspelt key fails at parse time.
  ``jgan config show`` lists them with their docs (``docs/config.md``).
  """
  c = config_from(schema.FIELDS)
  for section in schema.SECTIONS:
    node = section_node(c, section)
    for f in schema.component_fields(section, node.name):
      node[f.key.rpartition(".")[2]] = f.default
  return c


def set_component(c: ml_collections.ConfigDict, section: str, name: str, **fields) -> ml_collections.ConfigDict:
  """Switches open ``section`` of config ``c`` (e.g. ``"penalty"``) to component ``name``: the section's
  shared keys kept (``model.latent_dim``, ``optim.g.lr``, ``penalty.every``, ...), the component's own
  fields at their registered defaults, then ``fields`` applied. Returns ``c``.

  Raises ValueError for an unknown name or a field that neither the section nor the component has.
  """
  s = schema.SECTIONS[section]
  own = {f.key.rpartition(".")[2]: f.default for f in schema.component_fields(section, name)}
  node = section_node(c, section)
  kept = {k: v for k, v in node.items() if k in s.shared}
  new = ml_collections.ConfigDict({**kept, "name": name, **own})
  for k, v in fields.items():
    _check(k in new, unknown_key_message(f"{section}.{k}", _section_keys(section, new)))
    new[k] = v
  parent, _, leaf = section.rpartition(".")
  (section_node(c, parent) if parent else c)[leaf] = new
  return c


def set_model(c: ml_collections.ConfigDict, name: str, **fields) -> ml_collections.ConfigDict:
  """Switches config ``c`` to model ``name``: shared fields kept, the model's own fields at their
  registered defaults, then ``fields`` (any model field) applied. Returns ``c``."""
  return set_component(c, "model", name, **fields)


def _section_keys(section: str, node) -> dict:
  """The valid keys of an open section's node, as :func:`unknown_key_message` wants them."""
  return {section: None, **{f"{section}.{k}": None for k in node.keys()}}


def _others(section: str, name: str) -> set[str]:
  """Fields that other components of ``section``'s registry declare (left over from a switch)."""
  reg = schema.SECTIONS[section].registry()
  return {k for n in reg if n != name for k in reg.defaults(n)}


def _resolve_section(r: ml_collections.ConfigDict, section: str) -> None:
  """Fills in the chosen component's own fields of open ``section``; refuses fields it does not have.

  Fields another component declares are dropped where that was always so (models, optimisers, the
  fields of a penalty switched off): a switched component leaves them behind. Elsewhere (an objective,
  penalty or augmentation given another's parameter) they are refused, like any unknown key.
  """
  s = schema.SECTIONS[section]
  node = section_node(r, section)
  own = schema.component_fields(section, node.name)
  own_keys = {f.key.rpartition(".")[2] for f in own}
  drop = _others(section, node.name) if s.drops_others or node.name == s.none else set()
  for k in list(node):
    if k in own_keys or k in s.shared:
      continue
    if k in drop:
      del node[k]
      continue
    valid = _section_keys(section, {**{k: None for k in s.shared}, **{k: None for k in own_keys}})
    raise ValueError(
      unknown_key_message(f"{section}.{k}", valid) + f" (fields of {s.kind} {node.name!r}{owners_hint(section, k)})"
    )
  for f in own:
    leaf = f.key.rpartition(".")[2]
    if leaf not in node:
      node[leaf] = f.default


def fill_components(c) -> None:
  """Adds to every open section of ``c`` the fields of its chosen component that it lacks (defaults).

  Sections without a ``name`` (configs outside the schema) are left alone; an unknown name raises a
  one-line ValueError naming the key and the valid choices.
  """
  for section in schema.SECTIONS:
    try:
      node = section_node(c, section)
    except (KeyError, AttributeError):
      continue
    if "name" not in node:
      continue
    check_value(schema.BY_KEY[f"{section}.name"], node.name)
    for f in schema.component_fields(section, node.name):
      leaf = f.key.rpartition(".")[2]
      if leaf not in node:
        node[leaf] = f.default


def upgrade(stored) -> ml_collections.ConfigDict:
  """A config stored by an earlier jgan (a dict or ConfigDict) with the keys declared since then added at
  their defaults (the schema's, and the chosen components' own fields), as :func:`resolve` now fills them:
  so that ``flatten(upgrade(stored)) == flatten(resolve(current))`` when only such keys are new (e.g.
  ``optim.g.eps``, declared when the optimisers' fields were). Nothing is validated or removed."""
  c = ml_collections.ConfigDict(stored.to_dict() if hasattr(stored, "to_dict") else dict(stored))
  for f in schema.FIELDS:
    *parents, leaf = f.key.split(".")
    node = c
    for p in parents:
      if p not in node:
        node[p] = ml_collections.ConfigDict()
      node = node[p]
    if leaf not in node:
      node[leaf] = f.default
  fill_components(c)
  return c


def owners_hint(section: str, key: str) -> str:
  """``"; 'gamma' is a field of r1, r2"``: which components of open ``section`` take ``key`` ("" if none)."""
  reg = schema.SECTIONS[section].registry()
  names = [n for n in reg if key in reg.defaults(n)]
  return f"; {key!r} is a field of {', '.join(names)}" if names else ""


def resolve(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A validated copy of ``c`` with every component's default fields filled in (module docstring)."""
  r = ml_collections.ConfigDict(c.to_dict())  # a fresh ConfigDict is unlocked: new keys are allowed
  check_keys(r)
  for f in schema.FIELDS:
    check_value(f, _get(r, f.key))
  _resolve_data(r)
  for section in schema.SECTIONS:
    _resolve_section(r, section)
  if r.augment.name != "none":
    _check(
      r.data.name not in data_lib.MIXTURES,
      f"augment.name={r.augment.name!r} augments images; data.name={r.data.name!r} is 2-D points",
    )
    _check(
      objectives_lib.make_objective(**r.objective).d_output != "energy",
      f"augment.name={r.augment.name!r} needs raw D scores; energy objectives ({r.objective.name!r}) have none",
    )
  _resolve_classes(r)
  validate(r)
  return r


def _resolve_data(r: ml_collections.ConfigDict) -> None:
  """Checks the dataset exists (built in, or prepared from a folder under ``data.data_dir``) and can give
  the images asked for, and fills in ``data.channels`` (so a run's generator loads without its data)."""
  data_lib.check_dataset_name(r.data.name, r.data.data_dir)
  data_lib.check_image_data(r.data)
  if r.data.name not in data_lib.MIXTURES:
    r.data.channels = data_lib.image_spec(r.data).channels


def _resolve_classes(r: ml_collections.ConfigDict) -> None:
  """A conditional model gets ``model.num_classes`` from the dataset; refuses what cannot be conditioned."""
  m = r.model
  if not m.conditional:
    _check(
      m.num_classes == 0,
      f"model.num_classes={m.num_classes} is set but model.conditional=False; set model.conditional=True "
      f"(the number of classes then comes from the dataset)",
    )
    return
  n = data_lib.num_classes(r.data)
  labelled = [k for k, spec in data_lib.IMAGE_DATASETS.items() if spec.num_classes]
  _check(
    n > 0,
    f"model.conditional=True needs a labelled dataset; data.name={r.data.name!r} has no labels "
    f"(labelled: {', '.join(labelled)}, or a folder prepared with --labels subfolders or dataset.json)",
  )
  _check(
    m.num_classes in (0, n),
    f"model.num_classes={m.num_classes} differs from the {n} classes of data.name={r.data.name!r}; leave it 0",
  )
  _check(m.pack == 1, f"model.pack={m.pack} (PacGAN) cannot be combined with model.conditional=True")
  m.num_classes = n


def validate(c: ml_collections.ConfigDict) -> None:
  """Raises ValueError on the first invalid value of a resolved config ``c``: each key's type and range
  from the schema (the chosen components' fields too), then the rules between keys."""
  for f in schema.FIELDS:
    check_value(f, _get(c, f.key))
  for section in schema.SECTIONS:
    node = section_node(c, section)
    for f in schema.component_fields(section, node.name):
      check_value(f, _get(c, f.key))
  t = c.train
  _check(
    t.batch_size % c.model.pack == 0,
    f"train.batch_size={t.batch_size} must be a multiple of model.pack={c.model.pack} (PacGAN groups)",
  )
  for key in ("train.steps", "train.log_every", "checkpoint.every_steps"):
    v = _get(c, key)
    _check(v % t.steps_per_call == 0, f"{key}={v} must be a multiple of train.steps_per_call={t.steps_per_call}")
  _check(
    c.seed + t.num_seeds - 1 <= schema.SEED_MAX,
    f"seed={c.seed} with train.num_seeds={t.num_seeds} uses seeds up to {c.seed + t.num_seeds - 1}; "
    f"the largest is {schema.SEED_MAX}",
  )
  _check_schedules(c)
  if c.lecam.weight > 0 or t.unrolled_steps:  # rules on what the objective is (built only where one applies)
    objective = objectives_lib.make_objective(**c.objective)
    _check(
      not (c.lecam.weight > 0 and objective.d_output != "logit"),
      f"lecam.weight={c.lecam.weight!r} regularises raw D scores; energy objectives ({c.objective.name!r}) have none",
    )
    _check(
      not (objective.g_own_batch and t.unrolled_steps),
      f"train.unrolled_steps={t.unrolled_steps} (D's look-ahead on the critic batch) is not supported by "
      f"objective.name={c.objective.name!r}, which trains G on a batch of its own; set it to 0",
    )
  is_image = c.data.name not in data_lib.MIXTURES
  spec = MODELS[c.model.name]
  if spec.check is not None and is_image:
    spec.check(c.model, c.data.image_size)
  if MODELS[c.model.name].images_only and not is_image:
    others = ", ".join(n for n, spec in MODELS.items() if not spec.images_only)
    raise ValueError(
      f"model {c.model.name!r} needs an image dataset, got data.name={c.data.name!r}; models for 2-D mixtures: {others}"
    )
  if is_image:
    data_lib.check_image_data(c.data)
  _check(
    c.data.num_examples == 0 or is_image,
    f"data.num_examples={c.data.num_examples} applies to image datasets; data.name={c.data.name!r} is sampled",
  )


def _check_schedules(c: ml_collections.ConfigDict) -> None:
  """The rules between the schedules' keys (:mod:`jgan.schedules`): a final multiple needs what it scales."""
  o = c.optim
  _check(
    o.lr_final_scale == 0 or o.lr_schedule == "cosine_to_final",
    f"optim.lr_final_scale={o.lr_final_scale!r} is read by optim.lr_schedule='cosine_to_final' only "
    f"(optim.lr_schedule={o.lr_schedule!r}); set it to 0",
  )
  _check(
    c.penalty.final_scale == 1.0 or c.penalty.name != "none",
    f"penalty.final_scale={c.penalty.final_scale!r} schedules a penalty's weights; penalty.name is 'none'",
  )


def _get(c, dotted: str):
  for part in dotted.split("."):
    if not isinstance(c, (dict, ml_collections.ConfigDict)) or part not in c:
      raise ValueError(f"config has no field {dotted!r}; start from jgan.config.defaults()")
    c = c[part]
  return c


def walk(c, prefix=""):
  """Every ``(dotted key, value)`` of a (nested) config, sections included, depth first."""
  for k, v in c.items():
    yield f"{prefix}{k}", v
    if isinstance(v, (dict, ml_collections.ConfigDict)):
      yield from walk(v, f"{prefix}{k}.")


def flatten(c) -> dict:
  """The config (or a nested dict) as ``{dotted key: leaf value}``; empty sections are leaves."""
  return {k: v for k, v in walk(c) if not isinstance(v, (dict, ml_collections.ConfigDict)) or not v}


def load_file(spec: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """``get_config([arg])`` of the experiment file in ``spec`` = ``FILE[:ARG]`` (``arg`` overrides ARG).

  Raises ValueError if the file does not exist or is not Python; whatever ``get_config`` raises
  (e.g. a bad ARG) propagates.
  """
  path, _, file_arg = spec.partition(":")
  arg = (file_arg or None) if arg is None else arg
  if not os.path.isfile(path):
    why = "is a directory" if os.path.isdir(path) else "does not exist"
    raise ValueError(f"config file {path!r} {why}")
  mod_spec = importlib.util.spec_from_file_location(f"_jgan_config_{abs(hash(os.path.abspath(path)))}", path)
  if mod_spec is None or mod_spec.loader is None:
    raise ValueError(f"config file {path!r} is not a Python file")
  module = importlib.util.module_from_spec(mod_spec)
  mod_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def schema_keys() -> dict:
  """Every valid key outside the open sections' component fields (sections too), as ``{key: None}``."""
  keys: dict = {}
  for f in schema.FIELDS:
    parts = f.key.split(".")
    keys.update({".".join(parts[: i + 1]): None for i in range(len(parts))})
  return keys


def check_keys(c: ml_collections.ConfigDict, reference: ml_collections.ConfigDict | None = None) -> None:
  """Raises ValueError for the first key of ``c`` that ``reference`` lacks (outside OPEN_SECTIONS).

  ``reference`` is the schema's keys (:data:`jgan.config_schema.FIELDS`) if None, else a config; the
  message suggests the closest valid key and lists the section's keys.
  """
  ref = schema_keys() if reference is None else dict(walk(reference))
  for dotted, _ in walk(c):
    if dotted in ref or any(dotted.startswith(s + ".") for s in OPEN_SECTIONS):
      continue
    raise ValueError(unknown_key_message(dotted, ref))


def unknown_key_message(dotted: str, ref: dict, source: str = "") -> str:
  """One line naming the first unknown component of ``dotted``, the closest valid key and its siblings.

  ``ref`` holds every valid dotted key (sections too, as :func:`walk` yields them).
  """
  parts = dotted.split(".")
  i = next((i for i in range(len(parts)) if ".".join(parts[: i + 1]) not in ref), len(parts) - 1)
  section, bad = ".".join(parts[:i]), ".".join(parts[: i + 1])
  siblings = sorted(k.rpartition(".")[2] for k in ref if k.rpartition(".")[0] == section)
  near = difflib.get_close_matches(parts[i], siblings, n=1)
  hint = f"; did you mean {(section + '.' if section else '') + near[0]!r}?" if near else ";"
  where = f"in {section}" if section else "at the top level"
  return f"unknown config key {bad!r}{source}{hint} valid keys {where}: {', '.join(siblings)}"
