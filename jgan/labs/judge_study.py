"""A real-vs-fake study (HYPE, Zhou et al. 2019): its images, its file, each evaluator's order and exposures.

A study is a directory ``RUN/judge/STUDY/`` holding

* ``images/<id>.png``: every image at the data's native size (uint8 PNG, 1 or 3 channels); the id is
  8 random hex digits that say nothing of the image's origin;
* ``study.json``: the settings, the two access tokens and one record per image ``{"id", "kind",
  "truth", "source"}``, where ``kind`` is ``fake`` (the run's EMA generator), ``real`` (a held-out real
  image), ``check_fake`` (uniform noise: an attention check no attentive evaluator calls real) or
  ``check_real`` (a further held-out real image: an attention check); ``truth`` is ``fake`` or ``real``;
* ``answers.sqlite``: the answers (:mod:`jgan.labs.judge_store`).

Half of the ``n`` study images are fakes drawn with ``jax.random.key(seed)``, half real images of the
split, the first ``n / 2`` of a permutation drawn with ``seed`` (:func:`jgan.data.split_batches`); the
real attention checks are the next ones of that permutation, so no image appears twice. Every evaluator
sees all images (study images and checks) once, in an order of their own (:func:`evaluator_order`).

``mode="time"`` is HYPE-time: each study image is shown for an exposure time and then masked; the
exposure follows a 3-down/1-up staircase over :data:`EXPOSURES_MS` (:func:`exposure_ms`).
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import os
import secrets
import shutil
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

STUDY_FILE = "study.json"
IMAGE_DIR = "images"
KINDS = ("fake", "real", "check_fake", "check_real")
TRUTH = {"fake": "fake", "real": "real", "check_fake": "fake", "check_real": "real"}
MODES = ("infinite", "time")
DEFAULT_CHECKS = 4  # attention checks: half pure noise, half held-out real images
DISPLAY_PX = 336  # the page shows images scaled up by an integer factor to about this many pixels
# HYPE-time: exposures from 100 ms to 1,000 ms in 30 ms steps, a staircase starting at START_LEVEL that
# goes one level down after DOWN_AFTER consecutive correct answers and one level up after each error.
EXPOSURES_MS = tuple(range(100, 1001, 30))
START_LEVEL = EXPOSURES_MS.index(520)
DOWN_AFTER = 3
CHECK_EXPOSURE_MS = EXPOSURES_MS[-1]  # attention checks are shown for the longest exposure


class StudyError(ValueError):
  """A study that cannot be prepared or read (one line, naming the value)."""


def load(study_dir: str) -> dict[str, Any]:
  """The study record of ``study_dir`` (its ``study.json``, see the module docstring).

  Raises StudyError if ``study_dir`` is not a prepared study.
  """
  path = os.path.join(study_dir, STUDY_FILE)
  if not os.path.isfile(path):
    raise StudyError(f"{study_dir!r} is not a judge study (no {STUDY_FILE}); prepare one with jgan judge --workdir RUN")
  with open(path) as f:
    return json.load(f)


def image_path(study_dir: str, image_id: str) -> str:
  """Path of image ``image_id``'s PNG (``image_id`` must be one of the study's ids; nothing else is a path)."""
  return os.path.join(study_dir, IMAGE_DIR, f"{image_id}.png")


def read_image(study_dir: str, image_id: str) -> np.ndarray:
  """Image ``image_id`` of a study as uint8 ``[H, W, C]`` (C = 1 or 3), as the page shows it."""
  from PIL import Image

  a = np.asarray(Image.open(image_path(study_dir, image_id)))
  return a[..., None] if a.ndim == 2 else a


def display_scale(height: int, width: int) -> int:
  """The integer factor (>= 1) the page enlarges an ``height x width`` image by: about :data:`DISPLAY_PX` px."""
  return max(1, DISPLAY_PX // max(height, width))


def _ids(rng: np.random.Generator, n: int) -> list[str]:
  ids: list[str] = []
  while len(ids) < n:
    new = f"{int(rng.integers(0, 2**32)):08x}"
    if new not in ids:
      ids.append(new)
  return ids


def to_uint8(images: np.ndarray) -> np.ndarray:
  """float ``[N, H, W, C]`` in [-1, 1] -> uint8 ``[N, H, W, C]`` (the PNG values of :mod:`jgan.writers`)."""
  return np.clip(np.round((np.asarray(images, np.float32) + 1.0) * 127.5), 0, 255).astype(np.uint8)


def build_images(fakes: np.ndarray, reals: np.ndarray, num_checks: int, seed: int) -> tuple[list[dict], np.ndarray]:
  """The study's image records and pixels, shuffled with ``seed``.

  Args:
    fakes: float32 ``[n/2, H, W, C]`` in [-1, 1], the generator's samples.
    reals: float32 ``[n/2 + num_checks/2, H, W, C]`` in [-1, 1]: the study's reals, then the real checks.
    num_checks: attention checks, even; half uniform noise in [-1, 1], half the last reals.
    seed: draws the ids, the noise and the order of the records.

  Returns:
    ``(records, pixels)``: one ``{"id", "kind", "truth", "source"}`` per image (``source``: the index in
    ``fakes`` / ``reals``, or of the noise image) and uint8 ``[N, H, W, C]`` in the same order.
  """
  rng = np.random.default_rng([seed, 31])
  half = len(fakes)
  noise = rng.uniform(-1.0, 1.0, (num_checks // 2,) + fakes.shape[1:]).astype(np.float32)
  parts = [("fake", fakes), ("real", reals[:half]), ("check_fake", noise), ("check_real", reals[half:])]
  records, pixels = [], []
  for kind, arr in parts:
    for i, image in enumerate(arr):
      source = i + (half if kind == "check_real" else 0)
      records.append({"kind": kind, "truth": TRUTH[kind], "source": source})
      pixels.append(image)
  for record, image_id in zip(records, _ids(rng, len(records))):
    record["id"] = image_id
  order = rng.permutation(len(records))
  return [records[i] for i in order], to_uint8(np.stack(pixels))[order]


def write(study_dir: str, settings: dict, records: list[dict], pixels: np.ndarray, progress: bool = False) -> dict:
  """Writes a new study into ``study_dir`` (which must not exist) and returns its record.

  ``settings`` go into ``study.json`` as they are (mode, workdir, step, data, split, n, seed, ...);
  ``records`` and ``pixels`` are :func:`build_images`'s. Fresh random tokens are drawn for the study
  URL (``token``) and the results URL (``report_token``). The directory is written under a temporary
  name and renamed when complete, so a study directory is never half written.
  """
  from tqdm import tqdm

  from jgan import writers

  if os.path.exists(study_dir):
    raise StudyError(f"study directory {study_dir!r} already exists")
  h, w, c = pixels.shape[1:]
  study = dict(settings)
  study.update(
    version=1,
    created=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    image_shape=[int(h), int(w), int(c)],
    scale=display_scale(h, w),
    token=secrets.token_urlsafe(18),
    report_token=secrets.token_urlsafe(18),
    images=records,
  )
  tmp = f"{study_dir}.tmp-{os.getpid()}"
  os.makedirs(os.path.join(tmp, IMAGE_DIR))
  try:
    for record, image in tqdm(list(zip(records, pixels)), desc="writing images", disable=not progress):
      writers.save_png(image_path(tmp, record["id"]), image)
    with open(os.path.join(tmp, STUDY_FILE), "w") as f:
      json.dump(study, f, indent=1)
    os.rename(tmp, study_dir)
  except BaseException:  # no half-written study is left behind
    shutil.rmtree(tmp, ignore_errors=True)
    raise
  log.info("wrote study %s (%d images)", study_dir, len(records))
  return study


def evaluator_order(study: dict, evaluator: str) -> list[str]:
  """The image ids in the order evaluator ``evaluator`` sees them: a permutation of all the study's
  images (study images and checks) drawn from the study's seed and the evaluator id (SHA-256), so it is
  the same after every restart and different for every evaluator."""
  digest = int.from_bytes(hashlib.sha256(evaluator.encode()).digest()[:8], "little")
  perm = np.random.default_rng([int(study["seed"]), digest]).permutation(len(study["images"]))
  return [study["images"][i]["id"] for i in perm]


def exposure_ms(correct: list[bool]) -> int:
  """HYPE-time's next exposure (ms) after a history of study answers (True = correct), oldest first.

  A 3-down/1-up staircase over :data:`EXPOSURES_MS`: start at 520 ms; after :data:`DOWN_AFTER`
  consecutive correct answers go one level shorter (and restart the count), after an error one level
  longer; clipped to 100..1,000 ms. It converges where an evaluator is right 79 % of the time.
  """
  level, run = START_LEVEL, 0
  for ok in correct:
    if ok:
      run += 1
      if run == DOWN_AFTER:
        level, run = max(level - 1, 0), 0
    else:
      level, run = min(level + 1, len(EXPOSURES_MS) - 1), 0
  return EXPOSURES_MS[level]


def prepare(
  workdir: str,
  study_dir: str,
  *,
  data: str = "",
  split: str = "test",
  n: int = 100,
  seed: int = 0,
  num_checks: int = DEFAULT_CHECKS,
  mode: str = "infinite",
  progress: bool = False,
) -> dict:
  """Prepares a study from run ``workdir``'s EMA generator (latest checkpoint) and returns its record.

  Args:
    workdir: a jgan run directory with a checkpoint of an image generator.
    study_dir: the new study's directory (must not exist).
    data: the real images' dataset (default: the run's); its channels must match the generator's.
    split: the held-out split the real images come from (at the run's image size).
    n: study images, even: ``n / 2`` fakes and ``n / 2`` reals (plus ``num_checks`` attention checks).
    seed: seeds the fakes (``jax.random.key(seed)``), the choice of reals, ids, noise and orders.
    num_checks: attention checks, even (half noise, half real).
    mode: ``infinite`` (HYPE-infinity) or ``time`` (HYPE-time's staircase).

  Raises:
    StudyError: bad settings or data; CheckpointError: no checkpoint in ``workdir``.
  """
  import jax

  from jgan import data as data_lib
  from jgan import resume
  from jgan import state as state_lib

  if n < 2 or n % 2 or num_checks < 0 or num_checks % 2 or mode not in MODES:
    raise StudyError(f"need an even n >= 2, an even num_checks >= 0 and mode in {MODES}; got {n}, {num_checks}, {mode}")
  state, config = resume.load_state(workdir)

  name = data or config.data.name
  known = data_lib.folder_datasets.image_spec(name, config.data.get("data_dir", "")) is not None  # or prepared
  if config.data.name in data_lib.MIXTURES or not known:
    raise StudyError(f"a judge study needs image data; run {workdir!r} trained on {config.data.name!r}, data {name!r}")
  data_cfg = config.data.copy_and_resolve_references()
  data_cfg.name = name
  if "channels" in data_cfg:
    data_cfg.channels = 0  # the resolved channels are the run's dataset's; data_cfg's own come from its spec
  shape = data_lib.sample_shape(config.data)
  if data_lib.sample_shape(data_cfg) != shape:
    raise StudyError(f"data {name!r} has images of shape {data_lib.sample_shape(data_cfg)}, the generator {shape}")
  half = n // 2
  want = half + num_checks // 2
  reals = np.concatenate([b for b, _ in data_lib.split_batches(data_cfg, split, want, batch_size=500, seed=seed)])
  if len(reals) < want:
    raise StudyError(
      f"split {split!r} of {name!r} holds {len(reals)} images; n={n} and {num_checks} checks need {want}"
    )
  fakes = np.asarray(jax.device_get(state_lib.sample(state, jax.random.key(seed), half)), np.float32)
  records, pixels = build_images(fakes, reals, num_checks, seed)
  settings = dict(mode=mode, workdir=os.path.abspath(workdir), step=int(state.step), data=name, split=split)
  settings.update(n=n, seed=seed, num_checks=num_checks)
  return write(study_dir, settings, records, pixels, progress=progress)
