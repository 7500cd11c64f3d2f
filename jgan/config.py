"""The config of a run: its defaults, their resolution and their validation, before anything compiles.

* :func:`defaults` is every field a run reads, with the DCGAN recipe's values; experiment files and
  :mod:`jgan.presets` start from it. :func:`set_model` switches the model section (the fields every
  model shares plus the chosen model's own, from :data:`jgan.models.MODELS`).
* :func:`resolve` returns a copy with every implicit default made explicit (the model's own fields, the
  objective's and penalty's parameters), fields of other models dropped, and validates it: a one-line
  ``ValueError`` naming the bad value and the valid choices for wrong types, unknown dataset / model
  names or model fields, out-of-range numbers, incompatible sizes and bad checkpoint settings.
  Component names and parameters are checked where the components are built, by their registries
  (:func:`jgan.components.build`), so each field is validated in one place.
* :func:`check_keys` rejects keys the defaults do not have (typos in experiment files); :func:`flatten`
  is the config as ``{dotted key: value}``. Command-line parsing is :mod:`jgan.cli.flags`.
"""

from __future__ import annotations

import difflib
import importlib.util
import os

import ml_collections

from jgan import augment as augment_lib
from jgan import data as data_lib
from jgan import objectives as objectives_lib
from jgan import penalties as penalties_lib
from jgan.models import MODELS, SHARED_FIELDS
from jgan.models.layers import LAYER_SETS

# How ensemble members share a device (jgan.ensemble): auto (map on CPU, vmap elsewhere), vmap, map.
ENSEMBLE_MODES = ("auto", "vmap", "map")


def _check(cond: bool, msg: str) -> None:
  if not cond:
    raise ValueError(msg)


def _positive(name: str, value, kind=(int, float)) -> None:
  _check(
    isinstance(value, kind) and not isinstance(value, bool) and value > 0,
    f"{name}={value!r} must be a positive {'integer' if kind is int else 'number'}",
  )


