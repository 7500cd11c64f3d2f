"""A run directory's outputs: metrics (JSONL + TensorBoard), sample grids, final files and checkpoints.

:class:`RunOutputs` is what a training loop writes for one run: a single run has one, an ensemble one per
member (each member directory is an ordinary run). Metrics stay on the device until the logging step
(:class:`MetricsLog`): then they are fetched in one host sync, checked finite (NaN/Inf are named with the
step they appeared at) and written as the means of the window. A checkpoint is only saved after every
metric up to its step and every float leaf of the state was checked finite, so a bad state is never
saved; it carries the open logging window, so a run resumed from it writes the rows of an
uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import time

import jax
import jax.numpy as jnp
import numpy as np

from jgan import checkpoint as ckpt_lib
from jgan import plots, rng, run_info, storage, writers
from jgan import state as state_lib

log = logging.getLogger(__name__)


def check_finite(rows: list[dict[str, np.ndarray]], first_step: int) -> None:
  """Raises FloatingPointError naming the earliest non-finite metric and the step range checked.

  ``rows`` are the host metrics of consecutive steps starting at ``first_step`` (each value a scalar, or
  ``[k]`` for ``k`` fused steps). Among metrics that go bad at the same step, the first by name is named.
  """
  first_bad = {}
  for name in rows[0]:
    vals = np.concatenate([np.ravel(r[name]) for r in rows])
    bad = np.flatnonzero(~np.isfinite(vals))
    if bad.size:
      first_bad[name] = (int(bad[0]), vals[bad[0]])
  if first_bad:
    name = min(first_bad, key=lambda n: first_bad[n][0])
    i, value = first_bad[name]
    last = first_step + sum(np.size(r[name]) for r in rows) - 1
    raise FloatingPointError(
      f"metric {name!r} became {value} at step {first_step + i} (checked steps "
      f"{first_step}..{last}); lower the learning rates or check the data"
    )


@jax.jit
def _finite_flags(state: state_lib.GANState) -> jax.Array:
  """bool [n_float_leaves]: whether each floating-point leaf of ``state`` is entirely finite."""
  leaves = [x for x in jax.tree.leaves(state) if jnp.issubdtype(x.dtype, jnp.floating)]
  return jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves])


def check_state_finite(state: state_lib.GANState, step: int) -> None:
  """Raises FloatingPointError naming the first NaN/Inf leaf of ``state`` (e.g. ``.g_params['w']``)."""
  flags = np.asarray(_finite_flags(state))
  if not flags.all():
    paths = [
      jax.tree_util.keystr(p)
      for p, x in jax.tree_util.tree_flatten_with_path(state)[0]
      if jnp.issubdtype(x.dtype, jnp.floating)
    ]
    raise FloatingPointError(
      f"state leaf {paths[int(np.argmin(flags))]} is NaN/Inf after step {step} "
      f"(its metrics were finite); lower the learning rates or check the data"
    )


class MetricsLog:
  """Per-step metrics kept on device until a flush: then checked finite and written as window means."""

  def __init__(self, writer: writers.RunWriter, step: int):
    self.writer = writer
    self.pending: list = []  # device metrics of steps first..step
    self.rows: list[dict[str, np.ndarray]] = []  # host copies already checked finite
    self.first = step + 1
    self.t0, self.last_step = time.perf_counter(), step

  def add(self, metrics: dict[str, jax.Array]) -> None:
    """Keeps one jitted call's metrics (scalars, or ``[k]`` for ``k`` fused steps) on the device."""
    self.pending.append(metrics)

  def extend(self, rows: list[dict[str, np.ndarray]]) -> None:
    """Host rows already checked finite (an ensemble member's share of its calls)."""
    self.rows += rows

  def check(self) -> None:
    """Fetches the pending metrics (a host sync) and raises FloatingPointError on NaN/Inf."""
    if self.pending:
      new = jax.device_get(self.pending)
      check_finite(new, self.first + len(self.rows) * self._per_row())
      self.rows += new
      self.pending = []

  def _per_row(self) -> int:
    rows = self.rows or self.pending
    return int(np.size(next(iter(rows[0].values())))) if rows else 1

  def flush(self, step: int) -> dict[str, float] | None:
    """Checks and writes the means since the last flush as the row of ``step``; returns them."""
    self.check()
    if not self.rows:
      return None
    means = {name: float(np.mean([np.mean(r[name]) for r in self.rows])) for name in self.rows[0]}
    now = time.perf_counter()
    means["steps_per_sec"] = (step - self.last_step) / max(now - self.t0, 1e-9)
    self.t0, self.last_step = now, step
    self.writer.scalars(step, means)
    self.rows, self.first = [], step + 1
    return means

  def window(self) -> dict:
    """The open window (checked rows not yet written) as JSON, saved with a checkpoint.

    ``{"first": step, "names": [...], "rows": [[{"dtype", "shape", "values"} per name] per call]}``.
    The values are float32 numbers written exactly (as float64), so :meth:`load` restores them bit
    for bit and the resumed run's next row is the mean an uninterrupted run writes.
    """
    if not self.rows:
      return {"first": self.first, "names": [], "rows": []}
    names = list(self.rows[0])

    def cell(v):
      return {"dtype": np.asarray(v).dtype.str, "shape": list(np.shape(v)), "values": np.ravel(v).tolist()}

    rows = [[cell(r[n]) for n in names] for r in self.rows]
    return {"first": self.first, "names": names, "rows": rows}

  def load(self, window: dict | None) -> None:
    """Reopens a window saved by :meth:`window` (a resumed run; no-op for None or an empty window)."""
    if not window or not window.get("rows"):
      return
    names = window["names"]
    self.rows = [
      {n: np.asarray(v["values"], np.dtype(v["dtype"])).reshape(v["shape"]) for n, v in zip(names, row)}
      for row in window["rows"]
    ]
    self.first = int(window["first"])


