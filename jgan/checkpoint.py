"""Checkpoint storage: one Orbax ``CheckpointManager`` behind save, verified reads, quarantine.

A checkpoint ``<workdir>/checkpoints/<step>/`` holds six items (``ocp.args.Composite``):

* ``state``: the whole :class:`jgan.state.GANState` (both models, batch stats, optimiser states, EMA,
  objective state, step, root PRNG key), saved with ``StandardSave``. It is restored into an *abstract*
  target (``jax.eval_shape`` of ``create_state``), so optax states come back as their NamedTuples and
  the typed key as a typed key, bit for bit;
* ``data``: the data iterator's ``get_state()`` after exactly ``step`` steps (JSON);
* ``config``: the resolved config (JSON); ``versions``: Python and library versions (JSON);
* ``log``: the metrics of the logging window still open at ``step`` (JSON), so a run stopped between
  two logging steps and resumed writes the same ``metrics.jsonl`` rows as an uninterrupted one;
* ``checksums``: the SHA-256 of every state array (its dtype, shape and bytes, as saved) and of the
  four JSON items (:mod:`jgan.checksums`). :meth:`Checkpointer.read_meta` and
  :meth:`Checkpointer.read_state` recompute them from what they read back: a flipped bit or an array
  file replaced by another step's is caught even where the storage format would decode it silently
  (OCDBT's zstd chunks carry no checksum of their own).

Saving is asynchronous by default: Orbax copies the arrays to host memory before ``save`` returns (so
the next step may donate the buffers) and writes them in a background thread into a temporary
directory that is renamed only when complete, so an interrupted save never damages the previous
checkpoint (in a bucket, ``gs://``, Orbax writes ``<step>/`` in place and marks it finished with
:data:`COMMIT_FILE`; an unfinished one lacks it). The temporary directory is created before ``save``
returns (not in the background, where a read-only directory left Orbax's threads waiting 300 s), waits
for a save are bounded
(:data:`WAIT_TIMEOUT_S`), and a save that fails (full disk, read-only or vanished directory) raises
:class:`CheckpointSaveError`, a one-line :class:`jgan.fs_errors.WorkdirError`, after deleting its
temporary directory. Unfinished saves of a killed run are deleted when the checkpointer opens. A
checkpoint that fails to read back (truncated, missing or altered files) is reported with a warning
naming the file (:meth:`Checkpointer.damaged`); nothing is deleted (a damaged one is moved to
``<workdir>/checkpoints_damaged/`` when training resumes, :meth:`Checkpointer.quarantine`). Which
checkpoint a run resumes from, and with which config changes, is :mod:`jgan.resume`'s; the Orbax
work-arounds are in :mod:`jgan.checkpoint_orbax`.
"""

from __future__ import annotations

import json
import re
import time
import warnings
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from jgan import checkpoint_orbax, checksums, storage
from jgan import filesystem_errors as fs_errors
from jgan import state as state_lib

CHECKPOINT_SUBDIR = "checkpoints"
DAMAGED_SUBDIR = "checkpoints_damaged"
ITEMS = ("state", "data", "config", "versions", "log", "checksums")
JSON_ITEMS = ("data", "config", "versions", "log")  # checksummed as canonical JSON
OPTIONAL_ITEMS = ("log", "checksums")  # absent from checkpoints written before they existed
# Orbax's temporary directory of an unfinished save: "<step>.orbax-checkpoint-tmp[-<suffix>]". In a bucket
# (gs://) Orbax writes "<step>/" itself and marks it finished with COMMIT_FILE instead (no renames there).
TMP_PATTERN = re.compile(r"\d+\.orbax-checkpoint-tmp.*")
COMMIT_FILE = "commit_success.txt"
# Bound on waiting for an asynchronous save (Orbax's own timeout for the background commit is 1200 s).
WAIT_TIMEOUT_S = 1260.0


class CheckpointError(RuntimeError):
  """No checkpoint of a directory could be restored, or a path holds no checkpoint."""


class CheckpointWarning(UserWarning):
  """A damaged checkpoint was skipped (see :meth:`Checkpointer.restore`)."""


class CheckpointSaveError(fs_errors.WorkdirError):
  """A save failed (full disk, read-only or vanished directory, timeout); its temporary files are gone."""


