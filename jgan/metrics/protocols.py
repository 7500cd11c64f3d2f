"""Protocol-named metrics: which features, how many samples, which real data, which distance.

A name reads ``[extractor_]metric<count>``, as in StyleGAN's ``fid50k``:

* no prefix: Inception-v3 (FID variant, :mod:`jgan.metrics.inception`) features / class probabilities,
  the protocol of published numbers: ``fid10k``, ``fid50k``, ``kid10k``, ``kid50k``, ``is10k``,
  ``is50k``, ``pr10k``, ``pr50k``, ``dc10k``, ``dc50k``, ``prdc10k``, ``prdc50k``;
* ``mnist_``: the digit domain classifier (:mod:`jgan.metrics.classifier`; 128-d penultimate features,
  10 classes) for MNIST / mnist5k: ``mnist_{fid,kid,is,pr,dc,prdc,modes}{500,5k,10k}``;
* ``modes2500``: 2-D Gaussian mixtures, VEEGAN / PacGAN's 2,500 samples (modes captured, share of
  high-quality samples, reverse KL; :func:`jgan.metrics.modes.mode_metrics`);
* ``mnist_class_match{500,5k,10k}``: class-conditional generators only: the share of samples the digit
  classifier labels with the class they were generated for (sample ``i`` is asked for class
  ``i % num_classes``, :func:`jgan.state.default_labels`), and the worst class's share;
* ``stacked_modes26k``: Stacked MNIST (3 digits as RGB channels), the digit classifier on each channel,
  1,000 modes, 26,000 samples as PacGAN; the reverse KL also split into the channels' digit skew
  (``channel_kl``, summed over the 3) and their dependence (:func:`jgan.metrics.modes.stacked_kl_parts`).

``<count>`` generated samples are compared with as many real images (fewer if the split is smaller:
mnist5k's train split has 4,500) of the dataset's train split, drawn in a fixed random order. Metric
kinds: ``fid`` (Fréchet distance), ``kid`` (KID mean and std over 100 subsets of 1,000), ``is``
(Inception Score over 10 splits), ``pr`` (precision/recall, k = 3), ``dc`` (density/coverage, k = 5),
``prdc`` (all four), ``modes`` (classes or mixture modes hit, reverse KL to uniform).

Results are flat ``{key: float}``: a single-output metric reports under its own name (``fid10k``), the
others as ``name/output`` (``kid10k/kid``, ``kid10k/kid_std``, ``pr10k/precision``, ...).
"""

from __future__ import annotations

import re
from typing import NamedTuple

import numpy as np

from jgan.data import mixtures
from jgan.metrics import modes as modes_lib
from jgan.metrics.distances import DISTANCE_OUTPUTS, DISTANCES
from jgan.registry import Registry

# Outputs of the mode metrics, which are not feature distances (see jgan.metrics.modes).
MODE_OUTPUTS = {
  "class_modes": ("modes", "reverse_kl"),
  # Stacked MNIST: the KL split into its channels' digit skew (summed) and their dependence (stacked_kl_parts).
  "stacked_modes": ("modes", "reverse_kl", "channel_kl", "dependence"),
  "mixture_modes": ("modes", "high_quality", "reverse_kl"),
  "class_match": ("accuracy", "worst_class"),
}
NEEDS_REAL = {"fid", "kid", "precision_recall", "density_coverage", "prdc"}
# What each distance reads from the extractor's outputs on generated samples.
FAKE_INPUT = {
  "inception_score": "probs",
  "class_modes": "labels",
  "stacked_modes": "labels",
  "mixture_modes": "points",
  "class_match": "labels",
}


class Protocol(NamedTuple):
  """One registered metric: features from ``extractor``, ``num_samples`` generated samples, a distance.

  ``distance`` is a key of :data:`jgan.metrics.DISTANCES` or of :data:`MODE_OUTPUTS`; ``num_classes``
  is the number of modes for ``class_modes`` / ``stacked_modes``.
  """

  extractor: str  # "inception" | "mnist" | "mnist_stacked" | "points" (see jgan.evaluation.EXTRACTORS)
  distance: str
  num_samples: int
  num_classes: int = 0

  @property
  def needs_real(self) -> bool:
    return self.distance in NEEDS_REAL

  @property
  def fake_input(self) -> str:
    """The extractor output the distance reads: ``features``, ``probs``, ``labels`` or ``points``."""
    return FAKE_INPUT.get(self.distance, "features")

  @property
  def outputs(self) -> tuple[str, ...]:
    return DISTANCE_OUTPUTS.get(self.distance) or MODE_OUTPUTS[self.distance]


_KINDS = {
  "fid": "fid",
  "kid": "kid",
  "is": "inception_score",
  "pr": "precision_recall",
  "dc": "density_coverage",
  "prdc": "prdc",
}
_COUNTS = {"500": 500, "1k": 1_000, "5k": 5_000, "10k": 10_000, "26k": 26_000, "50k": 50_000}