def defaults() -> ml_collections.ConfigDict:
  """The defaults of every jgan experiment (the DCGAN recipe of Radford et al. 2015): a new ConfigDict.

  Every field a run reads is here, so ``--config.KEY=VALUE`` overrides are type-checked and a misspelt
  key fails at parse time. Experiment files and :mod:`jgan.presets` start from it and change what
  differs; :func:`set_model` and :func:`jgan.recipes.set_objective` switch the component sections.
  """
  c = ml_collections.ConfigDict()
  c.seed = 0

  c.data = ml_collections.ConfigDict()
  c.data.name = "mnist5k"  # see jgan.data.DATASETS
  c.data.image_size = 28  # output side in px (images only)
  c.data.split = ""  # "" = the dataset's train split
  c.data.data_dir = ""  # "" = TFDS's default (TFDS_DATA_DIR or ~/tensorflow_datasets)
  c.data.download = False  # prepare a missing TFDS dataset at start (as `jgan data prepare NAME`)
  c.data.worker_count = 0  # Grain worker processes (part of the reproducibility config)
  c.data.num_examples = 0  # train on the first N examples of the split only (limited-data studies; 0 = all)
  c.data.channels = 0  # image channels: 0 = the dataset's (resolve fills it in, so a run loads without its data)

  # The fields every model shares, then the chosen model's own (jgan.models.MODELS.defaults(name)).
  c.model = ml_collections.ConfigDict()
  c.model.name = "dcgan"  # see jgan.models.MODELS; set_model(c, name) switches with that model's fields
  c.model.latent_dim = 100
  c.model.pack = 1  # PacGAN (Lin et al. 2018): D judges groups of m samples
  c.model.d_spectral_norm = False  # spectral normalisation of every D layer (Miyato et al. 2018)
  c.model.ae_code_dim = 64  # auto-encoder D (EBGAN, BEGAN): code size
  c.model.ae_energy = "l2"  # auto-encoder D energy: l2 (mean squared error, EBGAN) | l1 (BEGAN)
  c.model.compute_dtype = "float32"  # float32 | bfloat16 (activations; parameters stay float32)
  c.model.layers = "auto"  # auto | fast | native: layer formulation (auto: fast on CPU; jgan.models.layers)
  # Class-conditional G and D (labels from the dataset; G: conditional BN or an embedding, D: projection).
  c.model.conditional = False
  c.model.num_classes = 0  # filled in from the dataset by resolve() when conditional (0 = unconditional)
  c.model.update(MODELS.defaults("dcgan"))  # g_width, d_width: channels; d_norm: batch | layer | none

  c.objective = ml_collections.ConfigDict()
  c.objective.name = "non_saturating"  # see jgan.objectives.OBJECTIVES; its parameters go beside it

  # Augmentation of D's inputs (jgan.augment.AUGMENTS): none | diffaugment | ada, parameters beside it.
  c.augment = ml_collections.ConfigDict()
  c.augment.name = "none"

  c.penalty = ml_collections.ConfigDict()
  c.penalty.name = "none"  # none | see jgan.penalties.PENALTIES (r1, r2, gradient_penalty)
  c.penalty.every = 1  # lazy regularisation: apply every k D updates' steps, scaled by k

  c.optim = ml_collections.ConfigDict()
  c.optim.g = ml_collections.ConfigDict(dict(name="adam", lr=2e-4, b1=0.5, b2=0.999))
  c.optim.d = ml_collections.ConfigDict(dict(name="adam", lr=2e-4, b1=0.5, b2=0.999))
  c.optim.lr_schedule = "constant"  # constant | linear | cosine: both rates decay to 0 over train.steps
  c.optim.d_clip = 0.0  # WGAN weight clipping of D's parameters (0 = off)
  c.optim.ema_decay = 0.999  # EMA of G's parameters (used for samples and evaluation)

  c.train = ml_collections.ConfigDict()
  c.train.steps = 5000  # G updates
  c.train.batch_size = 64  # global batch per D update
  c.train.n_critic = 1  # D updates per G update
  c.train.steps_per_call = 1  # >1 fuses that many steps into one jitted lax.scan
  c.train.update_rule = "alternating"  # alternating | simultaneous | extragradient | optimistic
  c.train.unrolled_steps = 0  # Unrolled GAN (Metz et al. 2016): G looks k D updates ahead
  c.train.log_every = 50
  c.train.sample_every = 500  # sample grid of fixed z (0 = only at the end)
  c.train.num_samples = 64  # images in a sample grid, or points in a 2-D scatter
  c.train.progress = True  # progress bar
  c.train.num_seeds = 1  # > 1: that many runs (seeds seed, seed+1, ...) vmapped in one program (jgan.ensemble)

  c.parallel = ml_collections.ConfigDict()
  c.parallel.num_devices = 0  # 0 = all devices
  c.parallel.ensemble = "auto"  # auto | vmap | map: how ensemble members share a device (jgan.ensemble)

  # Checkpoints in <workdir>/checkpoints (see jgan.checkpoint). A run on a workdir with checkpoints
  # resumes from the latest; a changed config field that alters the result is refused unless
  # allow_config_change (train.steps, log_every, progress, sample_every, num_samples may change).
  c.checkpoint = ml_collections.ConfigDict()
  c.checkpoint.every_steps = 1000  # also saved at the end and on SIGTERM/SIGINT (0 = only then)
  c.checkpoint.max_to_keep = 3  # the last K checkpoints are kept
  c.checkpoint.best_metric = ""  # an eval metric: also keep the best keep_best checkpoints by it ("" = off)
  c.checkpoint.best_mode = "max"  # max | min: which values of best_metric are better
  c.checkpoint.keep_best = 1
  c.checkpoint.async_save = True  # write in a background thread (always waited for before exit)
  c.checkpoint.allow_config_change = False  # resume even if result-changing fields differ

  # Evaluation metrics (jgan.evaluation, docs/evaluation.md): during training every every_steps G
  # updates, and by `python launch.py eval --workdir DIR` afterwards (results in <workdir>/evals.jsonl).
  c.evals = ml_collections.ConfigDict()
  c.evals.metrics = ""  # comma list of jgan.metrics.METRICS, e.g. "mnist_fid5k,mnist_modes5k" ("" = none)
  c.evals.every_steps = 0  # 0 = not during training
  c.evals.num_samples = 0  # generated (and real) samples of every metric (0 = each metric's own count)
  c.evals.batch_size = 250  # samples per generator / feature-extractor call
  c.evals.real_split = ""  # real data compared with ("" = the dataset's train split)
  c.evals.classifier_path = ""  # mnist_* metrics ("" = $JGAN_CLASSIFIER or ~/.cache/jgan/classifier_mnist5k)
  c.evals.inception_weights = ""  # fid10k etc. ("" = $JGAN_INCEPTION_WEIGHTS or ~/.cache/jgan/pt_inception-...pth)
  c.evals.fid_mode = "legacy_pytorch"  # Inception resize: legacy_pytorch (pytorch-fid) | clean (clean-fid)
  c.evals.ref_stats = ""  # FID against these statistics (.npz mu/sigma, pytorch-fid / clean-fid) ("" = real data)
  c.evals.cache_dir = ""  # real-feature cache ("" = <workdir>/eval_cache)

  return c


