"""Fréchet distance between Gaussians fitted to two feature sets (the maths behind FID).

For ``N(mu1, S1)`` and ``N(mu2, S2)`` (Dowson & Landau 1982; Heusel et al. 2017 for FID)::

  d^2 = ||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1^{1/2} S2 S1^{1/2})^{1/2})

The last trace equals ``tr((S1 S2)^{1/2})``, the form most implementations feed to
``scipy.linalg.sqrtm``. ``S1 S2`` is not symmetric, so ``sqrtm`` works in complex arithmetic and returns
spurious imaginary parts (and sometimes NaN) when a covariance is singular or ill-conditioned. Here
only symmetric eigendecompositions are used: ``S1 = V diag(w) V^T`` with ``w`` clipped at 0, then
``A = V diag(sqrt(w))`` satisfies ``A A^T = S1``, and ``A^T S2 A`` has the same non-zero eigenvalues as
``S1 S2`` (``eig(XY) = eig(YX)``) while being symmetric positive semi-definite. Its eigenvalues are
real; tiny negative ones from rounding are clipped to 0 before the square root. Everything runs in
float64 numpy: the ``d x d`` work (two ``eigh`` at d = 2048 take ~2.5 s on 2 CPU cores) is not worth
moving to an accelerator in float32, where the ``tr(S1) + tr(S2) - 2 tr(...)`` cancellation loses the
digits that small FIDs live in.
"""

from __future__ import annotations

import warnings

import numpy as np

from jgan.metrics.validation import as_features


def _warn_if_singular(n: int, d: int) -> None:
  # A covariance from n samples has rank <= n - 1 (one degree of freedom goes to the mean), so it is
  # singular whenever n <= d. The distance stays defined (the square root below is robust), but it is
  # then a poor, strongly biased estimate: FID protocols use n >= 10k for d = 2048.
  if n <= d:
    warnings.warn(
      f"Fitting a Gaussian to {n} samples of dimension {d}: the covariance has rank <= {n - 1} < {d} "
      "(singular), so the Fréchet distance is strongly biased. Use more samples than dimensions.",
      RuntimeWarning,
      stacklevel=3,
    )


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
  """Mean and unbiased covariance of a feature set, in float64.

  Args:
    features: ``[N, D]`` array-like of finite floats (any float dtype; numpy or JAX), ``N >= 2``.

  Returns:
    ``(mu, sigma)``: float64 ``[D]`` mean and float64 ``[D, D]`` covariance normalised by ``N - 1``
    (as ``np.cov`` and pytorch-fid). Warns (``RuntimeWarning``) when ``N <= D``, where the covariance is
    singular.
  """
  x = as_features(features, min_rows=2)
  n, d = x.shape
  _warn_if_singular(n, d)
  mu = x.mean(axis=0)
  xc = x - mu[None, :]
  sigma = (xc.T @ xc) / (n - 1)
  return mu, sigma


class GaussianStatsAccumulator:
  """Streaming mean/covariance over feature batches (for FID on more samples than fit in memory).

  Batches are merged with Chan et al.'s pairwise update of (count, mean, centred scatter matrix) in
  float64, which avoids the cancellation of the naive ``E[xx^T] - mu mu^T`` when the features' mean is
  large compared with their spread. The result equals :func:`gaussian_stats` on the concatenated
  batches up to float64 rounding.

  Example::

    acc = GaussianStatsAccumulator()
    for batch in feature_batches:   # each [B, D]
      acc.update(batch)
    mu, sigma = acc.result()
  """

  def __init__(self):
    self.count = 0
    self._mean: np.ndarray | None = None
    self._scatter: np.ndarray | None = None

  def update(self, features) -> None:
    """Adds a batch: ``features`` is ``[B, D]`` array-like of finite floats, ``B >= 1``."""
    x = as_features(features)
    b = x.shape[0]
    mean_b = x.mean(axis=0)
    xc = x - mean_b[None, :]
    scatter_b = xc.T @ xc
    if self._mean is None or self._scatter is None:
      self.count, self._mean, self._scatter = b, mean_b, scatter_b
      return
    if x.shape[1] != self._mean.shape[0]:
      raise ValueError(f"feature dimension changed from {self._mean.shape[0]} to {x.shape[1]}.")
    n = self.count
    delta = mean_b - self._mean
    total = n + b
    self._mean = self._mean + delta * (b / total)
    self._scatter = self._scatter + scatter_b + np.outer(delta, delta) * (n * b / total)
    self.count = total

  def result(self) -> tuple[np.ndarray, np.ndarray]:
    """Returns ``(mu [D], sigma [D, D])`` in float64, as :func:`gaussian_stats` (needs >= 2 samples)."""
    if self._mean is None or self.count < 2:
      raise ValueError(f"need at least 2 samples; got {self.count}.")
    _warn_if_singular(self.count, self._mean.shape[0])
    return self._mean.copy(), self._scatter / (self.count - 1)