def _build() -> dict[str, Protocol]:
  table = {}
  for kind, distance in _KINDS.items():
    for count in ("10k", "50k"):
      table[f"{kind}{count}"] = Protocol("inception", distance, _COUNTS[count])
    for count in ("500", "5k", "10k"):
      table[f"mnist_{kind}{count}"] = Protocol("mnist", distance, _COUNTS[count])
  for count in ("500", "5k", "10k"):
    table[f"mnist_modes{count}"] = Protocol("mnist", "class_modes", _COUNTS[count], num_classes=10)
    table[f"mnist_class_match{count}"] = Protocol("mnist", "class_match", _COUNTS[count], num_classes=10)
  table["modes2500"] = Protocol("points", "mixture_modes", 2500)
  table["stacked_modes26k"] = Protocol("mnist_stacked", "stacked_modes", 26_000, num_classes=1000)
  return table


METRICS: Registry[Protocol] = Registry("metric", _build())
register = METRICS.register  # register(name, Protocol(extractor, distance, num_samples)): a new protocol


def parse_metric_names(names) -> list[str]:
  """A comma-separated string (or list) of metric names -> the list, checked against :data:`METRICS`.

  Empty entries are dropped, duplicates removed (first kept). Raises ValueError naming the unknown
  name and listing the valid ones.
  """
  parts = names.split(",") if isinstance(names, str) else list(names)
  out = []
  for n in (p.strip() for p in parts):
    if not n or n in out:
      continue
    METRICS.check(n)
    out.append(n)
  return out


def count_suffix(n: int) -> str:
  """The sample count as metric names write it: 10000 -> ``"10k"``, 500 -> ``"500"``, 2500 -> ``"2500"``."""
  return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def counted_name(name: str, num_samples: int = 0) -> str:
  """The name metric ``name`` reports under when computed on ``num_samples`` generated samples.

  A protocol's name states its sample count, and FID, KID, precision/recall and the mode counts all
  depend on it; a ``fid10k`` computed on 64 samples is reported as ``fid64``, never as ``fid10k``.
  ``num_samples`` 0 (or the protocol's own count) keeps ``name``.
  """
  p = METRICS[name]
  if not num_samples or num_samples == p.num_samples:
    return name
  stem = re.sub(r"\d+k?$", "", name)
  return f"{stem}{count_suffix(num_samples)}"


def result_keys(name: str, num_samples: int = 0) -> tuple[str, ...]:
  """The keys metric ``name`` reports: ``(name,)`` for one output, else ``name/<output>`` for each.

  ``name`` carries the sample count actually used (:func:`counted_name`).
  """
  outputs, shown = METRICS[name].outputs, counted_name(name, num_samples)
  return (shown,) if len(outputs) == 1 else tuple(f"{shown}/{o}" for o in outputs)


def compute(
  name: str,
  fake: dict[str, np.ndarray],
  real: dict[str, np.ndarray] | None = None,
  *,
  dataset: str = "",
  num_samples: int = 0,
) -> dict[str, float]:
  """Evaluates metric ``name`` on extractor outputs; returns ``{key: float}`` (see :func:`result_keys`).

  Args:
    name: a key of :data:`METRICS`.
    fake: the extractor's outputs on generated samples, each an array with at least ``num_samples``
      rows: ``features [N, D]``, ``probs [N, K]``, ``labels [N]`` int or ``points [N, 2]``.
    real: the extractor's outputs on real data (``features``), for metrics that compare with it; all
      its rows are used.
    dataset: the data set's name; ``modes2500`` reads its mixture (``ring8`` / ``grid25``) from it.
    num_samples: generated samples to use (0: the protocol's count); the keys say the count used.
  """
  p = METRICS[name]
  n = num_samples or p.num_samples
  x = np.asarray(fake[p.fake_input])
  if x.shape[0] < n:
    raise ValueError(f"{name} needs {n} generated samples; got {x.shape[0]}")
  x = x[:n]
  if p.distance == "class_modes":
    values = modes_lib.class_mode_counts(x.astype(np.int64), p.num_classes)
  elif p.distance == "stacked_modes":
    parts = modes_lib.stacked_kl_parts(x.astype(np.int64))
    values = modes_lib.class_mode_counts(x.astype(np.int64), p.num_classes)
    values |= {"channel_kl": float(sum(parts["channel_kl"])), "dependence": parts["dependence"]}
  elif p.distance == "class_match":  # sample i was generated for class i % K (jgan.state.default_labels)
    values = modes_lib.class_match(x.astype(np.int64), np.arange(n) % p.num_classes, p.num_classes)
  elif p.distance == "mixture_modes":
    if dataset not in mixtures.MIXTURES:
      raise ValueError(f"{name} needs a 2-D mixture data set ({', '.join(mixtures.MIXTURES)}); got {dataset!r}")
    centres, sigma = mixtures.MIXTURES[dataset]
    values = modes_lib.mode_metrics(x, centres, sigma)
  elif p.distance == "inception_score":
    values = DISTANCES["inception_score"](x)
  else:
    if real is None:
      raise ValueError(f"{name} compares with real data; pass real features")
    values = DISTANCES[p.distance](np.asarray(real["features"]), x)
  if isinstance(values, dict):
    outputs = tuple(values[o] for o in p.outputs)
  else:
    outputs = values if isinstance(values, tuple) else (values,)
  return {k: float(v) for k, v in zip(result_keys(name, n), outputs)}