def set_model(c: ml_collections.ConfigDict, name: str, **fields) -> ml_collections.ConfigDict:
  """Switches config ``c`` to model ``name``: shared fields kept, the model's own fields at their
  registered defaults, then ``fields`` (any model field) applied. Returns ``c``."""
  MODELS.check(name)
  shared = {k: v for k, v in c.model.items() if k in SHARED_FIELDS}
  c.model = ml_collections.ConfigDict({**shared, "name": name, **MODELS.defaults(name)})
  for k, v in fields.items():
    _check(k in c.model, unknown_key_message(f"model.{k}", _model_keys(name)))
    c.model[k] = v
  return c


def _model_keys(name: str) -> dict:
  """The valid keys of model ``name``'s section, as :func:`unknown_key_message` wants them."""
  return {"model": None, **{f"model.{k}": None for k in (*SHARED_FIELDS, *MODELS.defaults(name))}}


def _same_kind(value, default) -> bool:
  """Whether ``value`` may stand where ``default`` does: the same type (an int for a float; bool is not int)."""
  if isinstance(default, bool) or isinstance(value, bool):
    return isinstance(value, bool) and isinstance(default, bool)
  if isinstance(default, float):
    return isinstance(value, (int, float))
  if isinstance(default, (int, str)):
    return type(value) is type(default)
  return True  # None, tuples, ...: the component checks


def _resolve_model(r: ml_collections.ConfigDict) -> None:
  """Fills in model ``r.model.name``'s own fields, drops other models' fields, refuses unknown ones."""
  MODELS.check(r.model.name)
  own = MODELS.defaults(r.model.name)
  # Fields another registered model declares (e.g. DCGAN's d_norm left in a config switched to 'mlp').
  others = {k for n in MODELS if n != r.model.name for k in MODELS.defaults(n)} - set(own) - set(SHARED_FIELDS)
  for k in list(r.model):
    if k in others:
      del r.model[k]
    elif k not in own and k not in SHARED_FIELDS:
      raise ValueError(
        unknown_key_message(f"model.{k}", _model_keys(r.model.name)) + f" (fields of model {r.model.name!r})"
      )
  for k, v in own.items():
    if k not in r.model:
      r.model[k] = v
    _check(
      _same_kind(r.model[k], v),
      f"model.{k}={r.model[k]!r} has type {type(r.model[k]).__name__}; "
      f"expected {type(v).__name__} like model {r.model.name!r}'s default {v!r}",
    )


