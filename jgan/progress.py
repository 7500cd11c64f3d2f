"""Training progress on stderr: a tqdm bar on a terminal; without one (a SLURM log, a pipe) plain lines at
the first logging step, then at most every :data:`PLAIN_PROGRESS_EVERY_S` seconds, and at the end
(``train.progress``)."""

from __future__ import annotations

import sys
import time

import numpy as np

PLAIN_PROGRESS_EVERY_S = 30.0  # at most one plain progress line this often (not on a terminal)


class Progress:
  """Training progress on stderr: a tqdm bar on a terminal, plain lines otherwise (module docstring)."""

  def __init__(self, total: int, initial: int, desc: str, enabled: bool):
    self.total, self.desc, self.initial = total, desc, initial
    self.bar = None
    self.plain = enabled and not sys.stderr.isatty()
    self.t0 = time.perf_counter()
    self.last_line: float | None = None
    self.last_step = initial
    self.means: dict[str, float] | None = None
    if enabled and not self.plain:
      from tqdm import tqdm

      self.bar = tqdm(total=total, initial=initial, unit="step", dynamic_ncols=True, desc=desc)

  def step(self, k: int) -> None:
    if self.bar is not None:
      self.bar.update(k)

  def logged(self, step: int, means: dict[str, float] | None) -> None:
    """Called at each logging step with the window's means."""
    if not means:
      return
    self.means = means
    if self.bar is not None:
      self.bar.set_postfix(d_loss=f"{means['d_loss']:.3f}", g_loss=f"{means['g_loss']:.3f}")
    elif self.plain:
      now = time.perf_counter()
      if self.last_line is None or now - self.last_line >= PLAIN_PROGRESS_EVERY_S:
        self._line(step, now)

  def _line(self, step: int, now: float) -> None:
    self.last_line, self.last_step = now, step
    rate = (step - self.initial) / max(now - self.t0, 1e-9)
    eta = (self.total - step) / rate if rate > 0 else float("nan")
    losses = "".join(f", {k} {self.means[k]:.4f}" for k in ("d_loss", "g_loss") if self.means and k in self.means)
    eta_text = time.strftime("%H:%M:%S", time.gmtime(eta)) if np.isfinite(eta) and eta < 86400 * 365 else "?"
    print(
      f"{self.desc}: step {step}/{self.total} ({100 * step / max(self.total, 1):.0f}%){losses}, "
      f"{rate:.2f} steps/s, eta {eta_text}",
      file=sys.stderr,
      flush=True,
    )

  def close(self, step: int) -> None:
    if self.bar is not None:
      self.bar.close()
      self.bar = None
    elif self.plain and step != self.last_step:
      self._line(step, time.perf_counter())
