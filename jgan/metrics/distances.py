"""The maths behind feature-based metrics, by name: :data:`DISTANCES` and the outputs of each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from jgan.metrics.frechet import fid_from_features
from jgan.metrics.inception_score import inception_score
from jgan.metrics.kid import kid_from_features
from jgan.metrics.manifold import density_coverage, manifold_metrics, precision_recall

# The math behind feature-based metrics. Inputs: all but "inception_score" take
# (real_features [N, D], fake_features [M, D]); "inception_score" takes fake class probabilities
# [M, K]. Each returns a float, a 2-tuple of floats or (for "prdc") a dict; DISTANCE_OUTPUTS names
# every output in order, so a protocol layer can build its {name: value} dict without special cases.
# "prdc" computes the four k-NN metrics at half the cost of "precision_recall" + "density_coverage".
DISTANCES: dict[str, Callable[..., Any]] = {
  "fid": fid_from_features,
  "kid": kid_from_features,
  "precision_recall": precision_recall,
  "density_coverage": density_coverage,
  "prdc": manifold_metrics,
  "inception_score": inception_score,
}
DISTANCE_OUTPUTS = {
  "fid": ("fid",),
  "kid": ("kid", "kid_std"),
  "precision_recall": ("precision", "recall"),
  "density_coverage": ("density", "coverage"),
  "prdc": ("precision", "recall", "density", "coverage"),
  "inception_score": ("is", "is_std"),
}
