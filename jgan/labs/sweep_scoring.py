"""What a sweep scores its runs with and how: metric choice and checks, scoring a state, results records.

:func:`check` validates a whole sweep before anything trains; :func:`score_run` scores any trained state
(a single run, a checkpoint, an ensemble member) and :func:`write_results` stores its record as
``final_metrics.json`` in the run's directory (see :mod:`jgan.labs.sweep`).
"""

from __future__ import annotations

import json
import os

import ml_collections
import numpy as np

from jgan.data import mixtures
from jgan.labs import mode_collapse
from jgan.labs.sweep_spec import Run, config_digest, run_config

RESULTS_FILE = "final_metrics.json"
SAMPLES_FILE = "final_samples.npy"
IMAGE_SAMPLES = 16  # images kept per run (final_samples.npy) for samples.png
MODE_KEYS = ("modes", "high_quality", "reverse_kl")  # jgan.labs.mode_collapse.evaluate's results
# A results record's fields that are not metric values (skipped and wall_s: this invocation only).
RECORD_KEYS = ("name", "labels", "seed", "step", "data", "config_sha256", "skipped", "wall_s")


def write_json_atomic(path: str, obj) -> None:
  with open(path + ".tmp", "w") as f:
    json.dump(obj, f, indent=2, sort_keys=True)
    f.write("\n")
  os.replace(path + ".tmp", path)  # atomic: a killed sweep never leaves half a results file


