"""Resuming: which checkpoint a run continues from, which config changes it allows, version warnings.

:func:`restore` picks the checkpoint: the latest that restores (a damaged one is reported with a
warning and the previous one tried; training moves damaged ones aside so it can write those steps
again), or exactly the step asked for. Before a state is read, the config stored with it is compared
with the current one: fields that change the result (:func:`config_diff`, everything outside
:data:`HARMLESS_FIELDS`) refuse the resume unless ``checkpoint.allow_config_change``. Several
processes agree on every outcome. :func:`version_warning` compares the stored library versions.

Research entry points (only the checkpoint is read; the model is rebuilt from the config stored with
it, so no dataset has to be present)::

    state, config = jgan.load_state("runs/mnist")    # a run directory or a checkpoint directory
    sample = jgan.load_generator("runs/mnist")
    x = sample(jax.random.key(0), 64)                 # float32 [64, 28, 28, 1] in [-1, 1]
"""

from __future__ import annotations

import json
import os
import threading
import warnings
from collections.abc import Callable

import jax
import ml_collections

from jgan import checkpoint as ckpt_lib
from jgan import config as config_lib
from jgan import data as data_lib
from jgan import run_info, schedules, storage
from jgan import state as state_lib

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
  # How batches are made, not which: the on-device path gives the host pipeline's batches bit for bit.
  "data.on_device",
  "data.device_limit_mb",
  "data.prefetch",
  "checkpoint",
  "evals",
)


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
  path = storage.abspath(path)
  for cand in (storage.join(path, ckpt_lib.CHECKPOINT_SUBDIR), path):
    if storage.isdir(cand) and any(n.isdigit() for n in storage.listdir(cand)):
      return cand
  raise ckpt_lib.CheckpointError(
    f"no checkpoint under {path!r}: expected a run directory (with a "
    f"{ckpt_lib.CHECKPOINT_SUBDIR}/ folder) or a checkpoint directory of numbered steps"
  )


FAILPOINT_ENV = "JGAN_FAILPOINT"


def failpoint(name: str) -> None:
  """A test hook: with ``JGAN_FAILPOINT=<name>:<file>`` in the environment, creates ``<file>`` (holding the
  PID) and blocks here until the process is killed; otherwise does nothing.

  Fault tests kill a run at this exact point (``restore``: a checkpoint chosen and its metadata read, its
  arrays not yet) instead of polling for a window that a loaded machine can let pass (tests/faults.py).
  """
  spec = os.environ.get(FAILPOINT_ENV, "")
  if not spec.startswith(name + ":"):
    return
  with open(spec[len(name) + 1 :], "w") as f:
    f.write(str(os.getpid()))
  threading.Event().wait()  # until killed


