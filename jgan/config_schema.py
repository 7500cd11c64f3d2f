"""The config schema: every key of a run's config with its type, default, valid range or choices and doc.

One table, :data:`FIELDS`, holds the keys every run has; the open sections (:data:`SECTIONS`: ``model``,
``objective``, ``penalty``, ``augment``, ``optim.g``, ``optim.d``) also hold the chosen component's own
parameters, whose types and defaults come from its registry (``MODELS.defaults(name)``, ...) and whose
ranges and docs come from :data:`PARAMS` (a component registered by user code gets its type from its
default and no range). Everything else is derived from here: :func:`jgan.config.defaults`, the type and
range checks of :func:`jgan.config.resolve`, ``jgan config show`` and ``docs/config.md``.

The checks a field carries (ranges, choices, rules) and the type test are :mod:`jgan.config_checks`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

from jgan import augment as augment_lib
from jgan import data as data_lib
from jgan import objectives as objectives_lib
from jgan import optim as optim_lib
from jgan import penalties as penalties_lib
from jgan import update_rules
from jgan.augment.ada_pipeline import PIPELINES
from jgan.config_checks import Check, Choices, Field, Range, Rule
from jgan.data import folder_datasets, on_device
from jgan.metrics import protocols as metric_protocols
from jgan.metrics import resize
from jgan.models import COMPUTE_DTYPES, MODELS, SHARED_FIELDS, autoencoder, dcgan, r3gan
from jgan.models.layers import LAYER_SETS
from jgan.objectives.fgan import G_LOSSES

INT32_MAX = 2**31 - 1  # the step counter is an int32 array in the train state
SEED_MAX = 2**32 - 1  # jax.random.key keeps 32 bits of the seed (without jax_enable_x64): larger seeds collide
ENSEMBLE_MODES = ("auto", "vmap", "map")  # how ensemble members share a device (jgan.ensemble)
BEST_MODES = ("max", "min")


def _not_a_file(path: str) -> str | None:
  if path and os.path.exists(path) and not os.path.isdir(path):
    return "is a file; expected a directory ('' = TFDS's default)"
  return None


def _dataset_name(name: str) -> str | None:
  """A built-in dataset, or a name a folder could be prepared under (whether it is: jgan.config.resolve)."""
  if name in data_lib.DATASETS or folder_datasets.NAME_PATTERN.fullmatch(name):
    return None
  return f"is neither a built-in dataset ({', '.join(data_lib.DATASETS)}) nor a prepared dataset's name (snake_case)"


def _metric_names(names: str) -> str | None:
  try:
    metric_protocols.parse_metric_names(names)
  except ValueError as e:
    return f"names an {e}"  # "unknown metric 'x'; valid choices: ..."
  return None


NONNEG, POSITIVE_INT, POSITIVE = Range(0), Range(1), Range(0, lo_open=True)
UNIT, UNIT_OPEN = Range(0, 1), Range(0, 1, hi_open=True)
STEPS = Range(1, INT32_MAX)
NONNEG_STEPS = Range(0, INT32_MAX)
_penalty_names = lambda: ("none", *penalties_lib.PENALTIES)

# The keys every run has, in the order of jgan.config.defaults() (a section's keys are contiguous).
# One key per entry: Field(key, type, default, check, doc).
# fmt: off
FIELDS: tuple[Field, ...] = (
  Field("seed", int, 0, Range(0, SEED_MAX),
        "the run's seed (initialisation, noise, data order); ensemble member i uses seed + i"),
  Field("data.name", str, "mnist5k",
        Rule(_dataset_name, f"{' | '.join(data_lib.DATASETS)}, or a dataset prepared under data.data_dir"),
        "the dataset: a built-in image dataset (jgan.data.IMAGE_DATASETS), a 2-D mixture, or your own images "
        "prepared by `jgan data prepare PATH --name NAME` (docs/data.md)"),
  Field("data.image_size", int, 28, POSITIVE_INT,
        "output side in px (images only; the model says which sizes it supports)"),
  Field("data.split", str, "", None,
        "the split trained on ('' = the dataset's train split)"),
  Field("data.data_dir", str, "", Rule(_not_a_file, "a directory or ''"),
        "TFDS data directory, also of datasets prepared from your images ('' = $TFDS_DATA_DIR or "
        "~/tensorflow_datasets)"),
  Field("data.download", bool, False, None,
        "prepare a missing TFDS dataset at start (as `jgan data prepare NAME`)"),
  Field("data.worker_count", int, 0, NONNEG,
        "Grain worker processes (part of the reproducibility config)"),
  Field("data.num_examples", int, 0, NONNEG,
        "train on the first N examples of the split only (limited-data studies; 0 = all)"),
  Field("data.channels", int, 0, NONNEG,
        "image channels: 0 = the dataset's (resolve fills it in, so a run's generator loads without its data)"),
  Field("data.on_device", str, "auto", Choices(lambda: on_device.MODES),
        "keep the dataset on the device(s) as uint8 and make batches inside the step (same batches as the "
        "host pipeline); auto: where it fits in data.device_limit_mb"),
  Field("data.device_limit_mb", int, 2048, NONNEG,
        "auto uses the on-device path up to this many MiB of uint8 images per device"),
  Field("data.prefetch", int, 2, NONNEG,
        "host pipeline: batches prepared ahead (per Grain worker process, or in a thread; 0 = none)"),
  Field("model.name", str, "dcgan", Choices(lambda: MODELS),
        "the model (jgan.models.MODELS); its own fields go beside the shared ones"),
  Field("model.latent_dim", int, 100, POSITIVE_INT,
        "size of G's input z"),
  Field("model.pack", int, 1, POSITIVE_INT,
        "PacGAN (Lin et al. 2018): D judges groups of m samples"),
  Field("model.d_spectral_norm", bool, False, None,
        "spectral normalisation of every D layer (Miyato et al. 2018)"),
  Field("model.ae_code_dim", int, 64, POSITIVE_INT,
        "auto-encoder D of energy objectives (EBGAN, BEGAN): code size"),
  Field("model.ae_energy", str, "l2", Choices(autoencoder.ENERGIES),
        "auto-encoder D energy: l2 (mean squared error, EBGAN) or l1 (BEGAN)"),
  Field("model.compute_dtype", str, "float32", Choices(tuple(COMPUTE_DTYPES)),
        "dtype of activations (parameters stay float32)"),
  Field("model.layers", str, "auto", Choices(LAYER_SETS),
        "layer formulation (auto: fast on CPU, native elsewhere; jgan.models.layers)"),
  Field("model.conditional", bool, False, None,
        "class-conditional G and D (labels from the dataset)"),
  Field("model.num_classes", int, 0, NONNEG,
        "filled in from the dataset by resolve() when conditional (0 = unconditional)"),
  Field("objective.name", str, "non_saturating", Choices(lambda: objectives_lib.OBJECTIVES),
        "the adversarial objective (jgan.objectives); its parameters go beside it"),
  Field("augment.name", str, "none", Choices(lambda: augment_lib.AUGMENTS),
        "augmentation of D's inputs (jgan.augment); its parameters go beside it"),
  Field("penalty.name", str, "none", Choices(_penalty_names),
        "a regulariser of D (jgan.penalties) or none; its weights go beside it"),
  Field("penalty.every", int, 1, POSITIVE_INT,
        "lazy regularisation: apply every k D updates, scaled by k"),
  Field("penalty.final_scale", float, 1.0, NONNEG,
        "the penalty's weights move on half a cosine to this multiple of their value over optim.schedule_kimg, "
        "then stay (R3GAN's gamma: 0.1; 1 = constant)"),
  Field("lecam.weight", float, 0.0, NONNEG,
        "LeCam regularisation of D (Tseng et al. 2021) with any logit objective: lambda (0 = off)"),
  Field("lecam.decay", float, 0.99, UNIT_OPEN,
        "decay of LeCam's anchors, the moving averages of D's outputs on real and fake batches"),
  Field("optim.g.name", str, "adam", Choices(lambda: optim_lib.OPTIMIZERS),
        "G's optimiser (jgan.optim.OPTIMIZERS); its fields go beside it"),
  Field("optim.g.lr", float, 2e-4, POSITIVE,
        "G's learning rate"),
  Field("optim.d.name", str, "adam", Choices(lambda: optim_lib.OPTIMIZERS),
        "D's optimiser (jgan.optim.OPTIMIZERS); its fields go beside it"),
  Field("optim.d.lr", float, 2e-4, POSITIVE,
        "D's learning rate"),
  Field("optim.lr_schedule", str, "constant", Choices(lambda: optim_lib.LR_SCHEDULES),
        "both rates decay to 0 over train.steps (linear, cosine), stay (constant), or move on half a cosine to "
        "lr_final_scale times their value over schedule_kimg and stay (cosine_to_final, R3GAN)"),
  Field("optim.lr_final_scale", float, 0.0, NONNEG,
        "cosine_to_final: each rate's final multiple (R3GAN: 0.25, 2e-4 -> 5e-5); other schedules need 0"),
  Field("optim.schedule_kimg", float, 0.0, NONNEG,
        "span of the cosine schedules (cosine_to_final, b2_final, penalty.final_scale, ema_half_life_kimg) "
        "in thousands of images (0 = the whole run)"),
  Field("optim.d_clip", float, 0.0, NONNEG,
        "WGAN weight clipping of D's parameters to [-c, c] (0 = off)"),
  Field("optim.ema_decay", float, 0.999, UNIT_OPEN,
        "EMA of G's parameters (used for samples and evaluation; 0 = the live G)"),
  Field("optim.ema_half_life_kimg", float, 0.0, NONNEG,
        "> 0: the EMA by half-life in thousands of images instead of ema_decay, the half-life ramped from 0 "
        "on the cosine over schedule_kimg (R3GAN)"),
  Field("train.steps", int, 5000, STEPS,
        "G updates"),
  Field("train.batch_size", int, 64, POSITIVE_INT,
        "global batch per D update"),
  Field("train.n_critic", int, 1, POSITIVE_INT,
        "D updates per G update"),
  Field("train.steps_per_call", int, 1, STEPS,
        "steps fused into one jitted lax.scan (> 1: fewer host round trips)"),
  Field("train.update_rule", str, "alternating", Choices(lambda: update_rules.UPDATE_RULES),
        "how G and D update each step (jgan.update_rules)"),
  Field("train.unrolled_steps", int, 0, NONNEG_STEPS,
        "Unrolled GAN (Metz et al. 2016): G looks k D updates ahead (0 = off)"),
  Field("train.log_every", int, 50, STEPS,
        "metrics logged every this many steps"),
  Field("train.sample_every", int, 500, NONNEG_STEPS,
        "sample grid of fixed z every this many steps (0 = only at the end)"),
  Field("train.num_samples", int, 64, POSITIVE_INT,
        "images in a sample grid, or points in a 2-D scatter"),
  Field("train.progress", bool, True, None,
        "progress bar"),
  Field("train.num_seeds", int, 1, Range(1, 4096),
        "> 1: that many runs (seed, seed+1, ...) in one program (jgan.ensemble)"),
  Field("parallel.num_devices", int, 0, NONNEG,
        "devices the batch is split over (0 = all)"),
  Field("parallel.ensemble", str, "auto", Choices(ENSEMBLE_MODES),
        "how ensemble members share a device (auto: map on CPU, vmap elsewhere)"),
  Field("checkpoint.every_steps", int, 1000, NONNEG_STEPS,
        "save every this many steps (also at the end and on SIGTERM/SIGINT; 0 = only then)"),
  Field("checkpoint.max_to_keep", int, 3, POSITIVE_INT,
        "the last K checkpoints are kept"),
  Field("checkpoint.best_metric", str, "", None,
        "an evaluation result: also keep the best keep_best checkpoints by it ('' = off)"),
  Field("checkpoint.best_mode", str, "max", Choices(BEST_MODES),
        "which values of best_metric are better"),
  Field("checkpoint.keep_best", int, 1, NONNEG,
        "checkpoints kept by best_metric"),
  Field("checkpoint.async_save", bool, True, None,
        "write checkpoints in a background thread (always waited for before exit)"),
  Field("checkpoint.allow_config_change", bool, False, None,
        "resume even if a field that changes the result differs"),
  Field("evals.metrics", str, "", Rule(_metric_names, "comma list of jgan.metrics.METRICS"),
        "metrics during training and of `jgan eval`, e.g. 'mnist_fid5k,mnist_modes5k' ('' = none)"),
  Field("evals.every_steps", int, 0, NONNEG_STEPS,
        "evaluate every this many steps during training (0 = not during training)"),
  Field("evals.num_samples", int, 0, NONNEG,
        "generated (and real) samples of every metric (0 = each metric's own count)"),
  Field("evals.batch_size", int, 250, POSITIVE_INT,
        "samples per generator / feature-extractor call"),
  Field("evals.real_split", str, "", None,
        "real data compared with ('' = the dataset's train split)"),
  Field("evals.classifier_path", str, "", None,
        "domain classifier of mnist_* metrics ('' = $JGAN_CLASSIFIER or ~/.cache/jgan/classifier_mnist5k)"),
  Field("evals.inception_weights", str, "", None,
        "Inception weights of fid10k etc. ('' = $JGAN_INCEPTION_WEIGHTS or the cache)"),
  Field("evals.fid_mode", str, "legacy_pytorch", Choices(resize.FID_MODES),
        "Inception resize: legacy_pytorch (pytorch-fid) or clean (clean-fid)"),
  Field("evals.ref_stats", str, "", None,
        "FID against these statistics (.npz mu/sigma of pytorch-fid / clean-fid; '' = real data)"),
  Field("evals.cache_dir", str, "", None,
        "real-feature cache ('' = <workdir>/eval_cache)"),
)
# fmt: on
BY_KEY: dict[str, Field] = {f.key: f for f in FIELDS}


class Section(NamedTuple):
  """An open section: ``registry`` (a function returning it: user code may add entries) names its
  components; ``shared`` are the section's keys every component has (in :data:`FIELDS`); ``kind`` keys
  :data:`PARAMS`; ``none`` is a name meaning "no component" (no parameters); ``drops_others``: fields of
  another component of the registry are dropped by :func:`jgan.config.resolve` (left behind by a switch)
  instead of refused."""

  registry: Callable[[], Any]
  shared: tuple[str, ...]
  kind: str
  none: str = ""
  drops_others: bool = False


SECTIONS: dict[str, Section] = {
  "model": Section(lambda: MODELS, SHARED_FIELDS, "model", drops_others=True),
  "objective": Section(lambda: objectives_lib.OBJECTIVES, ("name",), "objective"),
  "penalty": Section(lambda: penalties_lib.PENALTIES, penalties_lib.STEP_FIELDS, "penalty", none="none"),
  "augment": Section(lambda: augment_lib.AUGMENTS, ("name",), "augment"),
  "optim.g": Section(lambda: optim_lib.OPTIMIZERS, ("name", "lr"), "optimizer", drops_others=True),
  "optim.d": Section(lambda: optim_lib.OPTIMIZERS, ("name", "lr"), "optimizer", drops_others=True),
}


class Param(NamedTuple):
  """Range and doc of a built-in component's parameter (its type and default are the registry's)."""

  check: Check | None
  doc: str


# kind -> parameter -> Param, for the built-in components; (kind, component) entries override a
# parameter whose meaning or range differs between the components of one kind.
PARAMS: dict[str | tuple[str, str], dict[str, Param]] = {
  "model": {
    "g_width": Param(POSITIVE_INT, "G's channel unit (dcgan: its last hidden layer's) or hidden units (mlp)"),
    "d_width": Param(POSITIVE_INT, "D's channel unit (dcgan: its first layer's) or hidden units (mlp)"),
    "d_norm": Param(
      Choices(dcgan.NORMS),
      "normalisation of D's hidden layers (batch: each real and each fake batch by its own statistics, "
      "so their means are hidden from D; layer: per sample)",
    ),
    "depth": Param(POSITIVE_INT, "hidden layers of G and D"),
    "shared_dim": Param(POSITIVE_INT, "size of the class embedding shared by G's blocks"),
    "attn_res": Param(Range(-1), "self-attention after the blocks of this side (-1 = half the image, 0 = none)"),
  },
  ("model", "resnet"): {
    "g_width": Param(NONNEG, "G's widest feature map (0 = the reference width of the image size)"),
    "d_width": Param(NONNEG, "D's widest feature map (0 = the reference width of the image size)"),
  },
  ("model", "r3gan"): {
    "arch": Param(Choices(lambda: ("auto", *r3gan.ARCHS)), "the reference's network table (auto: by image size)"),
    "width": Param(NONNEG, "the widest stage's channels, the others scaled (0 = the table's)"),
    "blocks": Param(NONNEG, "residual blocks per stage (0 = the table's)"),
  },
  ("model", "biggan"): {
    "g_width": Param(NONNEG, "G's channel unit, BigGAN's ch (0 = 96)"),
    "d_width": Param(NONNEG, "D's channel unit, BigGAN's ch (0 = 96)"),
  },
  "objective": {
    "g_loss": Param(Choices(G_LOSSES), "f-GAN G loss: trick (-E_Q[g_f(V)], the paper's) or saddle"),
    "gp_weight": Param(NONNEG, "WGAN-GP's gradient-penalty weight lambda"),
    "one_sided": Param(None, "penalise only gradient norms above 1"),
    "drift": Param(NONNEG, "weight of the drift term E_P[D(x)^2] (Karras et al. 2018)"),
    "a": Param(None, "LSGAN's target for fake samples in D's loss"),
    "b": Param(None, "LSGAN's target for real samples in D's loss"),
    "c": Param(None, "LSGAN's target G wants D to give its samples"),
    "average": Param(None, "relativistic average (RaGAN) instead of paired (RSGAN)"),
    "margin": Param(POSITIVE, "EBGAN's margin m on the fake energy"),
    "pt_weight": Param(NONNEG, "EBGAN's pull-away term weight"),
    "gamma": Param(UNIT, "BEGAN's diversity ratio E[L(G(z))] / E[L(x)]"),
    "lambda_k": Param(NONNEG, "BEGAN's learning rate of k_t"),
    "k_init": Param(UNIT, "BEGAN's initial k_t"),
  },
  "penalty": {
    "weight": Param(NONNEG, "gradient penalty weight lambda (WGAN-GP: 10)"),
    "one_sided": Param(None, "penalise only gradient norms above 1"),
    "gamma": Param(NONNEG, "R1 / R2 weight gamma (the penalty is gamma/2 E[||grad D||^2]; r1_r2: summed over both)"),
  },
  "augment": {
    "policy": Param(None, "comma list of color, translation, cutout"),
    "translation_ratio": Param(UNIT, "largest shift as a fraction of the image size"),
    "cutout_ratio": Param(UNIT, "cutout square's side as a fraction of the image size"),
    "pipeline": Param(Choices(lambda: PIPELINES), "ADA's transforms (the reference's augpipe)"),
    "target": Param(Range(-1, 1, lo_open=True, hi_open=True), "ADA's r_t target"),
    "interval": Param(POSITIVE_INT, "D updates between adjustments of p"),
    "kimg": Param(POSITIVE, "thousands of real images for p to move by 1"),
    "p": Param(UNIT, "initial (adaptive) or fixed augmentation strength"),
    "adaptive": Param(None, "tune p with the r_t heuristic"),
  },
  "optimizer": {
    "b1": Param(UNIT_OPEN, "Adam's beta1"),
    "b2": Param(UNIT_OPEN, "Adam's beta2"),
    "b2_final": Param(UNIT_OPEN, "> 0: beta2 moves on half a cosine from b2 to this over optim.schedule_kimg (0 = b2)"),
    "eps": Param(POSITIVE, "added to the denominator for numerical stability"),
    "decay": Param(UNIT_OPEN, "RMSProp's decay of the squared-gradient average"),
    "momentum": Param(UNIT_OPEN, "SGD's momentum (0 = none)"),
  },
}


def type_of(default) -> type:
  """The field type a component parameter's ``default`` implies (``object``: not checked)."""
  return type(default) if type(default) in (bool, int, float, str) else object


