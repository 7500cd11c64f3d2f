"""Figures people would rather look at than read: loss curves and 2-D sample scatter plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: jobs and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from jgan import storage  # noqa: E402


def _save(fig, path: str, **kwargs) -> None:
  """Writes ``fig`` as PNG to ``path`` (a local file or an object, :mod:`jgan.storage`) and closes it."""
  with storage.open(path, "wb") as f:
    fig.savefig(f, format="png", **kwargs)
  plt.close(fig)


def plot_losses(rows: list[dict], path: str, keys=("d_loss", "g_loss")) -> str:
  """Line plot of ``keys`` over ``step`` from metrics rows (dicts with "step"); writes PNG to ``path``."""
  fig, ax = plt.subplots(figsize=(7, 3.5), dpi=100)
  for k in keys:
    pts = [(r["step"], r[k]) for r in rows if k in r]
    if pts:
      s, v = zip(*pts)
      ax.plot(s, v, label=k, lw=1)
  ax.set_xlabel("step")
  ax.set_ylabel("loss")
  ax.legend()
  ax.grid(alpha=0.3)
  fig.tight_layout()
  _save(fig, path)
  return path


def scatter_2d(
  samples: np.ndarray, centres: np.ndarray | None, path: str, title: str = "", real: np.ndarray | None = None
) -> str:
  """Scatter of generated points float [N, 2] over the mixture ``centres`` [M, 2] (red crosses)."""
  fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=100)
  if real is not None:
    ax.scatter(real[:, 0], real[:, 1], s=2, c="0.75", label="real")
  ax.scatter(samples[:, 0], samples[:, 1], s=2, c="tab:blue", alpha=0.6, label="generated")
  if centres is not None:
    ax.scatter(centres[:, 0], centres[:, 1], marker="x", s=60, c="red", label="mode centres")
    lim = np.abs(centres).max() * 1.5 + 0.5
    ax.set_xlim(-lim, lim)
    ax.set_ylim(-lim, lim)
  ax.set_aspect("equal")
  ax.set_title(title)
  ax.legend(loc="upper right", fontsize=7)
  fig.tight_layout()
  _save(fig, path)
  return path


def scatter_grid(rows: list[tuple[str, list[tuple[str, np.ndarray, np.ndarray]]]], path: str) -> str:
  """A grid of small 2-D scatter plots written to PNG ``path``; returns ``path``.

  ``rows`` is ``[(row label, [(cell title, points float [N, 2], centres float [M, 2]), ...]), ...]``;
  short rows leave blank cells. Centres are drawn as red circles under the points, each cell spans the
  centres' extent plus a margin.
  """
  ncols = max(len(cells) for _, cells in rows)
  fig, axes = plt.subplots(len(rows), ncols, figsize=(1.25 * ncols + 0.4, 1.35 * len(rows)), dpi=80, squeeze=False)
  for r, (label, cells) in enumerate(rows):
    for col in range(ncols):
      ax = axes[r, col]
      ax.set_xticks([])
      ax.set_yticks([])
      if col >= len(cells):
        ax.axis("off")
        continue
      title, x, centres = cells[col]
      # Centres under the points: a generator that hits them exactly should look it.
      ax.scatter(centres[:, 0], centres[:, 1], marker="o", s=14, facecolors="none", edgecolors="red", linewidths=0.5)
      ax.scatter(x[:, 0], x[:, 1], s=1.0, c="tab:blue", alpha=0.5, linewidths=0, rasterized=True)
      lim = np.abs(centres).max() * 1.35 + 0.1
      ax.set_xlim(-lim, lim)
      ax.set_ylim(-lim, lim)
      ax.set_aspect("equal")
      ax.set_title(title, fontsize=6, pad=2)
      if col == 0:
        ax.set_ylabel(label, fontsize=6)
  fig.tight_layout(pad=0.3)
  _save(fig, path, metadata={"Software": None})
  return path
