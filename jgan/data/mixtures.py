"""2-D Gaussian mixtures for mode-collapse studies, generated from a seed (no files).

``ring8``: 8 Gaussians on a circle; ``grid25``: a 5x5 grid. Centres and standard deviations are those of
the PacGAN / VEEGAN benchmarks and live in ``jgan.metrics.modes`` (one source of truth for data and
metrics). Batch ``i`` is drawn from ``numpy.random.default_rng([seed, i])``, so the stream is a pure
function of (seed, batch index) and the iterator state is just that index.
"""

from __future__ import annotations

import numpy as np

from jgan.metrics import modes


def mixture(name: str) -> tuple[np.ndarray, float]:
  """Centres float64 [M, 2] and the per-axis standard deviation of mixture ``name``."""
  if name == "ring8":
    return np.asarray(modes.ring8_centres()), modes.RING8_SIGMA
  if name == "grid25":
    return np.asarray(modes.grid25_centres()), modes.GRID25_SIGMA
  raise ValueError(f"unknown mixture {name!r}; valid choices: grid25, ring8")


def sample(name: str, n: int, rng: np.random.Generator) -> np.ndarray:
  """``n`` points float32 [n, 2]: a uniformly chosen centre plus N(0, sigma^2 I) noise."""
  centres, sigma = mixture(name)
  idx = rng.integers(0, len(centres), size=n)
  return (centres[idx] + sigma * rng.standard_normal((n, 2))).astype(np.float32)


class MixtureIterator:
  """Infinite iterator of ``{"x": float32 [batch_size, 2]}`` with ``get_state`` / ``set_state``."""

  def __init__(self, name: str, batch_size: int, seed: int, shard_index: int = 0, shard_count: int = 1):
    mixture(name)  # validates the name
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
    return {"x": x[self.shard_index * self.batch_size:(self.shard_index + 1) * self.batch_size]}

  def get_state(self) -> dict[str, int]:
    return {"index": self.index}

  def set_state(self, state: dict[str, int]) -> None:
    self.index = int(state["index"])
