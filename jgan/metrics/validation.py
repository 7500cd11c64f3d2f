"""Input checks shared by every feature-based metric: shape, size, and finite values.

A NaN or Inf feature (a diverged generator, a broken extractor) must stop a metric, not turn into a
plausible number: a NaN distance compares False with every radius, so one NaN real sample made all four
k-NN metrics 0.0, and KID averaged NaN kernel values into NaN. Every metric calls :func:`as_features`
before its first computation, so the error names the set, the count and the first bad position.
"""

from __future__ import annotations

import numpy as np


def as_features(features, name: str = "features", *, min_rows: int = 1, dtype=np.float64) -> np.ndarray:
  """``features`` as a 2-D finite array, or a ValueError that says what is wrong.

  Args:
    features: ``[N, D]`` array-like of floats.
    name: what the set is called in the error (e.g. ``"real features"``).
    min_rows: the least ``N`` the caller's metric needs (e.g. 2 for a covariance, k + 1 for k-NN).
    dtype: the returned dtype (float64 by default; float32 where the metric computes in float32).

  Returns:
    ``np.ndarray [N, D]`` of ``dtype``, every value finite.
  """
  x = np.asarray(features, dtype=dtype)
  if x.ndim != 2:
    raise ValueError(f"{name} must have shape [N, D]; got shape {x.shape}.")
  if x.shape[0] < min_rows:
    raise ValueError(f"{name} needs at least {min_rows} samples; got {x.shape[0]}.")
  bad = ~np.isfinite(x)
  if bad.any():
    row, col = np.argwhere(bad)[0]
    raise ValueError(
      f"{name} contains {int(bad.sum())} NaN or Inf value(s) in {int(bad.any(axis=1).sum())} of {x.shape[0]} "
      f"samples (first: sample {row}, feature {col} = {x[row, col]}); a diverged generator or a broken "
      "feature extractor gives these, and no metric is defined on them."
    )
  return x
