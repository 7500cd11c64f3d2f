"""Checkpoints: one Orbax ``CheckpointManager`` behind save / restore / resume / load.

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
  four JSON items. :meth:`Checkpointer.restore` recomputes them from what it read back: a flipped bit or
  an array file replaced by another step's is caught even where the storage format would decode it
  silently (OCDBT's zstd chunks carry no checksum of their own).

Saving is asynchronous by default: Orbax copies the arrays to host memory before ``save`` returns (so
the next step may donate the buffers) and writes them in a background thread into a temporary
directory that is renamed only when complete, so an interrupted save never damages the previous
checkpoint. The temporary directory is created before ``save`` returns (not in the background, where a
read-only directory left Orbax's threads waiting 300 s), waits for a save are bounded
(:data:`WAIT_TIMEOUT_S`), and a save that fails (full disk, read-only or vanished directory) raises
:class:`CheckpointSaveError`, a one-line :class:`jgan.workdir.WorkdirError`, after deleting its
temporary directory. A checkpoint that fails to restore (truncated, missing or altered files) is
reported with a warning naming the file and the previous one is used; nothing is deleted (a damaged one
is moved to ``<workdir>/checkpoints_damaged/`` when training resumes, so the step can be written again).

Research entry points (only the checkpoint is read; the model is rebuilt from the config stored with
it, so no dataset has to be present)::

    state, config = jgan.checkpoint.load_state("runs/mnist")    # workdir or checkpoint directory
    sample = jgan.checkpoint.load_generator("runs/mnist")
    x = sample(jax.random.key(0), 64)                            # float32 [64, 28, 28, 1] in [-1, 1]
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import threading
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import ml_collections
import numpy as np
import orbax.checkpoint as ocp

from jgan import config as config_lib
from jgan import data as data_lib
from jgan import state as state_lib
from jgan import workdir as workdir_lib

CHECKPOINT_SUBDIR = "checkpoints"
DAMAGED_SUBDIR = "checkpoints_damaged"
ITEMS = ("state", "data", "config", "versions", "log", "checksums")
JSON_ITEMS = ("data", "config", "versions", "log")  # checksummed as canonical JSON
OPTIONAL_ITEMS = ("log", "checksums")  # absent from checkpoints written before they existed
# Orbax's temporary directory of an unfinished save: "<step>.orbax-checkpoint-tmp[-<suffix>]".
TMP_PATTERN = re.compile(r"\d+\.orbax-checkpoint-tmp.*")
# Bound on waiting for an asynchronous save (Orbax's own timeout for the background commit is 1200 s).
WAIT_TIMEOUT_S = 1260.0
# Config fields that do not change what the run computes: they may differ when resuming. Everything
# else (model, objective, data, batch size, seed, optimisers, n_critic, devices, ...) must match unless
# checkpoint.allow_config_change is set. A prefix covers a whole section.
HARMLESS_FIELDS = (
  "train.steps",
  "train.log_every",
  "train.progress",
  "train.sample_every",
  "train.num_samples",
  "train.num_seeds",  # a member of an ensemble is stored with 1: its own run
  "parallel.ensemble",  # how ensemble members share a device; a single run ignores it
  "data.data_dir",
  "data.download",
  "data.channels",  # resolved from data.name (compared); absent from configs saved before it existed
  "checkpoint",
  "evals",
)


class CheckpointError(RuntimeError):
  """No checkpoint of a directory could be restored, or a path holds no checkpoint."""


class CheckpointWarning(UserWarning):
  """A damaged checkpoint was skipped (see :meth:`Checkpointer.restore`)."""


class ChecksumError(CheckpointError):
  """An array or JSON item read back differs from the checksum stored with it."""


class CheckpointSaveError(workdir_lib.WorkdirError):
  """A save failed (full disk, read-only or vanished directory, timeout); its temporary files are gone."""


class Restored(NamedTuple):
  """What :meth:`Checkpointer.restore` returns: the step, its GANState and the JSON items."""

  step: int
  state: state_lib.GANState
  data_state: Any  # the iterator state (JSON)
  config: dict  # the resolved config stored with the checkpoint
  versions: dict
  log_window: dict = {}  # MetricsLog's open window (jgan.train.MetricsLog.window)


def checkpoint_dir(workdir: str) -> str:
  """The checkpoint directory of a run directory: ``<workdir>/checkpoints`` (absolute)."""
  return os.path.join(os.path.abspath(workdir), CHECKPOINT_SUBDIR)


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


def config_diff(stored: dict, current: dict, harmless=HARMLESS_FIELDS) -> list[str]:
  """Fields whose values differ between two JSON configs, as ``"a.b: old -> new"``, ignoring ``harmless``.

  A field in ``harmless`` matches itself and everything under it (``"checkpoint"`` covers the section).
  """
  a, b = config_lib.flatten(stored), config_lib.flatten(current)
  missing = object()
  out = []
  for key in sorted(set(a) | set(b)):
    if any(key == h or key.startswith(h + ".") for h in harmless):
      continue
    old, new = a.get(key, missing), b.get(key, missing)
    if old != new:
      fmt = lambda v: "(absent)" if v is missing else json.dumps(v)
      out.append(f"{key}: {fmt(old)} -> {fmt(new)}")
  return out


def locate(path: str) -> str:
  """The checkpoint directory for ``path``: a run directory, or a checkpoint directory itself.

  Raises CheckpointError if ``path`` holds no finished checkpoint.
  """
  path = os.path.abspath(path)
  for cand in (os.path.join(path, CHECKPOINT_SUBDIR), path):
    if os.path.isdir(cand) and any(n.isdigit() for n in os.listdir(cand)):
      return cand
  raise CheckpointError(
    f"no checkpoint under {path!r}: expected a run directory (with a "
    f"{CHECKPOINT_SUBDIR}/ folder) or a checkpoint directory of numbered steps"
  )


def _host(x) -> np.ndarray | None:
  """A state leaf as a host array (a typed PRNG key as its key data); None for a non-replicated array
  that this process cannot read whole."""
  if isinstance(x, jax.Array):
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
      x = jax.random.key_data(x)
    if not x.is_fully_addressable:
      if not x.is_fully_replicated:
        return None
      x = x.addressable_shards[0].data
  return np.asarray(x)


def _digest(a: np.ndarray) -> str:
  h = hashlib.sha256(f"{a.dtype.str}{tuple(a.shape)}".encode())
  h.update(np.ascontiguousarray(a).tobytes())
  return h.hexdigest()


def state_checksums(state) -> dict[str, str]:
  """``{leaf path (jax.tree_util.keystr): sha256 of its dtype, shape and bytes}`` of a state pytree."""
  flat = jax.tree_util.tree_flatten_with_path(state)[0]
  hosts = jax.device_get([_host(x) for _, x in flat])
  return {jax.tree_util.keystr(p): _digest(a) for (p, _), a in zip(flat, hosts) if a is not None}


def json_checksum(obj) -> str:
  """sha256 of ``obj`` as canonical JSON (sorted keys, no spaces): equal before saving and after reading."""
  return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _orbax_name(path) -> str:
  """Orbax's name of a leaf (``g.params.layers.0.kernel``): its path's keys joined by dots."""
  parts = []
  for k in path:
    for attr in ("name", "key", "idx"):
      if hasattr(k, attr):
        parts.append(str(getattr(k, attr)))
        break
  return ".".join(parts)


def _files_holding(item_dir: str, name: str) -> list[str]:
  """The files of an OCDBT item directory that hold leaf ``name``'s chunks (best effort; [] if unknown)."""
  try:
    import tensorstore as ts

    base = ts.KvStore.open(f"file://{item_dir}/").result()
    manifest = ts.ocdbt.dump(base).result()
    root = manifest["versions"][-1]["root"].get("location")
    files, stack, prefix = set(), ([root] if root else []), name.encode() + b"/"

    def file_of(location: str) -> str:
      kind, sub, rel, *_ = location.split(":")
      return os.path.join(item_dir, sub + rel)

    while stack:
      location = stack.pop()
      node = ts.ocdbt.dump(base, location).result()
      for e in node.get("entries", []):
        for v in e.values():
          if isinstance(v, str) and v.startswith("btreenode:"):
            stack.append(v)
        key = e.get("key", b"")
        if isinstance(key, bytes) and key.startswith(prefix) and not key.endswith((b"/.zarray", b"/.zattrs")):
          ref = e.get("indirect_value")  # a chunk in a data file, else inline in this node's file
          files.add(file_of(ref) if isinstance(ref, str) else file_of(location))
    return sorted(files)
  except Exception:  # noqa: BLE001 (another storage format, or tensorstore's dump changed)
    return []