def resolve(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """A validated copy of ``c`` with every component's default fields filled in (module docstring)."""
  r = ml_collections.ConfigDict(c.to_dict())  # a fresh ConfigDict is unlocked: new keys are allowed
  check_types(r)
  _resolve_data(r)
  _resolve_model(r)
  for k, v in objectives_lib.objective_params(c.objective.name).items():
    if k not in r.objective:
      r.objective[k] = v
  if c.penalty.name != "none":
    for k, v in penalties_lib.penalty_params(c.penalty.name).items():
      if k not in r.penalty:
        r.penalty[k] = v
  if r.augment.name != "none":
    augment_lib.check_augment_name(r.augment.name)
    for k, v in augment_lib.augment_params(r.augment.name).items():
      if k not in r.augment:
        r.augment[k] = v
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
  """Checks the dataset exists (built in or a prepared folder) and fills in ``data.channels``."""
  if "channels" not in r.data:  # configs saved before the field existed
    r.data.channels = 0
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
  """Raises ValueError on the first invalid run setting of config ``c`` (see the module docstring)."""
  check_types(c)
  data_lib.check_dataset_name(c.data.name, c.data.data_dir)
  _positive("penalty.every", c.penalty.every, int)
  _check(c.train.unrolled_steps >= 0, f"train.unrolled_steps={c.train.unrolled_steps!r} must be >= 0")
  _positive("model.pack", c.model.pack, int)
  _check(
    c.train.batch_size % c.model.pack == 0,
    f"train.batch_size={c.train.batch_size} must be a multiple of model.pack={c.model.pack} (PacGAN groups)",
  )
  for who in ("g", "d"):
    _positive(f"optim.{who}.lr", c.optim[who].lr)
  _check(0.0 <= c.optim.ema_decay < 1.0, f"optim.ema_decay={c.optim.ema_decay!r} must be in [0, 1)")
  _check(c.optim.d_clip >= 0.0, f"optim.d_clip={c.optim.d_clip!r} must be >= 0 (0 = no clipping)")
  for key in ("steps", "batch_size", "n_critic", "steps_per_call", "log_every", "num_seeds"):
    _positive(f"train.{key}", c.train[key], int)
  _check(c.train.sample_every >= 0, f"train.sample_every={c.train.sample_every!r} must be >= 0")
  _positive("train.num_samples", c.train.num_samples, int)
  _positive("model.latent_dim", c.model.latent_dim, int)
  _check(
    c.parallel.ensemble in ENSEMBLE_MODES,
    f"unknown parallel.ensemble={c.parallel.ensemble!r}; valid choices: {', '.join(ENSEMBLE_MODES)}",
  )
  _check(
    c.model.layers in LAYER_SETS,
    f"unknown model.layers={c.model.layers!r}; valid choices: {', '.join(LAYER_SETS)}",
  )
  _check(
    c.train.steps % c.train.steps_per_call == 0,
    f"train.steps={c.train.steps} must be a multiple of train.steps_per_call={c.train.steps_per_call}",
  )
  _check(
    c.train.log_every % c.train.steps_per_call == 0,
    f"train.log_every={c.train.log_every} must be a multiple of train.steps_per_call={c.train.steps_per_call}",
  )
  is_image = c.data.name not in data_lib.MIXTURES
  if MODELS[c.model.name].images_only and not is_image:
    others = ", ".join(n for n, spec in MODELS.items() if not spec.images_only)
    raise ValueError(
      f"model {c.model.name!r} needs an image dataset, got data.name={c.data.name!r}; models for 2-D mixtures: {others}"
    )
  if is_image:
    _positive("data.image_size", c.data.image_size, int)
    data_lib.check_image_data(c.data)
  _check(c.data.worker_count >= 0, f"data.worker_count={c.data.worker_count!r} must be >= 0")
  _check(c.data.num_examples >= 0, f"data.num_examples={c.data.num_examples!r} must be >= 0 (0 = all)")
  _check(
    c.data.num_examples == 0 or is_image,
    f"data.num_examples={c.data.num_examples} applies to image datasets; data.name={c.data.name!r} is sampled",
  )
  _validate_run_settings(c)


# Expected types of the fields every run reads (a float field also accepts an int). A model's own fields
# are checked against its registered defaults; objective, penalty and optimiser extras by their factories.
_TYPES = {
  "seed": int,
  "data.name": str,
  "data.image_size": int,
  "data.split": str,
  "data.data_dir": str,
  "data.download": bool,
  "data.worker_count": int,
  "model.name": str,
  "model.latent_dim": int,
  "model.pack": int,
  "model.d_spectral_norm": bool,
  "model.ae_code_dim": int,
  "model.ae_energy": str,
  "model.compute_dtype": str,
  "model.layers": str,
  "model.conditional": bool,
  "model.num_classes": int,
  "data.num_examples": int,
  "data.channels": int,
  "objective.name": str,
  "augment.name": str,
  "optim.g.name": str,
  "optim.g.lr": float,
  "optim.d.name": str,
  "optim.d.lr": float,
  "optim.d_clip": float,
  "optim.ema_decay": float,
  "optim.lr_schedule": str,
  "train.steps": int,
  "train.batch_size": int,
  "train.n_critic": int,
  "train.steps_per_call": int,
  "train.log_every": int,
  "train.sample_every": int,
  "train.num_samples": int,
  "train.progress": bool,
  "train.num_seeds": int,
  "parallel.num_devices": int,
  "parallel.ensemble": str,
  "checkpoint.every_steps": int,
  "checkpoint.max_to_keep": int,
  "checkpoint.best_metric": str,
  "checkpoint.best_mode": str,
  "checkpoint.keep_best": int,
  "checkpoint.async_save": bool,
  "checkpoint.allow_config_change": bool,
}
BEST_MODES = ("max", "min")


def _get(c, dotted: str):
  for part in dotted.split("."):
    if not isinstance(c, (dict, ml_collections.ConfigDict)) or part not in c:
      raise ValueError(f"config has no field {dotted!r}; start from jgan.config.defaults()")
    c = c[part]
  return c


def check_types(c: ml_collections.ConfigDict) -> None:
  """Raises ValueError if a field every run reads is missing or has the wrong type (bool is not int)."""
  for dotted, kind in _TYPES.items():
    v = _get(c, dotted)
    ok = isinstance(v, kind) and (kind is bool or not isinstance(v, bool))
    if kind is float:
      ok = isinstance(v, (int, float)) and not isinstance(v, bool)
    _check(ok, f"{dotted}={v!r} has type {type(v).__name__}; expected {kind.__name__}")


def _validate_run_settings(c: ml_collections.ConfigDict) -> None:
  """Devices, seed and the checkpoint section."""
  _check(c.parallel.num_devices >= 0, f"parallel.num_devices={c.parallel.num_devices!r} must be >= 0 (0 = all)")
  _check(c.seed >= 0, f"seed={c.seed!r} must be >= 0")
  ck = c.checkpoint
  _check(
    ck.every_steps >= 0,
    f"checkpoint.every_steps={ck.every_steps!r} must be >= 0 (0 = only at the end and on SIGTERM/SIGINT)",
  )
  _check(
    ck.every_steps % c.train.steps_per_call == 0,
    f"checkpoint.every_steps={ck.every_steps} must be a multiple of train.steps_per_call={c.train.steps_per_call}",
  )
  _positive("checkpoint.max_to_keep", ck.max_to_keep, int)
  _check(
    ck.best_mode in BEST_MODES, f"unknown checkpoint.best_mode={ck.best_mode!r}; valid choices: {', '.join(BEST_MODES)}"
  )
  _check(ck.keep_best >= 0, f"checkpoint.keep_best={ck.keep_best!r} must be >= 0")


def walk(c, prefix=""):
  """Every ``(dotted key, value)`` of a (nested) config, sections included, depth first."""
  for k, v in c.items():
    yield f"{prefix}{k}", v
    if isinstance(v, (dict, ml_collections.ConfigDict)):
      yield from walk(v, f"{prefix}{k}.")


def load_file(spec: str, arg: str | None = None) -> ml_collections.ConfigDict:
  """``get_config([arg])`` of the experiment file in ``spec`` = ``FILE[:ARG]`` (``arg`` overrides ARG).

  Raises ValueError if the file does not exist or is not Python; whatever ``get_config`` raises
  (e.g. a bad ARG) propagates.
  """
  path, _, file_arg = spec.partition(":")
  arg = (file_arg or None) if arg is None else arg
  if not os.path.isfile(path):
    raise ValueError(f"config file {path!r} does not exist")
  mod_spec = importlib.util.spec_from_file_location(f"_jgan_config_{abs(hash(os.path.abspath(path)))}", path)
  if mod_spec is None or mod_spec.loader is None:
    raise ValueError(f"config file {path!r} is not a Python file")
  module = importlib.util.module_from_spec(mod_spec)
  mod_spec.loader.exec_module(module)
  return module.get_config(arg) if arg else module.get_config()


def flatten(c) -> dict:
  """The config (or a nested dict) as ``{dotted key: leaf value}``; empty sections are leaves."""
  return {k: v for k, v in walk(c) if not isinstance(v, (dict, ml_collections.ConfigDict)) or not v}


# Sections whose keys depend on a chosen name (the model's fields, objective or penalty parameters,
# optimiser fields); :func:`resolve` checks them against the chosen component.
OPEN_SECTIONS = ("model", "objective", "augment", "penalty", "optim.g", "optim.d")


def check_keys(c: ml_collections.ConfigDict, reference: ml_collections.ConfigDict | None = None) -> None:
  """Raises ValueError for the first key of ``c`` that ``reference`` lacks (outside OPEN_SECTIONS).

  ``reference`` is the documented defaults (:func:`defaults` if None); the message suggests the
  closest valid key and lists the section's keys.
  """
  ref = dict(walk(defaults() if reference is None else reference))
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