def restore(
  ckpt: ckpt_lib.Checkpointer,
  abstract: state_lib.GANState | Callable[[dict], state_lib.GANState],
  *,
  step: int | None = None,
  config=None,
  allow_config_change: bool = False,
  quarantine: bool = False,
) -> ckpt_lib.Restored | None:
  """Restores checkpoint ``step`` of ``ckpt`` (default: the latest one that restores), or None if there is none.

  Args:
    ckpt: the run's checkpointer.
    abstract: the target ``GANState`` of ShapeDtypeStructs (:func:`jgan.checkpoint.abstract_state`), or a
      function of the stored config (JSON dict) returning it.
    step: restore exactly this step (no fallback); None: the latest, falling back to earlier ones.
    config: the current config; if given, a stored config that differs in a field outside
      HARMLESS_FIELDS raises ValueError listing the fields, unless ``allow_config_change``.
    quarantine: move damaged checkpoints newer than the restored one to ``checkpoints_damaged/``
      (training does this so it can write those steps again).

  Raises:
    CheckpointError: there are checkpoints but none restores (each one's error is listed), or
      ``step`` is not a finished checkpoint.
  """
  steps = ckpt.steps()
  if step is not None:
    if step not in steps:
      raise ckpt_lib.CheckpointError(f"no checkpoint for step {step} in {ckpt.directory!r}; saved steps: {steps}")
    steps = [step]
  failures = []
  for i, s in enumerate(reversed(steps)):
    has_earlier = i + 1 < len(steps)
    meta: dict | None = None
    error: BaseException | None = None
    try:
      meta = ckpt.read_meta(s)
    except Exception as e:  # noqa: BLE001 (Orbax/TensorStore raise many types for damaged files)
      error = e
    error = ckpt_lib.agree(error)  # several processes: all skip a checkpoint any of them could not read
    if error is not None or meta is None:
      failures.append(ckpt.damaged(s, error, has_earlier))
      continue
    if config is not None:
      _check_config(ckpt.path(s), meta["config"], config, allow_config_change)
    target = abstract(meta["config"]) if callable(abstract) else abstract
    failpoint("restore")
    state = None
    try:
      state = ckpt.read_state(s, target, meta)
    except Exception as e:  # noqa: BLE001
      error = e
    error = ckpt_lib.agree(error)
    if error is not None or state is None:
      failures.append(ckpt.damaged(s, error, has_earlier))
      continue
    if quarantine and failures and jax.process_index() == 0:
      ckpt.quarantine([f[0] for f in failures])
    return ckpt_lib.Restored(s, state, meta["data"], meta["config"], meta["versions"], meta["log"] or {})
  if failures:
    raise ckpt_lib.CheckpointError(
      f"no checkpoint in {ckpt.directory!r} could be restored: " + "; ".join(f"step {s}: {msg}" for s, msg in failures)
    )
  return None


def _check_config(path: str, stored: dict, config, allow_config_change: bool) -> None:
  """Raises ValueError when ``config`` differs from the ``stored`` one in a field that changes the result
  (a warning instead with ``allow_config_change``)."""
  cur = ckpt_lib.config_to_json(config)
  # A schedule spanning the run (linear / cosine rates, or jgan.schedules' with optim.schedule_kimg 0) makes
  # train.steps change the result. Keys declared since the checkpoint was written count at their defaults.
  rate = cur.get("optim", {}).get("lr_schedule", "constant")
  scheduled = rate not in ("constant", "cosine_to_final") or schedules.spans_run(config)
  stored = config_lib.upgrade(stored).to_dict()
  diff = config_diff(stored, cur, harmless=tuple(h for h in HARMLESS_FIELDS if not (scheduled and h == "train.steps")))
  if diff and not allow_config_change:
    raise ValueError(
      f"{path} was saved with a different config; fields that change the result: "
      f"{'; '.join(diff)}. Use a new --workdir, or pass --config.checkpoint.allow_config_change=True "
      f"to resume anyway"
    )
  if diff:
    warnings.warn(f"resuming {path} with a changed config: {'; '.join(diff)}", ckpt_lib.CheckpointWarning, stacklevel=3)


def version_warning(restored: ckpt_lib.Restored) -> str | None:
  """A warning when the checkpoint was written with other library versions than this process has
  (the resumed run may then differ in the last bits), else None."""
  if restored.versions and restored.versions != run_info.library_versions():
    return (
      f"the checkpoint was written with other library versions ({restored.versions}); "
      f"the resumed run may not be bit-identical to an uninterrupted one"
    )
  return None


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

  ckpt = ckpt_lib.Checkpointer(locate(path), read_only=True)
  device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])

  def abstract(stored_config: dict) -> state_lib.GANState:
    config = config_lib.upgrade(stored_config)  # keys declared since it was stored, at their defaults
    parts = components_lib.build(config, data_lib.sample_shape(config.data), abstract=True)
    return ckpt_lib.abstract_state(parts, device)

  try:
    restored = restore(ckpt, abstract, step=step)
  finally:
    ckpt.close()
  if restored is None:
    raise ckpt_lib.CheckpointError(f"no checkpoint under {path!r}")
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
