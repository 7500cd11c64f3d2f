"""Evaluating a generator: sample, extract features, compute protocol-named metrics -> ``{name: value}``.

    evaluator = jgan.evaluation.make_evaluator(config, workdir)   # reads config.evals
    if evaluator.due(step):
      results = evaluator(state, step)   # e.g. {"mnist_fid5k": 1.9, "mnist_modes5k/modes": 10.0, ...}

The metrics are those of :data:`jgan.metrics.METRICS` (see :mod:`jgan.metrics.protocols`). One call
draws ``max(num_samples)`` samples from the EMA generator (by default) in batches of
``evals.batch_size``, quantised to 8 bits like saved images, runs every needed feature extractor once
per batch, and computes each metric on the first ``num_samples`` rows, so ``fid10k`` and ``kid10k``
share one pass. The noise is the same at every call (``jgan.rng.run_keys(seed).eval``), so successive
evaluations of a run differ only through the generator.

Real-data features are computed once per (dataset, image size, split, extractor and its weights'
digest, count) and cached as ``.npz`` in ``evals.cache_dir`` (default ``<workdir>/eval_cache``).

Feature extractors (:data:`EXTRACTORS`) map images ``[B, H, W, C]`` in [-1, 1] (or 2-D points) to a
dict of arrays: ``features [B, D]``, ``probs [B, K]``, ``labels [B]``, ``points [B, 2]``.
"""

from __future__ import annotations

import datetime
import io
import json
import os
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

from jgan import config_schema, storage
from jgan import data as data_lib
from jgan import metrics as metrics_lib
from jgan import rng as rng_lib
from jgan.metrics import protocols
from jgan.samples import as_float, generated_batches, quantize, state_sampler  # noqa: F401  (re-exported)

RESULTS_FILE = "evals.jsonl"
# config.evals defaults (the config schema's), also applied to configs saved before a key existed.
DEFAULTS = config_schema.section_defaults("evals")
# `python launch.py eval` without --metrics and without config.evals.metrics.
DEFAULT_METRICS = {
  "mnist5k": "mnist_fid5k,mnist_kid5k,mnist_is5k,mnist_prdc5k,mnist_modes5k",
  "mnist": "mnist_fid10k,mnist_kid10k,mnist_is10k,mnist_prdc10k,mnist_modes10k",
  "stacked_mnist5k": "stacked_modes26k",
  "ring8": "modes2500",
  "grid25": "modes2500",
}
FALLBACK_METRICS = "fid10k,kid10k,is10k"


def eval_settings(config) -> ml_collections.ConfigDict:
  """``config.evals`` with every key of :data:`DEFAULTS` present (missing ones take the default)."""
  merged = dict(DEFAULTS)
  if "evals" in config:
    merged.update({k: v for k, v in dict(config.evals).items()})
  return ml_collections.ConfigDict(merged)


class Extractor(NamedTuple):
  """A feature extractor: ``apply(x [B, ...]) -> {output: [B, ...]}`` (jitted) and its identity."""

  name: str
  digest: str  # identifies the weights: part of the real-feature cache key
  apply: Callable[[jax.Array], dict[str, jax.Array]]


def _inception(settings, data_cfg) -> Extractor:
  from jgan.metrics import inception, resize

  mode = resize.check_fid_mode(settings.fid_mode)
  model, digest = inception.load_inception(settings.inception_weights)
  run = inception.make_apply(model)

  def apply(x):
    if mode == "clean":  # clean-fid's PIL resize on the host; the network then sees 299 px
      x = jnp.asarray(resize.clean_resize(np.asarray(x)))
    features, probs = run(x)
    return {"features": features, "probs": probs}

  # The mode is part of the identity: real features of one mode are never reused for the other.
  return Extractor("inception", digest[:16] + ("" if mode == resize.DEFAULT_FID_MODE else f"-{mode}"), apply)


def _classifier(settings, data_cfg):
  from jgan.metrics import classifier

  loaded = classifier.load(settings.classifier_path)
  trained_on = loaded.config.data.name
  if classifier.DOMAINS.get(trained_on) != classifier.DOMAINS.get(data_cfg.name):
    raise ValueError(
      f"the domain classifier was trained on {trained_on!r}, which does not match the data "
      f"set {data_cfg.name!r}; train one for it (see docs/evaluation.md)"
    )
  return loaded, classifier