class Checkpointer:
  """Saves and restores a run's checkpoints in ``directory`` (see the module docstring).

  ``ckpt_cfg`` is ``config.checkpoint`` (``max_to_keep``, ``best_metric``, ``best_mode``, ``keep_best``,
  ``async_save``); None for read-only use. ``config`` and ``versions`` are stored with every save.
  """

  def __init__(
    self, directory: str, ckpt_cfg=None, *, config=None, versions: dict | None = None, read_only: bool = False
  ):
    self.directory = os.path.abspath(directory)
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
    options = ocp.CheckpointManagerOptions(
      read_only=read_only,
      create=not read_only,
      cleanup_tmp_directories=not read_only,
      enable_async_checkpointing=bool(ckpt_cfg.async_save) if ckpt_cfg is not None else False,
      preservation_policy=policy,
      # The temporary directory is created inside save(): a read-only or vanished directory raises
      # there instead of leaving Orbax's background threads waiting for it (300 s at exit).
      async_options=ocp.AsyncOptions(create_directories_asynchronously=False),
    )
    try:
      self._mngr = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)
    except OSError as e:
      raise workdir_lib.WorkdirError(
        f"cannot open the checkpoint directory {self.directory}: {workdir_lib.describe(e)}", e.errno
      ) from e

  def steps(self) -> list[int]:
    """The finished checkpoints' steps, ascending."""
    return sorted(self._mngr.all_steps())

  def latest_step(self) -> int | None:
    steps = self.steps()
    return steps[-1] if steps else None

  def path(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

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
    ``log_window`` is the open logging window (JSON, :meth:`jgan.train.MetricsLog.window`). The
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
    sums = {"algorithm": "sha256", "state": state_checksums(state)}
    sums.update({name: json_checksum(value) for name, value in items.items()})
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
    last = [s for s in self._finished_on_disk() if step is None or s != step]
    good = (
      f"the last good checkpoint {self.path(last[-1])} (step {last[-1]}) is intact"
      if last
      else f"no finished checkpoint is left in {self.directory}"
    )
    cause = workdir_lib.root_cause(error)
    return CheckpointSaveError(f"{what} failed: {workdir_lib.describe(error)}; {good}", getattr(cause, "errno", None))

  def _finished_on_disk(self) -> list[int]:
    try:
      return sorted(int(n) for n in os.listdir(self.directory) if n.isdigit())
    except OSError:
      return []

  def abandon(self) -> None:
    """After another failure: waits (bounded) for the pending save, ignoring its error, then deletes
    the temporary directories of unfinished saves."""
    try:
      self.wait()
    except CheckpointSaveError:
      pass
    self.discard_unfinished()

  def discard_unfinished(self) -> list[str]:
    """Deletes the temporary directories of unfinished saves (process 0; never a finished checkpoint).

    Returns the deleted paths. Call only when no save is in flight (after a failure or a wait).
    """
    if jax.process_index() != 0:
      return []
    try:
      names = os.listdir(self.directory)
    except OSError:
      return []
    gone = []
    for n in names:
      if TMP_PATTERN.fullmatch(n):
        shutil.rmtree(os.path.join(self.directory, n), ignore_errors=True)
        gone.append(os.path.join(self.directory, n))
    return gone

  def read_json(self, step: int) -> dict:
    """The JSON items of checkpoint ``step`` (``config``, ``data``, ``versions``, and ``log`` and
    ``checksums`` where present; small, no arrays read)."""
    names = ["config", "data", "versions"]
    names += [n for n in OPTIONAL_ITEMS if os.path.isdir(os.path.join(self.path(step), n))]
    r = self._mngr.restore(step, args=ocp.args.Composite(**{n: ocp.args.JsonRestore() for n in names}))
    out = {n: r[n] for n in names}
    out.setdefault("log", None)
    out.setdefault("checksums", None)
    return out

  def _verify_json(self, step: int, meta: dict) -> None:
    """Raises ChecksumError if a JSON item differs from its stored checksum."""
    sums = meta.get("checksums")
    if sums is None:
      return  # written before checksums existed
    for name in JSON_ITEMS:
      if name in sums and meta.get(name) is not None and json_checksum(meta[name]) != sums[name]:
        raise ChecksumError(
          f"item {name!r} read back differs from its sha256 checksum; the file is "
          f"{os.path.join(self.path(step), name, 'metadata')}"
        )

  def _verify_state(self, step: int, state, meta: dict) -> None:
    """Raises ChecksumError naming the first array (and its file) that differs from its stored checksum."""
    sums = (meta.get("checksums") or {}).get("state")
    if sums is None:
      warnings.warn(
        f"checkpoint {self.path(step)} has no checksums (written before jgan stored them, or its "
        f"'checksums' item was deleted): restored without verifying its arrays",
        CheckpointWarning,
        stacklevel=4,
      )
      return
    got = state_checksums(state)
    flat = {jax.tree_util.keystr(p): p for p, _ in jax.tree_util.tree_flatten_with_path(state)[0]}
    missing = sorted(set(sums) - set(got))
    if missing:
      raise ChecksumError(
        f"the checksums list arrays the state does not have ({', '.join(missing[:3])}); the file is "
        f"{os.path.join(self.path(step), 'checksums', 'metadata')}"
      )
    for key, digest in got.items():
      if key in sums and sums[key] != digest:
        item_dir = os.path.join(self.path(step), "state")
        files = _files_holding(item_dir, _orbax_name(flat[key])) or [item_dir]
        raise ChecksumError(
          f"array {key} read back differs from its sha256 checksum (stored {sums[key][:12]}..., read "
          f"{digest[:12]}...); its bytes are in {', '.join(files)}"
        )

  def restore(
    self,
    abstract: state_lib.GANState | Callable[[dict], state_lib.GANState],
    *,
    step: int | None = None,
    config=None,
    allow_config_change: bool = False,
    quarantine: bool = False,
  ) -> Restored | None:
    """Restores checkpoint ``step`` (default: the latest one that restores), or None if there is none.

    Args:
      abstract: the target ``GANState`` of ShapeDtypeStructs (:func:`abstract_state`), or a function of
        the stored config (JSON dict) returning it.
      step: restore exactly this step (no fallback); None: the latest, falling back to earlier ones.
      config: the current config; if given, a stored config that differs in a field outside
        HARMLESS_FIELDS raises ValueError listing the fields, unless ``allow_config_change``.
      quarantine: move damaged checkpoints newer than the restored one to ``checkpoints_damaged/``
        (training does this so it can write those steps again).

    Raises:
      CheckpointError: there are checkpoints but none restores (each one's error is listed), or
        ``step`` is not a finished checkpoint.
    """
    steps = self.steps()
    if step is not None:
      if step not in steps:
        raise CheckpointError(f"no checkpoint for step {step} in {self.directory!r}; saved steps: {steps}")
      steps = [step]
    failures = []
    for i, s in enumerate(reversed(steps)):
      has_earlier = i + 1 < len(steps)
      meta: dict | None = None
      error: BaseException | None = None
      try:
        meta = self.read_json(s)
        self._verify_json(s, meta)
      except Exception as e:  # noqa: BLE001 (Orbax/TensorStore raise many types for damaged files)
        error = e
      error = _agree(error)  # several processes: all skip a checkpoint any of them could not read
      if error is not None or meta is None:
        failures.append(self._damaged(s, error, has_earlier))
        continue
      if config is not None:
        cur = config_to_json(config)
        # A learning-rate schedule spans train.steps, so there the run length changes the result.
        scheduled = cur.get("optim", {}).get("lr_schedule", "constant") != "constant"
        diff = config_diff(
          meta["config"], cur, harmless=tuple(h for h in HARMLESS_FIELDS if not (scheduled and h == "train.steps"))
        )
        if diff and not allow_config_change:
          raise ValueError(
            f"{self.path(s)} was saved with a different config; fields that change the result: "
            f"{'; '.join(diff)}. Use a new --workdir, or pass --config.checkpoint.allow_config_change=True "
            f"to resume anyway"
          )
        if diff:
          warnings.warn(
            f"resuming {self.path(s)} with a changed config: {'; '.join(diff)}", CheckpointWarning, stacklevel=2
          )
      target = abstract(meta["config"]) if callable(abstract) else abstract
      r = None
      try:
        r = self._mngr.restore(s, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
        self._verify_state(s, r.state, meta)
      except Exception as e:  # noqa: BLE001
        error = e
      error = _agree(error)
      if error is not None or r is None:
        failures.append(self._damaged(s, error, has_earlier))
        continue
      if quarantine and failures and jax.process_index() == 0:
        self._quarantine([f[0] for f in failures])
      return Restored(s, r.state, meta["data"], meta["config"], meta["versions"], meta["log"] or {})
    if failures:
      raise CheckpointError(
        f"no checkpoint in {self.directory!r} could be restored: "
        + "; ".join(f"step {s}: {msg}" for s, msg in failures)
      )
    return None

  def _damaged(self, step: int, error: BaseException | None, fallback: bool) -> tuple[int, str]:
    e: BaseException = error if error is not None else CheckpointError("unreadable")
    while e.__cause__ is not None:  # the root cause names the file (the outer TensorStore error is long)
      e = e.__cause__
    limit = 600 if isinstance(e, ChecksumError) else 300
    msg = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:limit]}"
    then = "falling back to the previous checkpoint" if fallback else "no earlier checkpoint to fall back to"
    warnings.warn(f"checkpoint {self.path(step)} is damaged ({msg}); {then}", CheckpointWarning, stacklevel=3)
    return step, msg

  def _quarantine(self, steps: list[int]) -> None:
    dest_root = os.path.join(os.path.dirname(self.directory), DAMAGED_SUBDIR)
    os.makedirs(dest_root, exist_ok=True)
    for s in steps:
      dest = os.path.join(dest_root, f"{s}-{time.strftime('%Y%m%d-%H%M%S')}")
      shutil.move(self.path(s), dest)
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
    error = _bounded(self._mngr.wait_until_finished, WAIT_TIMEOUT_S if timeout_s is None else timeout_s)
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
      _bounded(self._mngr.close, 60.0)