class Restored(NamedTuple):
  """What :meth:`Checkpointer.restore` returns: the step, its GANState and the JSON items."""

  step: int
  state: state_lib.GANState
  data_state: Any  # the iterator state (JSON)
  config: dict  # the resolved config stored with the checkpoint
  versions: dict
  log_window: dict = {}  # MetricsLog's open window (jgan.outputs.MetricsLog.window)


def checkpoint_dir(workdir: str) -> str:
  """The checkpoint directory of a run directory: ``<workdir>/checkpoints`` (absolute)."""
  return storage.join(storage.abspath(workdir), CHECKPOINT_SUBDIR)


def config_to_json(config) -> dict:
  """A ConfigDict (or dict) as plain JSON types (tuples become lists), as it is stored."""
  text = config.to_json_best_effort() if hasattr(config, "to_json_best_effort") else json.dumps(config)
  return json.loads(text)


def abstract_state(components, sharding=None) -> state_lib.GANState:
  """The GANState of ``components`` (:func:`jgan.components.build`) as ``jax.ShapeDtypeStruct`` leaves.

  Nothing is computed or allocated. ``sharding`` (e.g. the replicated ``NamedSharding`` of the mesh) is
  where restored arrays are placed.
  """

  def create(g, d, key):
    return state_lib.create_state(components._replace(g=g, d=d), key)

  # Only the variables and the key are traced: the rest of Components is functions and numbers.
  shapes = jax.eval_shape(create, components.g, components.d, jax.random.key(0))
  if sharding is None:
    return shapes
  return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=sharding), shapes)


