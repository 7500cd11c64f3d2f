"""Mode-coverage metrics: 2-D Gaussian mixtures (ring / grid) and classifier-labelled modes.

The 2-D benchmarks and their metrics follow VEEGAN (Srivastava et al. 2017, Sec. 5.1) as adopted by
PacGAN (Lin et al. 2018, Sec. 5.1 and their released code, ``synthetic_data_experiments``):

* **2D-ring**: 8 isotropic Gaussians with means ``(cos 2 pi i / 8, sin 2 pi i / 8)``, std 0.01.
* **2D-grid**: 25 isotropic Gaussians with means ``{-4, -2, 0, 2, 4}^2``, std 0.05.
* A generated sample is **high quality** if it lies within 3 standard deviations of its nearest
  centre (strictly: ``||x - c|| < 3 sigma``, as PacGAN's code), and it is then assigned to that mode.
* A mode is **captured** if it is assigned at least ``min_count`` high-quality samples. The published
  convention (VEEGAN's text, PacGAN's code) is ``min_count = 1``: "the number of mixture components
  whose mean is nearest to at least one high quality sample"; both evaluate 2,500 samples.
* **Reverse KL** ``KL(q || p) = sum_m q_m log(q_m / p_m)`` between ``q``, the histogram over modes of
  the high-quality samples (normalised), and the uniform target ``p_m = 1 / M`` (PacGAN Table 1).
  No smoothing is needed: ``p`` is positive everywhere and empty modes contribute ``0 log 0 = 0``. It
  equals ``log M - H(q)``, in ``[0, log M]``: 0 for a perfectly balanced generator, ``log M`` when all
  high-quality samples fall in one mode. It is NaN when there is no high-quality sample at all.

The mixtures' centres and standard deviations are :data:`jgan.data.mixtures.MIXTURES`.
"""

from __future__ import annotations

import numpy as np

HIGH_QUALITY_NUM_STD = 3.0
MIN_COUNT = 1


def assign_modes(samples, centres, sigma: float, *, num_std: float = HIGH_QUALITY_NUM_STD) -> np.ndarray:
  """Nearest-centre mode of each high-quality sample.

  Args:
    samples: ``[N, 2]`` (any ``[N, D]``) array-like of generated points.
    centres: ``[M, D]`` array-like of mode means.
    sigma: per-component isotropic standard deviation (> 0).
    num_std: high-quality radius in standard deviations (3, the published convention).

  Returns:
    int64 ``[N]``: the index in ``[0, M)`` of the nearest centre for samples strictly within
    ``num_std * sigma`` of it, and -1 for the others (low quality; also non-finite samples).
  """
  x = np.asarray(samples, dtype=np.float64)
  c = np.asarray(centres, dtype=np.float64)
  if x.ndim != 2 or c.ndim != 2 or x.shape[1] != c.shape[1]:
    raise ValueError(f"need samples [N, D] and centres [M, D]; got {x.shape} and {c.shape}.")
  if not sigma > 0:
    raise ValueError(f"sigma must be > 0; got {sigma}.")
  d2 = np.sum((x[:, None, :] - c[None, :, :]) ** 2, axis=-1)  # [N, M]; M is small (<= ~1000)
  d2 = np.where(np.isnan(d2), np.inf, d2)  # a diverged generator's NaN samples count as low quality
  nearest = np.argmin(d2, axis=1)
  nearest_d2 = np.take_along_axis(d2, nearest[:, None], axis=1)[:, 0]
  return np.where(nearest_d2 < (num_std * sigma) ** 2, nearest, -1)


def _reverse_kl_to_uniform(counts: np.ndarray) -> float:
  total = counts.sum()
  if total == 0:
    return float("nan")
  q = counts[counts > 0] / total
  return float(np.sum(q * np.log(q * counts.shape[0])))


def mode_metrics(
  samples,
  centres,
  sigma: float,
  *,
  num_std: float = HIGH_QUALITY_NUM_STD,
  min_count: int = MIN_COUNT,
) -> dict[str, float | int]:
  """Modes captured, share of high-quality samples and reverse KL for a Gaussian-mixture target.

  Args:
    samples: ``[N, 2]`` array-like of generated points (VEEGAN / PacGAN evaluate N = 2500).
    centres: ``[M, 2]`` mode means, e.g. :func:`ring8_centres` or :func:`grid25_centres`.
    sigma: the mixture's per-component std, e.g. ``jgan.data.mixtures.MIXTURES["ring8"].sigma``.
    num_std: high-quality radius in standard deviations (default 3).
    min_count: high-quality samples a mode needs to count as captured (default 1; see module doc).

  Returns:
    ``{"modes": int captured modes in [0, M], "high_quality": share of samples in [0, 1],
    "reverse_kl": KL(q || uniform) in [0, log M], NaN if no sample is high quality}``.
  """
  c = np.asarray(centres, dtype=np.float64)
  labels = assign_modes(samples, c, sigma, num_std=num_std)
  counts = np.bincount(labels[labels >= 0], minlength=c.shape[0])
  return {
    "modes": int(np.sum(counts >= min_count)),
    "high_quality": float(np.mean(labels >= 0)) if labels.size else float("nan"),
    "reverse_kl": _reverse_kl_to_uniform(counts),
  }