def _check_stats(mu, sigma, name: str) -> tuple[np.ndarray, np.ndarray]:
  mu = np.asarray(mu, dtype=np.float64)
  sigma = np.asarray(sigma, dtype=np.float64)
  if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
    raise ValueError(f"{name}: expected mu [D] and sigma [D, D]; got {mu.shape} and {sigma.shape}.")
  if not (np.all(np.isfinite(mu)) and np.all(np.isfinite(sigma))):
    raise ValueError(f"{name}: statistics contain NaN or Inf.")
  # Symmetrise: a covariance read back from disk or accumulated in another order may be off by
  # rounding, and eigh only reads one triangle.
  return mu, 0.5 * (sigma + sigma.T)


def trace_sqrt_product(sigma1, sigma2) -> float:
  """``tr((S1^{1/2} S2 S1^{1/2})^{1/2}) = tr((S1 S2)^{1/2})`` for symmetric PSD ``[D, D]`` matrices.

  Real-valued by construction (symmetric eigendecompositions only; see the module docstring) and
  finite for singular inputs. Returns a float64 scalar >= 0.
  """
  s1 = np.asarray(sigma1, dtype=np.float64)
  s2 = np.asarray(sigma2, dtype=np.float64)
  w, v = np.linalg.eigh(0.5 * (s1 + s1.T))
  # Negative eigenvalues of a PSD matrix are rounding noise (~1e-16 * ||S1||): clip them.
  root_w = np.sqrt(np.clip(w, 0.0, None))
  m = v.T @ s2 @ v
  m = root_w[:, None] * m * root_w[None, :]  # A^T S2 A with A = V diag(sqrt(w))
  ev = np.linalg.eigvalsh(0.5 * (m + m.T))
  return float(np.sum(np.sqrt(np.clip(ev, 0.0, None))))


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
  """Squared Fréchet (2-Wasserstein) distance between ``N(mu1, sigma1)`` and ``N(mu2, sigma2)``.

  Args:
    mu1, mu2: ``[D]`` means (any float dtype; computed in float64).
    sigma1, sigma2: ``[D, D]`` symmetric positive semi-definite covariances (singular is fine).

  Returns:
    A Python float >= 0: ``||mu1 - mu2||^2 + tr(S1) + tr(S2) - 2 tr((S1^{1/2} S2 S1^{1/2})^{1/2})``.
    This is what FID reports (the *squared* distance, no square root). Rounding can make the exact
    expression a tiny negative number for (near-)identical inputs; it is clamped at 0.
  """
  mu1, s1 = _check_stats(mu1, sigma1, "first")
  mu2, s2 = _check_stats(mu2, sigma2, "second")
  if mu1.shape != mu2.shape:
    raise ValueError(f"dimension mismatch: {mu1.shape[0]} vs {mu2.shape[0]}.")
  diff = mu1 - mu2
  value = diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt_product(s1, s2)
  return float(max(value, 0.0))


def fid_from_features(features1, features2) -> float:
  """Fréchet distance between Gaussians fitted to two feature sets (FID given Inception features).

  Args:
    features1, features2: ``[N1, D]`` and ``[N2, D]`` array-likes of finite floats (e.g. 2048-d
      Inception pool3 activations of real and generated images). ``N`` may differ between the sets.

  Returns:
    A Python float >= 0 (see :func:`frechet_distance`). Warns when ``N <= D`` for either set. The
    estimate is biased upwards for finite ``N``, so only compare values computed with the same ``N``.
  """
  mu1, s1 = gaussian_stats(features1)
  mu2, s2 = gaussian_stats(features2)
  if mu1.shape != mu2.shape:
    raise ValueError(f"feature dimension mismatch: {mu1.shape[0]} vs {mu2.shape[0]}.")
  return frechet_distance(mu1, s1, mu2, s2)


def save_stats(path: str, mu, sigma) -> str:
  """Writes ``mu [D]`` and ``sigma [D, D]`` as ``np.savez_compressed(path, mu=, sigma=)``.

  The format of pytorch-fid's ``--save-stats`` and of clean-fid's reference statistics, so the file
  works with either package and with :func:`load_stats`. Returns the path written (``.npz`` appended by
  numpy when missing).
  """
  mu, sigma = _check_stats(mu, sigma, path)
  path = path if path.endswith(".npz") else path + ".npz"
  np.savez_compressed(path, mu=mu, sigma=sigma)
  return path


def load_stats(path: str) -> tuple[np.ndarray, np.ndarray]:
  """``(mu [D], sigma [D, D])`` float64 from an ``.npz`` with keys ``mu`` and ``sigma`` (pytorch-fid's
  and clean-fid's statistics files, or :func:`save_stats`); a ValueError naming what is missing."""
  with np.load(path) as z:
    missing = [k for k in ("mu", "sigma") if k not in z.files]
    if missing:
      raise ValueError(f"{path}: not a FID statistics file (keys {z.files}; need 'mu' and 'sigma')")
    return _check_stats(z["mu"], z["sigma"], path)
