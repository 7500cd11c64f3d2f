"""Figures people would rather look at than read: loss curves and 2-D sample scatter plots."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # headless: jobs and CI have no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


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
  fig.savefig(path)
  plt.close(fig)
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
  fig.savefig(path)
  plt.close(fig)
  return path