def section_of(key: str) -> str | None:
  """The open section holding dotted ``key`` (``"optim.g"`` for ``"optim.g.b1"``), or None."""
  return next((s for s in SECTIONS if key.startswith(s + ".")), None)


def component_fields(section: str, name: str) -> list[Field]:
  """The own fields of component ``name`` in open ``section`` (e.g. ``penalty``, ``r1``): the registry's
  parameters with their defaults, typed by the defaults, with :data:`PARAMS`' ranges and docs.
  Raises ValueError naming ``section.name`` and the valid choices for an unknown name."""
  s = SECTIONS[section]
  if s.none and name == s.none:
    return []
  registry = s.registry()
  registry.check(name, field=f"{section}.name")
  own = {**PARAMS.get(s.kind, {}), **PARAMS.get((s.kind, name), {})}
  out = []
  for k, v in registry.defaults(name).items():
    p = own.get(k, Param(None, f"parameter of {s.kind} {name!r} (registered default)"))
    out.append(Field(f"{section}.{k}", type_of(v), v, p.check, p.doc))
  return out


def section_defaults(section: str) -> dict[str, Any]:
  """``{key: default}`` of a fixed section of :data:`FIELDS` (e.g. ``evals``), keys without the prefix."""
  return {f.key[len(section) + 1 :]: f.default for f in FIELDS if f.key.startswith(section + ".")}


def fields_of(config) -> list[Field]:
  """Every field of ``config`` in display order: :data:`FIELDS`, each open section's shared keys followed
  by its chosen component's own fields. Raises ValueError for an unknown component name."""
  out = []
  for i, f in enumerate(FIELDS):
    out.append(f)
    section = section_of(f.key)
    after = FIELDS[i + 1].key if i + 1 < len(FIELDS) else ""
    if section and section_of(after) != section:
      node = config
      for part in section.split("."):
        node = node[part]
      out += component_fields(section, node["name"])
  return out