def read_results(run_dir: str) -> dict | None:
  path = os.path.join(run_dir, RESULTS_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def _is_mixture(config) -> bool:
  return config.data.name in mixtures.MIXTURES


def applicable_metrics(config) -> list[str]:
  """The :data:`jgan.metrics.METRICS` names that can score a generator of ``config``, in registry order.

  2-D mixtures (``ring8``, ``grid25``): the point metrics (``modes2500``). Images: the Inception metrics;
  the digit-classifier ones (``mnist_*``) on one-channel data sets with a domain classifier
  (:data:`jgan.metrics.classifier.DOMAINS`), ``stacked_modes26k`` on three-channel ones; the
  ``*class_match*`` metrics only for a class-conditional model (``model.conditional=True``).
  """
  from jgan import data as data_lib
  from jgan.metrics import METRICS

  name = config.data.name
  mixture = name in mixtures.MIXTURES
  channels = 0 if mixture else data_lib.sample_shape(config.data)[-1]
  digits = name in _classifier_domains()
  conditional = bool(config.model.get("conditional", False))
  out = []
  for m, p in METRICS.items():
    if p.extractor == "points":
      ok = mixture
    elif mixture:
      ok = False
    elif p.extractor == "mnist":
      ok = digits and channels == 1
    elif p.extractor == "mnist_stacked":
      ok = digits and channels == 3
    else:
      ok = True
    if p.distance == "class_match" and not conditional:
      ok = False
    if ok:
      out.append(m)
  return out


def _classifier_domains() -> dict[str, str]:
  from jgan.metrics import classifier

  return classifier.DOMAINS


def default_metrics(config) -> str:
  """The metrics a sweep scores ``config``'s runs with when ``--metric`` is not given.

  ``""`` for a 2-D mixture: the mode metrics of :func:`jgan.labs.mode_collapse.evaluate` (keys
  ``modes``, ``high_quality``, ``reverse_kl``) and the mode-collapse table. For images, as ``jgan
  eval``: ``config.evals.metrics`` if set, else the data set's :data:`jgan.evaluation.DEFAULT_METRICS`
  (:data:`jgan.evaluation.FALLBACK_METRICS` for a data set without an entry).
  """
  from jgan import evaluation

  if _is_mixture(config):
    return ""
  return evaluation.eval_settings(config).metrics or evaluation.DEFAULT_METRICS.get(
    config.data.name, evaluation.FALLBACK_METRICS
  )


def joined_metrics(metrics) -> str:
  """Metric names as one comma list: ``metrics`` is None, a comma list or a list of comma lists (``--metric``)."""
  return metrics if isinstance(metrics, str) else ",".join(metrics or ())


def check_metrics(config, metrics=None) -> tuple[str, ...]:
  """The metric names a run of ``config`` is scored with, checked; ``()`` means the mixture mode metrics.

  Args:
    config: the run's config (resolved or not).
    metrics: :data:`jgan.metrics.METRICS` names, a comma list or a list of them; None or empty:
      :func:`default_metrics`.

  Raises ValueError naming an unknown metric (with the registered names) or one that does not apply to
  the run's data or model (with the names that do, :func:`applicable_metrics`). Touches no files.
  """
  from jgan.metrics import protocols

  names = protocols.parse_metric_names(joined_metrics(metrics) or default_metrics(config))
  valid = applicable_metrics(config)
  for m in names:
    if m not in valid:
      unconditional = protocols.METRICS[m].distance == "class_match" and not config.model.get("conditional", False)
      what = f"data.name={config.data.name!r}" + (", model.conditional=False" if unconditional else "")
      raise ValueError(f"metric {m!r} does not apply to this run ({what}); valid choices: {', '.join(valid)}")
  return tuple(names)


def check(config_spec: str, runs: list[Run], metrics=None) -> list[tuple[ml_collections.ConfigDict, tuple]]:
  """Checks every run before anything trains; returns each run's ``(config, metric names)``.

  Each run's config must resolve (:func:`jgan.config.resolve` validates it) and its metrics apply
  (:func:`check_metrics`). Raises ValueError naming the run and the problem. Fast (no JAX work, no
  files): a bad sweep fails in seconds, not after training its first run.
  """
  from jgan import config as config_lib
  from jgan.metrics import protocols

  if metrics:
    # An unknown name is wrong for every run: say so without naming a run.
    protocols.parse_metric_names(joined_metrics(metrics))
  out = []
  for run in runs:
    c = run_config(config_spec, run)
    try:
      config_lib.resolve(c)
      names = check_metrics(c, metrics)
    except ValueError as e:
      raise ValueError(f"run {run.name}: {e}") from None
    out.append((c, names))
  return out


_EVALUATORS: dict[str, object] = {}  # one per (data, model classes, evals settings, metrics): extractors stay loaded


def evaluator(config, names, cache_dir: str):
  """A :class:`jgan.evaluation.Evaluator` of metrics ``names`` for ``config``'s data, reused across runs.

  Its real-feature cache is ``config.evals.cache_dir`` if set, else ``cache_dir``. Raises as the
  Evaluator does (FileNotFoundError for missing Inception weights or an explicit classifier path; the
  default domain classifier is trained once if missing).
  """
  from jgan import config as config_lib
  from jgan import evaluation

  c = config_lib.resolve(config)
  settings = evaluation.eval_settings(c)
  settings.cache_dir = settings.cache_dir or cache_dir
  settings.metrics = ",".join(names)
  c.evals = settings
  key = json.dumps(
    [c.data.to_dict(), c.model.get("conditional", False), c.model.get("num_classes", 0), settings.to_dict()],
    sort_keys=True,
    default=str,
  )
  if key not in _EVALUATORS:
    _EVALUATORS[key] = evaluation.Evaluator(c, os.path.dirname(cache_dir), names, progress=False)
  return _EVALUATORS[key]


def score_run(state, config, run_dir: str, metrics=None, *, cache_dir: str | None = None) -> dict:
  """Scores a trained generator: the EMA generator of ``state`` (a :class:`jgan.state.GANState`).

  Works on any state of ``config``'s model (trained in this process or not, e.g. restored from a
  checkpoint or one member of a multi-seed ensemble); the evaluation z depends only on ``config.seed``
  (``jgan.rng.run_keys(seed).eval``), so scoring is deterministic. Writes ``final_samples.npy`` into
  ``run_dir``: the evaluation points ``[2500, 2]`` of a mixture, the first 16 images ``[16, H, W, C]``
  in [-1, 1] of an image model.

  Args:
    metrics: as :func:`check_metrics`; the default scores a mixture with
      :func:`jgan.labs.mode_collapse.evaluate` and an image model with its data set's metrics.
    cache_dir: the real-feature cache when ``config.evals.cache_dir`` is empty (default
      ``<run_dir>/eval_cache``; a sweep shares ``<workdir>/eval_cache`` between its runs).

  Returns ``{"step": int, **metric values}``: ``modes`` (int), ``high_quality`` in [0, 1] and
  ``reverse_kl`` (>= 0 or NaN) for the mixture default, else the Evaluator's keys
  (``mnist_fid5k``, ``mnist_kid5k/kid``, ...: :func:`jgan.metrics.protocols.result_keys`), floats.
  """
  from jgan import evaluation, rng
  from jgan import state as state_lib

  names = check_metrics(config, metrics)
  os.makedirs(run_dir, exist_ok=True)
  step = int(state.step)
  if not names:
    values, x = mode_collapse.evaluate(state, config)
    np.save(os.path.join(run_dir, SAMPLES_FILE), x)
    return {"step": step, **values}
  key = rng.run_keys(config.seed).eval
  ev = evaluator(config, names, cache_dir or os.path.join(run_dir, "eval_cache"))
  values = ev.evaluate(evaluation.state_sampler(state), rng=key)
  n = mode_collapse.EVAL_SAMPLES if _is_mixture(config) else IMAGE_SAMPLES
  x = np.asarray(state_lib.sample(state, key, n), np.float32)
  np.save(os.path.join(run_dir, SAMPLES_FILE), x)
  return {"step": step, **values}


def write_results(run: Run, config, run_dir: str, results: dict) -> dict:
  """Writes ``<run_dir>/final_metrics.json`` (atomically) and returns what it holds.

  ``results`` is :func:`score_run`'s dict (``step`` and the metric values). The record adds the run's
  ``name``, ``labels`` (its multi-valued axes), ``seed``, ``data`` and ``config_sha256`` (the digest of
  ``config``, which must be the run's full config, :func:`run_config`: a later sweep compares it).
  """
  record = {
    "name": run.name,
    "labels": [list(kv) for kv in run.labels],
    "seed": config.seed,
    "data": config.data.name,
    "config_sha256": config_digest(config),
    **results,
  }
  os.makedirs(run_dir, exist_ok=True)
  write_json_atomic(os.path.join(run_dir, RESULTS_FILE), record)
  return record


def expected_keys(config, names) -> set[str]:
  if not names:
    return set(MODE_KEYS)
  from jgan import evaluation
  from jgan.metrics import protocols

  n = evaluation.eval_settings(config).num_samples
  return {k for m in names for k in protocols.result_keys(m, n)}