class Checkpointer:
  """Saves and restores a run's checkpoints in ``directory`` (see the module docstring).

  ``ckpt_cfg`` is ``config.checkpoint`` (``max_to_keep``, ``best_metric``, ``best_mode``, ``keep_best``,
  ``async_save``); None for read-only use. ``config`` and ``versions`` are stored with every save.
  """

  def __init__(
    self, directory: str, ckpt_cfg=None, *, config=None, versions: dict | None = None, read_only: bool = False
  ):
    self.directory = storage.abspath(directory)
    self._config = None if config is None else config_to_json(config)
    self._versions = versions or {}
    self._best_metric = ""
    self._pending: int | None = None  # the step of the asynchronous save in flight
    self._failed = False  # a save failed (reported once)
    policy = None
    if ckpt_cfg is not None:
      keep = [ocp.checkpoint_managers.LatestN(ckpt_cfg.max_to_keep)]
      self._best_metric = ckpt_cfg.best_metric
      if ckpt_cfg.best_metric and ckpt_cfg.keep_best > 0:
        name = ckpt_cfg.best_metric
        keep.append(
          ocp.checkpoint_managers.BestN(
            get_metric_fn=lambda m: m[name],
            reverse=ckpt_cfg.best_mode == "min",
            n=ckpt_cfg.keep_best,
            keep_checkpoints_without_metrics=False,
          )
        )
      policy = ocp.checkpoint_managers.AnyPreservationPolicy(keep)
    if not read_only:
      # Unfinished saves of a killed run are deleted here, synchronously, before anything can save. Orbax's
      # own clean-up on opening (cleanup_tmp_directories) runs in a background thread: a killed first save
      # leaves <step>.orbax-checkpoint-tmp, and Orbax's rmtree of it raced jgan's (or the resumed run's new
      # save of the same step), failing that save with ENOENT. So Orbax's is off and nothing else deletes.
      self.discard_unfinished()
    async_save = bool(ckpt_cfg.async_save) if ckpt_cfg is not None else False
    options = checkpoint_orbax.manager_options(read_only=read_only, async_save=async_save, preservation_policy=policy)
    try:
      self._mngr = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)
    except OSError as e:
      raise fs_errors.WorkdirError(
        f"cannot open the checkpoint directory {self.directory}: {fs_errors.describe(e)}", e.errno
      ) from e

  def steps(self) -> list[int]:
    """The finished checkpoints' steps, ascending."""
    return sorted(self._mngr.all_steps())

  def latest_step(self) -> int | None:
    steps = self.steps()
    return steps[-1] if steps else None

  def path(self, step: int) -> str:
    return storage.join(self.directory, str(step))

  def save(
    self,
    step: int,
    state: state_lib.GANState,
    data_state: Any,
    *,
    metrics: dict[str, float] | None = None,
    log_window: dict | None = None,
  ) -> bool:
    """Starts saving ``state`` after ``step`` steps with the iterator state ``data_state`` (JSON).

    ``metrics`` (e.g. eval results) rank checkpoints when ``checkpoint.best_metric`` names one of them.
    ``log_window`` is the open logging window (JSON, :meth:`jgan.outputs.MetricsLog.window`). The
    checksums of the state's arrays and of the JSON items are computed here and saved with them.
    Returns False (and writes nothing) if ``step`` is already saved. Asynchronous unless
    ``checkpoint.async_save`` is False: call :meth:`wait` before relying on the files.

    Raises:
      CheckpointSaveError: the save (or the previous asynchronous one) failed; no temporary files remain.
    """
    self.wait()  # a failure of the previous asynchronous save surfaces here, as one line
    if step in self._mngr.all_steps():
      return False
    items = {
      "data": data_state,
      "config": self._config or {},
      "versions": self._versions,
      "log": log_window or {},
    }
    sums = {"algorithm": "sha256", "state": checksums.state_checksums(state)}
    sums.update({name: checksums.json_checksum(value) for name, value in items.items()})
    args = ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      checksums=ocp.args.JsonSave(sums),
      **{name: ocp.args.JsonSave(value) for name, value in items.items()},
    )
    if not (metrics and self._best_metric in metrics):
      metrics = None  # only ranked checkpoints carry metrics; the others are kept by recency alone
    try:
      started = self._mngr.save(step, args=args, metrics=metrics, force=True)
    except Exception as e:  # noqa: BLE001 (Orbax / TensorStore raise many types)
      raise self._failure(step, e) from e
    self._pending, self._failed = step, False  # a new save in flight: wait for it again
    return started

  def _failure(self, step: int | None, error: BaseException) -> CheckpointSaveError:
    """Deletes unfinished saves' temporary directories; returns the CheckpointSaveError for ``error``.

    Later waits report nothing more (Orbax would raise the same failure again).
    """
    step = self._pending if step is None else step
    self._pending, self._failed = None, True
    self.discard_unfinished()
    what = f"saving checkpoint {self.path(step)}" if step is not None else f"a checkpoint save in {self.directory}"
    last = [s for s in self.finished_steps_on_disk() if step is None or s != step]
    good = (
      f"the last good checkpoint {self.path(last[-1])} (step {last[-1]}) is intact"
      if last
      else f"no finished checkpoint is left in {self.directory}"
    )
    cause = fs_errors.root_cause(error)
    return CheckpointSaveError(f"{what} failed: {fs_errors.describe(error)}; {good}", getattr(cause, "errno", None))

  def finished_steps_on_disk(self) -> list[int]:
    """The steps of the finished checkpoint directories on disk now (no Orbax bookkeeping; [] if unreadable)."""
    try:
      return sorted(int(n) for n in storage.listdir(self.directory) if n.isdigit() and self._committed(n))
    except OSError:
      return []

  def _committed(self, name: str) -> bool:
    """Whether step directory ``name`` is a finished save (in a bucket: it holds Orbax's COMMIT_FILE)."""
    return not storage.is_url(self.directory) or storage.exists(storage.join(self.directory, name, COMMIT_FILE))

  def abandon(self) -> None:
    """After another failure: waits (bounded) for the pending save, ignoring its error, then deletes
    the temporary directories of unfinished saves."""
    try:
      self.wait()
    except CheckpointSaveError:
      pass
    self.discard_unfinished()

  def discard_unfinished(self) -> list[str]:
    """Deletes the temporary directories of unfinished saves (process 0; never a finished checkpoint); in
    a bucket, the step directories without Orbax's COMMIT_FILE.

    Returns the deleted paths. Called when the checkpointer opens (before any save of this run: a killed
    run's ``<step>.orbax-checkpoint-tmp``) and after a failed save; only when no save is in flight, so it
    never touches a directory that a live save owns. Synchronous: when it returns, they are gone.
    """
    if jax.process_index() != 0:
      return []
    try:
      names = storage.listdir(self.directory)
    except OSError:
      return []
    gone = []
    for n in names:
      if TMP_PATTERN.fullmatch(n) or (n.isdigit() and not self._committed(n)):
        storage.rmtree(storage.join(self.directory, n))
        gone.append(storage.join(self.directory, n))
    return gone

  def read_json(self, step: int) -> dict:
    """The JSON items of checkpoint ``step`` (``config``, ``data``, ``versions``, and ``log`` and
    ``checksums`` where present; small, no arrays read)."""
    names = ["config", "data", "versions"]
    names += [n for n in OPTIONAL_ITEMS if storage.isdir(storage.join(self.path(step), n))]
    r = self._mngr.restore(step, args=ocp.args.Composite(**{n: ocp.args.JsonRestore() for n in names}))
    out = {n: r[n] for n in names}
    out.setdefault("log", None)
    out.setdefault("checksums", None)
    return out

  def read_meta(self, step: int) -> dict:
    """:meth:`read_json`, verified against the stored checksums (ChecksumError if an item differs)."""
    meta = self.read_json(step)
    checksums.verify_json(self.path(step), meta, JSON_ITEMS)
    return meta

  def read_state(self, step: int, target: state_lib.GANState, meta: dict) -> state_lib.GANState:
    """The state of checkpoint ``step`` restored into ``target`` (ShapeDtypeStructs, :func:`abstract_state`),
    every array verified against ``meta``'s checksums (:meth:`read_meta`).

    Raises:
      ChecksumError: an array read back differs from its checksum (naming the array and its file);
        whatever Orbax/TensorStore raise for missing, truncated or undecodable files.
    """
    r = self._mngr.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
    sums = (meta.get("checksums") or {}).get("state")
    if sums is None:
      warnings.warn(
        f"checkpoint {self.path(step)} has no checksums (written before jgan stored them, or its "
        f"'checksums' item was deleted): restored without verifying its arrays",
        CheckpointWarning,
        stacklevel=3,
      )
    else:
      checksums.verify_state(self.path(step), r.state, sums)
    return r.state

  def damaged(self, step: int, error: BaseException | None, fallback: bool) -> tuple[int, str]:
    """Warns (CheckpointWarning) that checkpoint ``step`` is damaged, naming the root cause; returns
    ``(step, one-line reason)``. ``fallback``: an earlier checkpoint will be tried."""
    e: BaseException = error if error is not None else CheckpointError("unreadable")
    while e.__cause__ is not None:  # the root cause names the file (the outer TensorStore error is long)
      e = e.__cause__
    limit = 600 if isinstance(e, checksums.ChecksumError) else 300
    msg = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:limit]}"
    then = "falling back to the previous checkpoint" if fallback else "no earlier checkpoint to fall back to"
    warnings.warn(f"checkpoint {self.path(step)} is damaged ({msg}); {then}", CheckpointWarning, stacklevel=3)
    return step, msg

  def quarantine(self, steps: list[int]) -> None:
    """Moves damaged checkpoints ``steps`` to ``<workdir>/checkpoints_damaged/<step>-<time>`` (kept, not
    deleted), so training can write those steps again."""
    dest_root = storage.join(storage.dirname(self.directory), DAMAGED_SUBDIR)
    storage.makedirs(dest_root)
    for s in steps:
      dest = storage.join(dest_root, f"{s}-{time.strftime('%Y%m%d-%H%M%S')}")
      storage.move(self.path(s), dest)
      warnings.warn(
        f"moved damaged checkpoint {self.path(s)} to {dest} (kept, not deleted)", CheckpointWarning, stacklevel=3
      )
    self._mngr.reload()

  def wait(self, timeout_s: float | None = None) -> None:
    """Blocks until the pending asynchronous save (if any) is on disk, at most ``timeout_s`` seconds
    (default :data:`WAIT_TIMEOUT_S`).

    Raises:
      CheckpointSaveError: the save failed or did not finish in time (its temporary files are deleted).
    """
    if self._failed:
      return
    error = checkpoint_orbax.bounded(self._mngr.wait_until_finished, WAIT_TIMEOUT_S if timeout_s is None else timeout_s)
    if error is not None:
      raise self._failure(None, error) from error
    self._pending = None

  def close(self, *, quiet: bool = False) -> None:
    """Waits for pending saves (bounded) and releases the manager's threads.

    ``quiet``: swallow errors (used while another error is being reported).
    """
    try:
      self.wait()
    except CheckpointSaveError:
      if not quiet:
        raise
    finally:
      checkpoint_orbax.bounded(self._mngr.close, 60.0)


def agree(error: BaseException | None) -> BaseException | None:
  """Several processes: an error if any process has one (all must call it), else None."""
  if jax.process_count() == 1:
    return error
  from jax.experimental import multihost_utils

  flags = np.asarray(multihost_utils.process_allgather(np.int32(error is not None)))
  if error is not None or not flags.any():
    return error
  return CheckpointError(f"process {int(np.flatnonzero(flags)[0])} could not restore it (see its warning)")