def _mnist(settings, data_cfg) -> Extractor:
  loaded, _ = _classifier(settings, data_cfg)

  def apply(x):
    features, logits = loaded.apply(x)
    return {"features": features, "probs": jax.nn.softmax(logits, -1), "labels": jnp.argmax(logits, -1)}

  return Extractor("mnist", loaded.info["digest"], apply)


def _mnist_stacked(settings, data_cfg) -> Extractor:
  loaded, classifier = _classifier(settings, data_cfg)
  labels = jax.jit(lambda x: classifier.stacked_labels(lambda c: loaded.apply(c)[1], x))
  return Extractor("mnist_stacked", loaded.info["digest"], lambda x: {"labels": labels(x)})


def _points(settings, data_cfg) -> Extractor:
  del settings, data_cfg
  return Extractor("points", "identity", lambda x: {"points": x})


# name -> factory(evals settings, data config) -> Extractor. Factories load weights (slow): call once.
EXTRACTORS: dict[str, Callable] = {
  "inception": _inception,
  "mnist": _mnist,
  "mnist_stacked": _mnist_stacked,
  "points": _points,
}


def _gathered(x):
  """``x`` whole on the host if it is spread over several devices, else as is.

  Samples drawn during data-parallel training come sharded over the ``('data',)`` mesh, while an
  extractor's weights sit on one device: jit refuses the mix ("incompatible devices"). Across
  processes each holds only its rows, so they are all-gathered first.
  """
  if isinstance(x, jax.Array) and len(x.sharding.device_set) > 1:
    if not x.is_fully_addressable:
      from jax.experimental import multihost_utils

      x = multihost_utils.process_allgather(x, tiled=True)
    x = np.asarray(x)
  return x


def _run_extractors(
  extractors: list[Extractor], batches, total: int, batch_size: int, desc: str, progress: bool
) -> dict[str, dict[str, np.ndarray]]:
  """Applies every extractor to each batch (padded to ``batch_size``: one compilation); host arrays."""
  from tqdm import tqdm

  out: dict[str, dict[str, list]] = {e.name: {} for e in extractors}
  bar = tqdm(total=total, desc=desc, unit="img", disable=not progress, dynamic_ncols=True, leave=False)
  for x in batches:
    x = _gathered(x)
    b = x.shape[0]
    if b < batch_size:
      x = jnp.concatenate([x, jnp.zeros((batch_size - b,) + x.shape[1:], x.dtype)])
    if x.ndim == 4:
      x = quantize(x)
    for e in extractors:
      for k, v in e.apply(x).items():
        out[e.name].setdefault(k, []).append(np.asarray(v)[:b])
    bar.update(b)
  bar.close()
  return {name: {k: np.concatenate(v) for k, v in outs.items()} for name, outs in out.items()}