def _bounded(fn: Callable[[], Any], timeout_s: float) -> BaseException | None:
  """Runs ``fn()`` in a daemon thread for at most ``timeout_s`` seconds; returns its exception (a
  TimeoutError if it did not finish), or None."""
  box: list[BaseException] = []

  def run():
    try:
      fn()
    except BaseException as e:  # noqa: BLE001
      box.append(e)

  t = threading.Thread(target=run, name="jgan-checkpoint-wait", daemon=True)
  t.start()
  t.join(timeout_s)
  if t.is_alive():
    return TimeoutError(f"the asynchronous checkpoint save did not finish within {timeout_s:g} s")
  return box[0] if box else None


def _agree(error: BaseException | None) -> BaseException | None:
  """Several processes: an error if any process has one (all must call it), else None."""
  if jax.process_count() == 1:
    return error
  from jax.experimental import multihost_utils

  flags = np.asarray(multihost_utils.process_allgather(np.int32(error is not None)))
  if error is not None or not flags.any():
    return error
  return CheckpointError(f"process {int(np.flatnonzero(flags)[0])} could not restore it (see its warning)")


def load_state(path: str, *, step: int | None = None) -> tuple[state_lib.GANState, ml_collections.ConfigDict]:
  """The GANState and config of a checkpoint, on the first local device.

  The model is rebuilt abstractly (:func:`jgan.components.build` with ``abstract=True``) from the
  config stored with the checkpoint, so nothing is initialised and no dataset is read.

  Args:
    path: a run directory (with ``checkpoints/``) or a checkpoint directory of numbered steps.
    step: the step to load; None: the latest that restores (a damaged one is skipped with a warning).

  Raises:
    CheckpointError: no checkpoint at ``path`` or none restores; ``step`` not saved.
  """
  from jgan import components as components_lib

  ckpt = Checkpointer(locate(path), read_only=True)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

  def abstract(stored_config: dict) -> state_lib.GANState:
    config = ml_collections.ConfigDict(stored_config)
    parts = components_lib.build(config, data_lib.sample_shape(config.data), abstract=True)
    return abstract_state(parts, device)

  try:
    restored = ckpt.restore(abstract, step=step)
  finally:
    ckpt.close()
  if restored is None:
    raise CheckpointError(f"no checkpoint under {path!r}")
  return restored.state, ml_collections.ConfigDict(restored.config)


def load_generator(path: str, *, ema: bool = True, step: int | None = None) -> Callable[[jax.Array, int], jax.Array]:
  """A sampler ``sample(rng, n)`` for the generator of a checkpoint (see :func:`load_state` for the args).

  ``ema=True`` uses the EMA of G's parameters (what the run's sample grids show), False the live ones.
  ``sample(rng, n)`` is :func:`jgan.state.sample` of the loaded state: ``z ~ N(0, I)`` float32
  ``[n, latent_dim]`` drawn from ``rng`` (a typed key), float32 ``[n, H, W, C]`` images in ``[-1, 1]``
  (tanh output) or ``[n, 2]`` points for 2-D mixtures. Compiled once per distinct ``n``. A conditional
  generator also takes ``labels`` int ``[n]`` (default ``i % num_classes``).
  """
  state, _ = load_state(path, step=step)

  def sample(rng: jax.Array, n: int, labels=None) -> jax.Array:
    return state_lib.sample(state, rng, n, labels, ema=ema)

  return sample
