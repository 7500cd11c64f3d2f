"""Checkpoints: one Orbax ``CheckpointManager`` behind save / restore / resume / load.

A checkpoint ``<workdir>/checkpoints/<step>/`` holds four items (``ocp.args.Composite``):

* ``state``: the whole :class:`jgan.state.GANState` (both models, batch stats, optimiser states, EMA,
  objective state, step, root PRNG key), saved with ``StandardSave``. It is restored into an *abstract*
  target (``jax.eval_shape`` of ``create_state``), so optax states come back as their NamedTuples and
  the typed key as a typed key, bit for bit;
* ``data``: the data iterator's ``get_state()`` after exactly ``step`` steps (JSON);
* ``config``: the resolved config (JSON); ``versions``: Python and library versions (JSON).

Saving is asynchronous by default: Orbax copies the arrays to host memory before ``save`` returns (so
the next step may donate the buffers) and writes them in a background thread into a temporary
directory that is renamed only when complete, so an interrupted save never damages the previous
checkpoint. A checkpoint that fails to restore (truncated or missing files) is reported with a warning
and the previous one is used; nothing is deleted (a damaged one is moved to
``<workdir>/checkpoints_damaged/`` when training resumes, so the step can be written again).

Research entry points (only the checkpoint is read; the model is rebuilt from the config stored with
it, so no dataset has to be present)::

    state, config = jgan.checkpoint.load_state("runs/mnist")    # workdir or checkpoint directory
    sample = jgan.checkpoint.load_generator("runs/mnist")
    x = sample(jax.random.key(0), 64)                            # float32 [64, 28, 28, 1] in [-1, 1]
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import ml_collections
import orbax.checkpoint as ocp

from jgan import config as config_lib
from jgan import data as data_lib
from jgan import state as state_lib

CHECKPOINT_SUBDIR = "checkpoints"
DAMAGED_SUBDIR = "checkpoints_damaged"
ITEMS = ("state", "data", "config", "versions")
# Config fields that do not change what the run computes: they may differ when resuming. Everything
# else (model, objective, data, batch size, seed, optimisers, n_critic, devices, ...) must match unless
# checkpoint.allow_config_change is set. A prefix covers a whole section.
HARMLESS_FIELDS = (
  "train.steps",
  "train.log_every",
  "train.progress",
  "train.sample_every",
  "train.num_samples",
  "data.data_dir",
  "data.download",
  "checkpoint",
  "evals",
)


class CheckpointError(RuntimeError):
  """No checkpoint of a directory could be restored, or a path holds no checkpoint."""


class CheckpointWarning(UserWarning):
  """A damaged checkpoint was skipped (see :meth:`Checkpointer.restore`)."""


class Restored(NamedTuple):
  """What :meth:`Checkpointer.restore` returns: the step, its GANState and the JSON items."""

  step: int
  state: state_lib.GANState
  data_state: Any  # the iterator state (JSON)
  config: dict  # the resolved config stored with the checkpoint
  versions: dict


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
    )
    self._mngr = ocp.CheckpointManager(self.directory, options=options, item_names=ITEMS)

  def steps(self) -> list[int]:
    """The finished checkpoints' steps, ascending."""
    return sorted(self._mngr.all_steps())

  def latest_step(self) -> int | None:
    steps = self.steps()
    return steps[-1] if steps else None

  def path(self, step: int) -> str:
    return os.path.join(self.directory, str(step))

  def save(
    self, step: int, state: state_lib.GANState, data_state: Any, *, metrics: dict[str, float] | None = None
  ) -> bool:
    """Starts saving ``state`` after ``step`` steps with the iterator state ``data_state`` (JSON).

    ``metrics`` (e.g. eval results) rank checkpoints when ``checkpoint.best_metric`` names one of them.
    Returns False (and writes nothing) if ``step`` is already saved. Asynchronous unless
    ``checkpoint.async_save`` is False: call :meth:`wait` before relying on the files.
    """
    if step in self._mngr.all_steps():
      return False
    args = ocp.args.Composite(
      state=ocp.args.StandardSave(state),
      data=ocp.args.JsonSave(data_state),
      config=ocp.args.JsonSave(self._config or {}),
      versions=ocp.args.JsonSave(self._versions),
    )
    if not (metrics and self._best_metric in metrics):
      metrics = None  # only ranked checkpoints carry metrics; the others are kept by recency alone
    return self._mngr.save(step, args=args, metrics=metrics, force=True)

  def read_json(self, step: int) -> dict:
    """The ``config``, ``data`` and ``versions`` items of checkpoint ``step`` (small; no arrays read)."""
    r = self._mngr.restore(
      step,
      args=ocp.args.Composite(
        config=ocp.args.JsonRestore(), data=ocp.args.JsonRestore(), versions=ocp.args.JsonRestore()
      ),
    )
    return {"config": r.config, "data": r.data, "versions": r.versions}

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
      try:
        meta = self.read_json(s)
      except Exception as e:  # noqa: BLE001 (Orbax/TensorStore raise many types for damaged files)
        failures.append(self._damaged(s, e, has_earlier))
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
      try:
        r = self._mngr.restore(s, args=ocp.args.Composite(state=ocp.args.StandardRestore(target)))
      except Exception as e:  # noqa: BLE001
        failures.append(self._damaged(s, e, has_earlier))
        continue
      if quarantine and failures and jax.process_index() == 0:
        self._quarantine([f[0] for f in failures])
      return Restored(s, r.state, meta["data"], meta["config"], meta["versions"])
    if failures:
      raise CheckpointError(
        f"no checkpoint in {self.directory!r} could be restored: "
        + "; ".join(f"step {s}: {msg}" for s, msg in failures)
      )
    return None

  def _damaged(self, step: int, error: Exception, fallback: bool) -> tuple[int, str]:
    e: BaseException = error
    while e.__cause__ is not None:  # the root cause names the file (the outer TensorStore error is long)
      e = e.__cause__
    msg = f"{type(e).__name__}: {(str(e).splitlines() or [''])[0][:300]}"
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

  def wait(self) -> None:
    """Blocks until the pending asynchronous save (if any) is on disk."""
    self._mngr.wait_until_finished()

  def close(self) -> None:
    """Waits for pending saves and releases the manager's threads."""
    self._mngr.wait_until_finished()
    self._mngr.close()


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
