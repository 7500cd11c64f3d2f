"""Inception Score (Salimans et al. 2016) from class probabilities.

``IS = exp(E_x KL(p(y|x) || p(y)))`` with ``p(y) = E_x p(y|x)``, computed on ``num_splits`` contiguous
splits of the samples; the mean and standard deviation over splits are reported, as in the original
OpenAI code (split ``i`` is rows ``[i N // s, (i + 1) N // s)``, population std). It lies in
``[1, K]``: 1 when every sample gets the same prediction, K when predictions are confident (one-hot)
and the classes are used uniformly within each split.

The ``[N, K]`` arithmetic is cheap, so it runs in float64 numpy: ``xlogy`` gives ``0 log 0 = 0``
exactly, so confident (one-hot) predictions need no epsilon.
"""

from __future__ import annotations

import numpy as np
from scipy.special import xlogy


def inception_score(probs, *, num_splits: int = 10) -> tuple[float, float]:
  """Inception Score of class probabilities.

  Args:
    probs: ``[N, K]`` array-like of probabilities ``p(y|x)`` (non-negative, rows summing to 1 within
      1e-3; e.g. a softmax output, any float dtype). ``N >= num_splits``.
    num_splits: number of contiguous splits (default 10, the published protocol on 50k samples).

  Returns:
    ``(mean, std)`` as Python floats: the mean of the per-split scores, each in ``[1, K]``, and their
    population standard deviation (``ddof=0``).
  """
  p = np.asarray(probs, dtype=np.float64)
  if p.ndim != 2:
    raise ValueError(f"probs must have shape [N, K]; got {p.shape}.")
  n = p.shape[0]
  if num_splits < 1 or n < num_splits:
    raise ValueError(f"need 1 <= num_splits <= N; got num_splits={num_splits}, N={n}.")
  if not np.all(np.isfinite(p)) or np.any(p < 0):
    raise ValueError("probs must be finite and non-negative.")
  row_sums = p.sum(axis=1)
  if np.any(np.abs(row_sums - 1.0) > 1e-3):
    raise ValueError(
      "rows of probs must sum to 1 (got sums in "
      f"[{row_sums.min():.4g}, {row_sums.max():.4g}]); pass softmax outputs, not logits."
    )
  p = p / row_sums[:, None]  # remove float32 softmax rounding so the KLs are exactly >= 0
  scores: list[float] = []
  for i in range(num_splits):
    part = p[i * n // num_splits : (i + 1) * n // num_splits]
    marginal = part.mean(axis=0, keepdims=True)
    # KL(p(y|x) || p(y)) per row; where p(y|x) > 0 the marginal is > 0 too.
    kl = np.sum(xlogy(part, part) - xlogy(part, marginal), axis=1)
    scores.append(float(np.exp(np.mean(kl))))
  return float(np.mean(scores)), float(np.std(scores))