def class_mode_counts(labels, num_classes: int, *, min_count: int = MIN_COUNT) -> dict[str, float | int]:
  """Mode coverage of classifier-labelled samples (MNIST: 10 modes; Stacked MNIST: 1000).

  Args:
    labels: ``[N]`` integer array-like of predicted classes in ``[0, num_classes)`` (for Stacked MNIST,
      ``100 * c0 + 10 * c1 + c2`` from a digit classifier applied to each channel).
    num_classes: number of modes ``M``.
    min_count: samples a class needs to count as hit (default 1, as VEEGAN / PacGAN on Stacked MNIST).

  Returns:
    ``{"modes": int classes hit in [0, M], "reverse_kl": KL(q || uniform) in [0, log M]}`` with
    ``q`` the normalised class histogram (NaN for an empty input).
  """
  y = np.asarray(labels)
  if y.ndim != 1 or (y.size and not np.issubdtype(y.dtype, np.integer)):
    raise ValueError(f"labels must be a 1-D integer array; got dtype {y.dtype}, shape {y.shape}.")
  if y.size and (y.min() < 0 or y.max() >= num_classes):
    raise ValueError(f"labels must lie in [0, {num_classes}); got [{y.min()}, {y.max()}].")
  counts = np.bincount(y.astype(np.int64), minlength=num_classes)
  return {
    "modes": int(np.sum(counts >= min_count)),
    "reverse_kl": _reverse_kl_to_uniform(counts),
  }


def stacked_kl_parts(labels) -> dict:
  """Where a Stacked-MNIST KL to uniform comes from: each channel's digit frequencies, or their dependence.

  With ``q`` the histogram of the 1,000 triples, ``q_c`` the digit histogram of channel ``c`` and ``u``
  uniform, ``KL(q || u_1000) = sum_c KL(q_c || u_10) + TC(q)``, where the total correlation ``TC(q) =
  KL(q || q_0 q_1 q_2) >= 0`` is 0 exactly when the channels are independent. A generator whose
  digits are skewed (too few 1s) shows in the channel terms; one that ties the channels together in TC.

  Args:
    labels: ``[N]`` integer array-like in ``[0, 1000)``, ``100 c0 + 10 c1 + c2`` as
      :func:`jgan.metrics.classifier.stacked_labels` gives them.

  Returns:
    ``{"channel_kl": [3] floats in [0, log 10], "channel_freq": float64 [3, 10] (rows sum to 1),
    "dependence": TC in [0, 2 log 10], "reverse_kl": the total, as class_mode_counts reports it}``.
  """
  y = np.asarray(labels)
  total = class_mode_counts(y, 1000)["reverse_kl"]
  digits = [(y // 100) % 10, (y // 10) % 10, y % 10]
  counts = [np.bincount(d.astype(np.int64), minlength=10) for d in digits]
  channel_kl = [_reverse_kl_to_uniform(c) for c in counts]
  return {
    "channel_kl": channel_kl,
    "channel_freq": np.stack([c / max(int(c.sum()), 1) for c in counts]),
    "dependence": total - sum(channel_kl),
    "reverse_kl": total,
  }


def class_match(predicted, requested, num_classes: int) -> dict[str, float]:
  """How often a conditional generator draws the class it was asked for, as a classifier judges.

  Args:
    predicted: ``[N]`` integer array-like, the classifier's labels of the samples.
    requested: ``[N]`` integer array-like, the classes the samples were generated for, in
      ``[0, num_classes)``.
    num_classes: number of classes ``K``.

  Returns:
    ``{"accuracy": share of samples with predicted == requested in [0, 1], "worst_class": the lowest
    per-class share over the requested classes present}``.
  """
  p, r = np.asarray(predicted), np.asarray(requested)
  if p.shape != r.shape or p.ndim != 1:
    raise ValueError(f"predicted and requested must be 1-D of one length; got {p.shape} and {r.shape}")
  if r.size and (r.min() < 0 or r.max() >= num_classes):
    raise ValueError(f"requested classes must lie in [0, {num_classes}); got [{r.min()}, {r.max()}]")
  hit = (p == r).astype(np.float64)
  per_class = [hit[r == k].mean() for k in range(num_classes) if np.any(r == k)]
  return {"accuracy": float(hit.mean()), "worst_class": float(min(per_class))}
