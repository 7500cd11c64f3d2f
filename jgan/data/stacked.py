"""Stacked MNIST (Metz et al. 2016; Srivastava et al. 2017; Lin et al. 2018): three digits as RGB channels.

Each example stacks three digits of a base digit set into the channels of one ``28 x 28 x 3`` image; its
mode is ``100 d0 + 10 d1 + d2`` (the three digit classes, 1,000 modes), which is also its ``label``. The
mode-collapse protocol (PacGAN Table 3, VEEGAN) counts how many of the 1,000 modes a generator hits in
26,000 samples and the KL divergence of the mode histogram to the uniform one, classifying each channel
with a digit classifier (``stacked_modes26k``, :func:`jgan.metrics.classifier.stacked_labels`).

jgan builds it from the embedded mnist5k digits (no download): ``stacked_mnist5k`` example ``i`` of a
split stacks the base split's digits ``triples[i]``, drawn uniformly with replacement with a fixed seed
(the same for every run, so every run sees the same data set). Sizes: :data:`SIZES`. The published
Stacked MNIST draws from MNIST's 60,000 digits; here there are 4,500 train digits (450 per class), which
still give all 1,000 modes (each mode has ~128 examples in the 128,000 train triples).
"""

from __future__ import annotations

import numpy as np

SIZES = {"train": 128_000, "test": 10_000}  # stacked examples per split
STACK = 3  # digits per example (channels)
TRIPLES_SEED = 20_17  # fixed: the data set is the same for every run


def triples(n_base: int, split: str) -> np.ndarray:
  """The base-digit indices of each stacked example of ``split``: int64 ``[SIZES[split], 3]`` in ``[0, n_base)``."""
  if split not in SIZES:
    raise ValueError(f"stacked MNIST has no split {split!r}; its splits: {', '.join(SIZES)}")
  rng = np.random.default_rng([TRIPLES_SEED, list(SIZES).index(split)])
  return rng.integers(0, n_base, size=(SIZES[split], STACK))


class StackedSource:
  """Random-access source of stacked examples over a base source of single digits.

  ``base[j]`` must return ``{"image": uint8 [28, 28, 1], "label": int}``; ``self[i]`` returns
  ``{"image": uint8 [28, 28, 3], "label": int32 100 d0 + 10 d1 + d2}`` for the base digits ``triples[i]``.
  """

  def __init__(self, base, split: str):
    self.base = base
    self.triples = triples(len(base), split)

  def __len__(self) -> int:
    return len(self.triples)

  def __getitem__(self, i) -> dict[str, np.ndarray | np.int32]:
    exs = [self.base[int(j)] for j in self.triples[int(i)]]
    image = np.concatenate([np.asarray(ex["image"]).reshape(28, 28, 1) for ex in exs], axis=-1)
    d0, d1, d2 = (int(ex["label"]) for ex in exs)
    return {"image": image, "label": np.int32(100 * d0 + 10 * d1 + d2)}