def drop_metrics_after(workdir: str, step: int) -> None:
  """Removes rows with ``step > step`` (and torn lines) from ``metrics.jsonl``: the resumed run rewrites
  them (``step = 0`` when no checkpoint was finished: a run killed before its first checkpoint)."""
  path = storage.join(workdir, "metrics.jsonl")
  if not storage.exists(path):
    return
  keep = []
  with storage.open(path) as f:
    for line in f:
      try:
        if json.loads(line)["step"] <= step:
          keep.append(line if line.endswith("\n") else line + "\n")
      except (ValueError, KeyError, TypeError):
        continue  # a line torn by a kill
  storage.replace_text(path, "".join(keep))  # e.g. a full disk: the original stays as it was


def save_samples(state, key: jax.Array, workdir: str, step: int, writer, config, write: bool = True) -> str | None:
  """Writes the sample grid (images) or scatter plot (2-D) of the fixed noise drawn from ``key`` for
  ``step``; returns its path.

  Every process must call it (the samples are computed on the mesh); only the one with ``write`` writes.
  """
  x = np.asarray(jax.device_get(state_lib.sample(state, key, config.train.num_samples)))
  if not write:
    return None
  storage.makedirs(storage.join(workdir, "samples"))
  path = storage.join(workdir, "samples", f"step_{step:07d}.png")
  if x.ndim == 4:
    # A conditional G draws class i % K for sample i: K columns show one class each.
    k = state.num_classes
    grid = writers.image_grid(x, ncols=k if 0 < k <= 20 and len(x) >= k else None)
    writer.image(step, "samples", grid)
    return writers.save_png(path, grid, scale=2 if x.shape[1] <= 32 else 1)
  from jgan.data import mixtures
  from jgan.metrics import modes

  centres, sigma = mixtures.get(config.data.name)
  real = mixtures.sample(config.data.name, len(x), np.random.default_rng(0))
  m = modes.mode_metrics(x, centres, sigma)
  title = (
    f"{config.data.name}, step {step}: {m['modes']}/{len(centres)} modes, {100 * m['high_quality']:.0f}% high quality"
  )
  return plots.scatter_2d(x, centres, path, title=title, real=real)


class RunOutputs:
  """Everything a training loop writes into one run directory, opened at the step it resumes from.

  On opening (by the writing process): rows after ``restored.step`` are dropped from ``metrics.jsonl``
  (all rows when nothing was restored), ``run_info.json`` is written, and TensorBoard is told to hide
  the events after that step. The logging window open at the checkpoint is reopened.

  Args:
    workdir: the run directory.
    config: the run's resolved config (its seed draws the sample grids' fixed noise).
    ckpt: the run's :class:`jgan.checkpoint.Checkpointer`.
    restored: what was restored (None: a fresh run).
    write: whether this process writes (process 0); the others compute what every process must.
  """

  def __init__(self, workdir: str, config, ckpt: ckpt_lib.Checkpointer, restored, *, write: bool = True):
    self.workdir, self.config, self.ckpt, self.write = workdir, config, ckpt, write
    start = 0 if restored is None else restored.step
    purge = None
    if write:
      drop_metrics_after(workdir, start)
      run_info.write_run_info(config, workdir, None if restored is None else restored.step)
      tb = storage.join(workdir, "tb")
      purge = start + 1 if storage.isdir(tb) and storage.listdir(tb) else None
    self.writer = writers.RunWriter(workdir, enabled=write, purge_step=purge)
    self.log = MetricsLog(self.writer, start)
    if restored is not None:
      self.log.load(restored.log_window)
    self.sample_key = rng.run_keys(config.seed).samples  # the same z for every grid of the run

  def save(self, step: int, state, data_state, metrics: dict[str, float] | None = None) -> None:
    """Saves checkpoint ``step``: never a state whose metrics or float leaves were not checked finite.

    ``data_state`` is the iterator's state after exactly ``step`` steps (the one that resumes at
    ``step + 1``); ``metrics`` (eval results) let ``checkpoint.best_metric`` rank it. TensorBoard is
    flushed first, so its events up to ``step`` are on disk whenever the checkpoint is.
    """
    self.log.check()
    check_state_finite(state, step)
    self.writer.flush()
    self.ckpt.save(step, state, data_state, metrics=metrics, log_window=self.log.window())

  def samples(self, state, step: int) -> str | None:
    """The sample grid of ``step`` (every process computes it; the writing one writes it)."""
    return save_samples(state, self.sample_key, self.workdir, step, self.writer, self.config, write=self.write)

  def finish(self, state, step: int) -> None:
    """The end of training: the final sample grid (also as ``samples_final.png``) and the loss plot."""
    final = self.samples(state, step)
    if final is None:  # not the writing process
      return
    storage.copyfile(final, storage.join(self.workdir, "samples_final.png"))
    path = storage.join(self.workdir, "metrics.jsonl")
    rows = writers.read_jsonl(path) if storage.exists(path) else []  # none: frozen in its first window
    if rows:
      plots.plot_losses(rows, storage.join(self.workdir, "losses.png"))
    self.writer.flush()

  def close(self) -> None:
    """Closes the TensorBoard writer (its last events reach the disk)."""
    self.writer.close()
