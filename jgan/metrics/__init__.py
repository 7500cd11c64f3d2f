"""Evaluation metrics: the mathematics on features / probabilities / samples.

Modules (re-exported here):

* :mod:`jgan.metrics.frechet`: Gaussian statistics and the Fréchet distance (FID's formula).
* :mod:`jgan.metrics.kid`: Kernel Inception Distance (unbiased polynomial-kernel MMD^2 over subsets).
* :mod:`jgan.metrics.inception_score`: Inception Score from class probabilities.
* :mod:`jgan.metrics.manifold`: k-NN precision/recall and density/coverage.
* :mod:`jgan.metrics.modes`: mode coverage for 2-D Gaussian mixtures (:data:`jgan.data.mixtures.MIXTURES`)
  and classifier-labelled modes.
* :mod:`jgan.metrics.distances`: the ``DISTANCES`` table of the maths above.
* :mod:`jgan.metrics.protocols`: the ``METRICS`` registry of protocol-named metrics.

Feature extractors (imported on demand, not here): :mod:`jgan.metrics.inception` (FID Inception-v3)
and :mod:`jgan.metrics.classifier` (the domain classifier for digits).

The maths functions know nothing about generators or feature networks. Protocol-named metrics
(``fid10k``, ``kid50k``, ``is50k``, ``pr10k``, ``mnist_fid5k`` ...: "sample N images from G, extract
features with network F, apply a distance") are the ``METRICS`` registry, built on :data:`DISTANCES`.
"""

from __future__ import annotations

from jgan.metrics.distances import DISTANCE_OUTPUTS, DISTANCES
from jgan.metrics.frechet import (
  GaussianStatsAccumulator,
  fid_from_features,
  frechet_distance,
  gaussian_stats,
  load_stats,
  save_stats,
  trace_sqrt_product,
)
from jgan.metrics.inception_score import inception_score
from jgan.metrics.kid import kernel_inception_distance, kid_from_features, polynomial_mmd2
from jgan.metrics.manifold import density_coverage, knn_radii, manifold_metrics, precision_recall
from jgan.metrics.modes import assign_modes, class_mode_counts, mode_metrics, stacked_kl_parts

# Protocol-named metrics (e.g. "fid10k": 10k generated images, Inception pool3 features, DISTANCES["fid"]
# against as many real images): name -> Protocol (extractor, distance, sample count); see
# jgan.metrics.protocols. Sampling, feature extraction and the real-feature cache live in jgan.evaluation.
from jgan.metrics.protocols import METRICS, Protocol, register

__all__ = [
  "DISTANCES",
  "DISTANCE_OUTPUTS",
  "GaussianStatsAccumulator",
  "METRICS",
  "Protocol",
  "assign_modes",
  "class_mode_counts",
  "stacked_kl_parts",
  "density_coverage",
  "fid_from_features",
  "frechet_distance",
  "load_stats",
  "save_stats",
  "gaussian_stats",
  "inception_score",
  "kernel_inception_distance",
  "kid_from_features",
  "knn_radii",
  "manifold_metrics",
  "mode_metrics",
  "polynomial_mmd2",
  "precision_recall",
  "register",
  "trace_sqrt_product",
]
