"""Where the FID Inception's weights come from: pytorch-fid's published file, downloaded once and checked.

Order of lookup (:func:`weights_path`): an explicit path (``evals.inception_weights``, CLI
``--inception_weights``), else ``$JGAN_INCEPTION_WEIGHTS``, else the cache file
:data:`DEFAULT_WEIGHTS_PATH`, which is downloaded from :data:`WEIGHTS_URL` (or ``$JGAN_INCEPTION_URL``,
a mirror) on first use and verified against :data:`WEIGHTS_SHA256`. A user's own file is used as given
(it may be an .npz conversion, whose hash differs); its SHA-256 still keys the real-feature cache.

The hash and size are those of the file pytorch-fid's ``fid_weights`` release serves (the same bytes as
torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``; the name's suffix is the hash's first 8
hex digits, torch.hub's convention): recorded from public pins of that file, since no download works on
the machines jgan is developed on.
"""

from __future__ import annotations

import functools
import os

from jgan import download

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"
WEIGHTS_URL = f"https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/{FID_WEIGHTS_NAME}"
WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_BYTES = 95_628_359
WEIGHTS_ENV = "JGAN_INCEPTION_WEIGHTS"
URL_ENV = "JGAN_INCEPTION_URL"
DEFAULT_WEIGHTS_PATH = os.path.join("~", ".cache", "jgan", FID_WEIGHTS_NAME)


def _where_to_put_it() -> str:
  return (
    f"Or get {FID_WEIGHTS_NAME} ({WEIGHTS_BYTES:,} bytes, SHA-256 {WEIGHTS_SHA256}) from {WEIGHTS_URL} by other "
    f"means and put it at {DEFAULT_WEIGHTS_PATH}, or point {WEIGHTS_ENV} or evals.inception_weights "
    "(CLI: --inception_weights) at a copy."
  )


def weights_path(path: str = "", *, download_missing: bool = True, progress: bool = True) -> str:
  """The weights file to use: ``path``, else ``$JGAN_INCEPTION_WEIGHTS``, else the verified cache file.

  Args:
    path: an explicit weights file (``.pth`` or ``.npz``); "" for the lookup order above.
    download_missing: download the cache file when it is missing (else raise).
    progress: a byte progress bar while downloading.

  Returns:
    An existing file's path (``~`` expanded).

  Raises:
    FileNotFoundError: an explicit / ``$JGAN_INCEPTION_WEIGHTS`` file does not exist, or the cache file
      is missing and ``download_missing`` is False; :class:`jgan.download.DownloadError` (a
      FileNotFoundError) when the download fails (unreachable, truncated, wrong hash), saying what to do.
  """
  chosen = path or os.environ.get(WEIGHTS_ENV, "")
  if chosen:
    chosen = os.path.expanduser(chosen)
    if not os.path.isfile(chosen):
      source = "evals.inception_weights / --inception_weights" if path else f"${WEIGHTS_ENV}"
      raise FileNotFoundError(
        f"Inception weights not found at {chosen!r} (given by {source}). Inception metrics (fid10k, kid10k, "
        f"is10k, pr10k, ...) need pytorch-fid's {FID_WEIGHTS_NAME}; unset {WEIGHTS_ENV} and the config key "
        f"evals.inception_weights to download it into {DEFAULT_WEIGHTS_PATH}. A .npz with the same keys "
        "works too (see docs/evaluation.md)."
      )
    return chosen
  cache = os.path.expanduser(DEFAULT_WEIGHTS_PATH)
  if not download_missing and not os.path.isfile(cache):
    raise FileNotFoundError(f"Inception weights not found at {cache!r}. {_where_to_put_it()}")
  url = os.environ.get(URL_ENV, "") or WEIGHTS_URL
  return download.fetch(url, cache, sha256=WEIGHTS_SHA256, progress=progress, manual_hint=_where_to_put_it())


@functools.lru_cache(maxsize=4)
def file_digest(path: str, mtime: float) -> str:
  """SHA-256 hex digest of a file (cached per path and modification time): identifies the weights."""
  del mtime  # part of the cache key only
  return download.sha256_of(path)
