"""2-D Gaussian mixtures for mode-collapse studies, generated from a seed (no files).

The one table of the mixtures is :data:`MIXTURES` (centres and per-axis standard deviation), used by
the data (this module), the mode metrics (:mod:`jgan.metrics.modes`) and the plots. The benchmarks are
those of VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018):

* ``ring8``: 8 isotropic Gaussians with means ``(cos 2 pi i / 8, sin 2 pi i / 8)``, std 0.01;
* ``grid25``: 25 isotropic Gaussians with means ``{-4, -2, 0, 2, 4}^2``, std 0.05.

Batch ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so the stream is a pure function of
(seed, batch index) and the iterator state is just that index.
"""

from __future__ import annotations

import itertools
from typing import NamedTuple

import numpy as np

RING8_SIGMA = 0.01
GRID25_SIGMA = 0.05


def ring8_centres(radius: float = 1.0) -> np.ndarray:
  """Means of the 2D-ring mixture: float64 ``[8, 2]``, ``radius * (cos(2 pi i/8), sin(2 pi i/8))``."""
  angles = 2.0 * np.pi * np.arange(8) / 8
  return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid25_centres() -> np.ndarray:
  """Means of the 2D-grid mixture: float64 ``[25, 2]``, ``{-4, -2, 0, 2, 4}^2`` in row-major order."""
  coords = np.arange(-4.0, 5.0, 2.0)
  return np.asarray(list(itertools.product(coords, coords)), dtype=np.float64)


class Mixture(NamedTuple):
  """An equal-weight isotropic Gaussian mixture: ``centres`` float64 ``[M, 2]``, per-axis std ``sigma`` > 0."""

  centres: np.ndarray
  sigma: float


MIXTURES: dict[str, Mixture] = {
  "ring8": Mixture(ring8_centres(), RING8_SIGMA),
  "grid25": Mixture(grid25_centres(), GRID25_SIGMA),
}


def get(name: str) -> Mixture:
  """Mixture ``name`` of :data:`MIXTURES`; ValueError listing the valid names otherwise."""
  if name not in MIXTURES:
    raise ValueError(f"unknown mixture {name!r}; valid choices: {', '.join(sorted(MIXTURES))}")
  return MIXTURES[name]


def sample(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
  """``n`` points float32 [n, 2]: a uniformly chosen centre plus N(0, sigma^2 I) noise."""
  centres, sigma = get(name)
  idx = rng.integers(0, len(centres), size=n)
  return (centres[idx] + sigma * rng.standard_normal((n, 2))).astype(np.float32)


class MixtureIterator:
  """Infinite iterator of ``{"x": float32 [batch_size, 2]}`` with ``get_state`` / ``set_state``."""

  def __init__(self, name: str, batch_size: int, seed: int, shard_index: int = 0, shard_count: int = 1):
    get(name)  # validates the name
    self.name, self.batch_size, self.seed = name, batch_size, seed
    self.shard_index, self.shard_count = shard_index, shard_count
    self.index = 0

  def __iter__(self):
    return self

  def __next__(self) -> dict[str, np.ndarray]:
    # Every process draws the same global batch and keeps its slice: identical data for any process count.
    rng = np.random.default_rng([self.seed, self.index])
    x = sample(self.name, self.batch_size * self.shard_count, rng)
    self.index += 1
    return {"x": x[self.shard_index * self.batch_size : (self.shard_index + 1) * self.batch_size]}

  def get_state(self) -> dict[str, int]:
    return {"index": self.index}

  def set_state(self, state: dict[str, int]) -> None:
    self.index = int(state["index"])