class Evaluator:
  """Computes a fixed list of metrics for generators of one config (see :func:`make_evaluator`).

  Extractors load lazily on first use and stay loaded, with the real features, between calls.
  """

  def __init__(self, config, workdir: str, metrics=None, *, progress: bool = True):
    self.config = config
    self.settings = eval_settings(config)
    self.workdir = workdir
    names = self.settings.metrics if metrics is None else metrics
    self.metrics = protocols.parse_metric_names(names)
    self.progress = progress
    self.rng = rng_lib.run_keys(config.seed).eval
    self._extractors: dict[str, Extractor] = {}
    self._real: dict[tuple, dict[str, np.ndarray]] = {}
    self._check()

  def _check(self) -> None:
    """Fails before any training or sampling if a metric cannot run on this data set."""
    from jgan import classifier_training
    from jgan.metrics import inception_weights, resize

    name = self.config.data.name
    for m in self.metrics:
      kind = protocols.METRICS[m].extractor
      if protocols.METRICS[m].distance == "class_match" and not self.config.model.get("conditional", False):
        raise ValueError(f"metric {m!r} measures class-conditional generators; set model.conditional=True")
      if (kind == "points") != (name in data_lib.MIXTURES):
        raise ValueError(
          f"metric {m!r} does not apply to data set {name!r}"
          f"{' (2-D points: use modes2500)' if name in data_lib.MIXTURES else ''}"
        )
      if kind == "inception":
        resize.check_fid_mode(self.settings.fid_mode)
        # Downloads pytorch-fid's file into the cache on first use (verified), before any work.
        inception_weights.weights_path(self.settings.inception_weights, progress=self.progress)
      if kind.startswith("mnist"):
        # The cache's default classifier is trained on first use (about a minute, once).
        classifier_training.ensure_classifier(self.settings.classifier_path, progress=self.progress)
    # Loaded once here (a 2048-d sigma is 32 MB): a missing or malformed file fails before any sampling.
    self._ref_stats = self.reference_stats()

  def num_samples(self, metric: str) -> int:
    """Generated samples ``metric`` is computed on: ``evals.num_samples`` if set, else its protocol's."""
    return self.settings.num_samples or protocols.METRICS[metric].num_samples

  def record_fields(self) -> dict:
    """What a results row records besides the values: ``fid_mode`` when an Inception metric is computed,
    ``fid_reference`` (the statistics file) when FID is computed against ``evals.ref_stats``."""
    out = {}
    if any(protocols.METRICS[m].extractor == "inception" for m in self.metrics):
      out["fid_mode"] = self.settings.fid_mode
    if self.settings.get("ref_stats", "") and any(protocols.METRICS[m].distance == "fid" for m in self.metrics):
      out["fid_reference"] = os.path.abspath(os.path.expanduser(self.settings.ref_stats))
    return out

  def result_keys(self) -> list[str]:
    """Every key :meth:`evaluate` returns, each naming the sample count used (``fid64``, not ``fid10k``)."""
    return [k for m in self.metrics for k in protocols.result_keys(m, self.num_samples(m))]

  def due(self, step: int) -> bool:
    """Whether training should evaluate after ``step`` (every ``evals.every_steps`` > 0 steps)."""
    every = self.settings.every_steps
    return bool(self.metrics) and every > 0 and step % every == 0

  def extractor(self, kind: str) -> Extractor:
    if kind not in self._extractors:
      self._extractors[kind] = EXTRACTORS[kind](self.settings, self.config.data)
    return self._extractors[kind]

  def real_split(self) -> str:
    """The real split compared with: ``evals.real_split``, else the dataset's train split."""
    return self.settings.real_split or data_lib.image_spec(self.config.data).train_split

  def real_outputs(self, kind: str, n: int) -> dict[str, np.ndarray]:
    """Extractor ``kind``'s outputs on ``n`` real images (fewer if the split is smaller), cached on disk."""
    ex, d, split = self.extractor(kind), self.config.data, self.real_split()
    key = (kind, ex.digest, split, n)
    if key in self._real:
      return self._real[key]
    cache_dir = os.path.expanduser(self.settings.cache_dir or storage.join(self.workdir, "eval_cache"))
    # A prepared folder may be prepared again under its name: its fingerprint tells the contents apart.
    fingerprint = data_lib.image_spec(d).fingerprint[:12] if data_lib.is_prepared_folder(d) else ""
    name = f"{d.name}-{fingerprint}" if fingerprint else d.name
    path = storage.join(cache_dir, f"real_{name}_{d.image_size}px_{split}_{kind}-{ex.digest}_{n}.npz")
    if storage.exists(path):
      with np.load(io.BytesIO(storage.read_bytes(path))) as z:
        out = {k: z[k] for k in z.files}
    else:
      bs = self.settings.batch_size
      batches = (x for x, _ in data_lib.split_batches(d, split, n, bs))
      out = _run_extractors([ex], batches, n, bs, f"real {d.name}/{split}", self.progress)[kind]
      storage.makedirs(cache_dir)
      buf = io.BytesIO()
      np.savez(buf, **out)  # type: ignore[arg-type]  # numpy's stub types **kwds like allow_pickle
      storage.replace_bytes(path, buf.getvalue())  # atomic: a concurrent evaluation never reads a partial file
    self._real[key] = out
    return out

  def evaluate(self, source, rng: jax.Array | None = None) -> dict[str, float]:
    """Computes every metric for ``source``; returns ``{key: float}`` (:func:`protocols.result_keys`).

    Args:
      source: ``sample(rng, n) -> [n, ...]`` float32 samples in [-1, 1] (called as
        :func:`generated_batches` calls it), or an array of samples ``[N, ...]`` used in order: float32
        in [-1, 1], or uint8 images in [0, 255] (files written by any program, :mod:`jgan.samples`).
      rng: the sampling key (default: the evaluator's fixed key).
    """
    if not self.metrics:
      return {}
    fake = self._fake_outputs(source, self.metrics, rng)
    ref = self._ref_stats
    results = {}
    for m in self.metrics:
      p, n_m = protocols.METRICS[m], self.num_samples(m)
      if ref is not None and p.distance == "fid":  # against published / saved statistics, not real features
        mu, sigma = metrics_lib.gaussian_stats(fake[p.extractor]["features"][:n_m])
        if mu.shape != ref[0].shape:
          raise ValueError(f"evals.ref_stats holds {ref[0].shape[0]}-d statistics; {m}'s features are {mu.shape[0]}-d")
        results[protocols.counted_name(m, n_m)] = metrics_lib.frechet_distance(*ref, mu, sigma)
        continue
      real = self.real_outputs(p.extractor, n_m) if p.needs_real else None
      results.update(protocols.compute(m, fake[p.extractor], real, dataset=self.config.data.name, num_samples=n_m))
    return results

  def _fake_outputs(self, source, metrics: list[str], rng=None) -> dict[str, dict[str, np.ndarray]]:
    """Extractor outputs on the samples of ``source`` (a sampler or an array), as many as ``metrics`` need."""
    bs = self.settings.batch_size
    n = max(self.num_samples(m) for m in metrics)
    if callable(source):
      rng = self.rng if rng is None else rng
      k = self.config.model.num_classes if self.config.model.get("conditional", False) else 0
      batches = (x for x, _ in generated_batches(source, rng, n, bs, range(k)))
    else:
      if len(source) < n:
        raise ValueError(f"{len(source)} samples given; the metrics need {n}")
      batches = (jnp.asarray(as_float(source[i : i + bs])) for i in range(0, n, bs))
    kinds = sorted({protocols.METRICS[m].extractor for m in metrics})
    return _run_extractors([self.extractor(k) for k in kinds], batches, n, bs, "eval: generated", self.progress)

  def reference_stats(self) -> tuple[np.ndarray, np.ndarray] | None:
    """``evals.ref_stats``'s ``(mu, sigma)`` (pytorch-fid / clean-fid .npz), or None when unset."""
    path = self.settings.get("ref_stats", "")
    return metrics_lib.load_stats(os.path.expanduser(path)) if path else None

  def fid_stats(self, source, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian statistics ``(mu [D], sigma [D, D])`` of FID metric ``metric``'s features of ``source``
    (its sample count, the evaluator's fixed noise): what :func:`jgan.metrics.save_stats` writes."""
    if protocols.METRICS[metric].distance != "fid":
      raise ValueError(f"{metric!r} is not a FID metric; statistics are saved for fid* / mnist_fid* metrics")
    fake = self._fake_outputs(source, [metric])
    return metrics_lib.gaussian_stats(fake[protocols.METRICS[metric].extractor]["features"][: self.num_samples(metric)])

  def __call__(self, state, step: int, *, ema: bool = True, write: bool = True) -> dict[str, float]:
    """Evaluates ``state``'s generator (EMA by default); appends a row to ``<workdir>/evals.jsonl``."""
    results = self.evaluate(state_sampler(state, ema=ema))
    if write and results and jax.process_index() == 0:
      append_results(self.workdir, step, results, generator="ema" if ema else "live", **self.record_fields())
    return results


def make_evaluator(config, workdir: str, *, progress: bool = True) -> Evaluator:
  """The evaluator of ``config.evals`` for training: ``evaluator(state, step) -> {name: value}``.

  ``evaluator.due(step)`` says when to call it. Raises ValueError for an unknown metric name or one
  that does not apply to the data set, FileNotFoundError when Inception weights or the domain
  classifier are missing (with where to put them), at construction, before anything is compiled.
  """
  return Evaluator(config, workdir, progress=progress)


def append_results(workdir: str, step: int, results: dict[str, float], **extra) -> dict:
  """Appends ``{"step", "time", **extra, **results}`` as one line to ``<workdir>/evals.jsonl``."""
  row = {"step": int(step), "time": datetime.datetime.now().isoformat(timespec="seconds"), **extra, **results}
  storage.makedirs(workdir)
  storage.append_text(storage.join(workdir, RESULTS_FILE), json.dumps(row) + "\n")
  return row


def format_results(results: dict[str, float]) -> str:
  """One ``name value`` line per metric, aligned (for terminals)."""
  width = max((len(k) for k in results), default=0)
  return "\n".join(f"{k:<{width}}  {v:.6g}" for k, v in results.items())
