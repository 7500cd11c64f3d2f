"""Downloads that can be trusted: one file from a URL into a cache, SHA-256 checked, atomically renamed.

Used for pretrained weights (pytorch-fid's Inception, :mod:`jgan.metrics.inception`). A leaf helper
(standard library and tqdm only) so that every part of jgan may use it. What a user sees on each
failure is one :class:`DownloadError` line naming the URL, the cause and what to do instead; nothing
partial is ever left at the destination (the bytes go to ``DEST.part-<pid>`` and are renamed only
after the size and hash check).
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import sys
import urllib.error
import urllib.request

log = logging.getLogger(__name__)

CHUNK = 1 << 20


class DownloadError(FileNotFoundError):
  """The file could not be obtained (unreachable server, truncated transfer, wrong SHA-256).

  A FileNotFoundError so that code which handles a missing file (the command line's one-line errors)
  handles a failed download the same way.
  """


def sha256_of(path: str) -> str:
  """SHA-256 hex digest (64 lowercase hex characters) of the file at ``path``, read in 1 MiB chunks."""
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(CHUNK), b""):
      h.update(chunk)
  return h.hexdigest()


def fetch(
  url: str,
  dest: str,
  *,
  sha256: str,
  progress: bool = True,
  timeout: float = 60.0,
  manual_hint: str = "",
) -> str:
  """``dest`` holding the file at ``url`` whose SHA-256 is ``sha256``; downloads it if needed.

  An existing ``dest`` with the right hash is used as is (no request). One with the wrong hash (an
  interrupted copy by hand, a corrupted cache) is deleted and downloaded again.

  Args:
    url: http(s) URL of the file.
    dest: destination path (``~`` expanded); its directory is created.
    sha256: the expected SHA-256, 64 hex characters.
    progress: show a tqdm byte counter on stderr while downloading.
    timeout: seconds each connect / read may block.
    manual_hint: appended to every error (e.g. where to put a copy obtained by other means).

  Returns:
    The absolute path of the verified file.

  Raises:
    DownloadError: the server cannot be reached or answers with an error, the transfer ends before
      the announced size, or the bytes' SHA-256 differs from ``sha256`` (the partial file is deleted).
  """
  dest = os.path.abspath(os.path.expanduser(dest))
  expected = sha256.lower()
  hint = f" {manual_hint}" if manual_hint else ""
  if os.path.isfile(dest):
    if sha256_of(dest) == expected:
      return dest
    log.warning(f"{dest} has the wrong SHA-256; deleting it and downloading {url} again")
    os.remove(dest)
  os.makedirs(os.path.dirname(dest), exist_ok=True)
  part = f"{dest}.part-{os.getpid()}"
  h, got = hashlib.sha256(), 0
  try:
    try:
      response = urllib.request.urlopen(urllib.request.Request(url, headers={"User-Agent": "jgan"}), timeout=timeout)
    except urllib.error.HTTPError as e:
      raise DownloadError(f"downloading {url} failed: HTTP {e.code} {e.reason}.{hint}") from None
    except (urllib.error.URLError, OSError) as e:
      reason = getattr(e, "reason", e)
      raise DownloadError(
        f"cannot reach {url} ({reason}); no network, or a proxy or firewall blocks it.{hint}"
      ) from None
    with response, open(part, "wb") as out:
      total = int(response.headers.get("Content-Length") or 0) or None
      bar = None
      if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, unit="B", unit_scale=True, desc=f"download {os.path.basename(dest)}", file=sys.stderr)
      try:
        while True:
          try:
            chunk = response.read(CHUNK)
          except (OSError, ValueError, http.client.HTTPException) as e:  # reset, timeout, IncompleteRead
            raise DownloadError(f"downloading {url} broke off after {got:,} bytes ({e}).{hint}") from None
          if not chunk:
            break
          out.write(chunk)
          h.update(chunk)
          got += len(chunk)
          if bar is not None:
            bar.update(len(chunk))
      finally:
        if bar is not None:
          bar.close()
    if total is not None and got != total:
      raise DownloadError(f"downloading {url} broke off: {got:,} of {total:,} bytes arrived.{hint}")
    digest = h.hexdigest()
    if digest != expected:
      raise DownloadError(
        f"{url} gave a file with SHA-256 {digest}, expected {expected} ({got:,} bytes); refused and deleted "
        f"(a changed release or a tampered download).{hint}"
      )
    os.replace(part, dest)  # atomic: a concurrent reader sees no file or the whole verified file
    return dest
  except BaseException:
    if os.path.exists(part):
      os.remove(part)
    raise
