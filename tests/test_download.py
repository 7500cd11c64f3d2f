"""Verified downloads (jgan.download) and the Inception weights' first-use download, against a local
HTTP server on 127.0.0.1 serving a generated file: good, truncated, wrong hash, HTTP error, server down.
Each case checks the message a user sees and that nothing partial is left behind.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np
import pytest

from jgan import download
from jgan.metrics import inception_weights
from tests.local_server import closed_port_url, serve

PAYLOAD = np.random.default_rng(0).integers(0, 256, 3 * download.CHUNK + 12345, dtype=np.uint8).tobytes()
GOOD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture(scope="module")
def server():
  routes = {
    "/good": PAYLOAD,
    "/tampered": b"tampered" + PAYLOAD[8:],
    "/truncated": ("truncated", PAYLOAD),
    "/missing": ("status", 404),
  }
  with serve(routes) as (url, requests):
    yield url, requests


def _leftovers(directory) -> list[str]:
  return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


def test_good_download_is_verified_renamed_and_reused(server, tmp_path, capsys):
  server, requests = server
  dest = tmp_path / "cache" / "w.pth"
  assert download.fetch(f"{server}/good", str(dest), sha256=GOOD_SHA) == str(dest)
  assert dest.read_bytes() == PAYLOAD and _leftovers(dest.parent) == ["w.pth"]
  assert "download w.pth" in capsys.readouterr().err  # the progress bar
  before = len(requests)
  download.fetch(f"{server}/good", str(dest), sha256=GOOD_SHA.upper())  # verified copy: no request
  assert len(requests) == before
  dest.write_bytes(PAYLOAD[:-1] + b"x")  # a corrupted cache file is replaced
  download.fetch(f"{server}/good", str(dest), sha256=GOOD_SHA, progress=False)
  assert dest.read_bytes() == PAYLOAD and len(requests) == before + 1
  assert "wrong SHA-256; deleting it" in capsys.readouterr().err


@pytest.mark.parametrize(
  "path, message",
  [
    (
      "/tampered",
      r"gave a file with SHA-256 [0-9a-f]{64}, expected " + GOOD_SHA + r" \(3,158,073 bytes\); refused and deleted",
    ),
    ("/truncated", r"broke off.*of 3,158,073 bytes|broke off after"),
    ("/missing", r"downloading http://127.0.0.1:\d+/missing failed: HTTP 404"),
  ],
)
def test_bad_downloads_fail_with_one_line_and_leave_nothing(server, tmp_path, path, message):
  server, _ = server
  dest = tmp_path / "cache" / "w.pth"
  with pytest.raises(download.DownloadError, match=message) as e:
    download.fetch(f"{server}{path}", str(dest), sha256=GOOD_SHA, progress=False, manual_hint="Put a copy at X.")
  assert "\n" not in str(e.value) and str(e.value).endswith("Put a copy at X.")
  assert _leftovers(dest.parent) == []  # no partial file, no .part file
  assert isinstance(e.value, FileNotFoundError)  # the CLI's one-line error handlers catch it


def test_unreachable_server(tmp_path):
  url = closed_port_url("/weights.pth")
  with pytest.raises(download.DownloadError, match=r"cannot reach http://127.0.0.1:\d+/weights.pth \(.*refused"):
    download.fetch(url, str(tmp_path / "w.pth"), sha256=GOOD_SHA, progress=False, timeout=5)
  assert _leftovers(tmp_path) == []


@pytest.fixture
def weights_cache(tmp_path, monkeypatch):
  """The Inception weights' cache in tmp_path, served by the local server with the payload's hash."""
  monkeypatch.delenv(inception_weights.WEIGHTS_ENV, raising=False)
  monkeypatch.setattr(inception_weights, "DEFAULT_WEIGHTS_PATH", str(tmp_path / "jgan" / "pt_inception.pth"))
  monkeypatch.setattr(inception_weights, "WEIGHTS_SHA256", GOOD_SHA)
  return tmp_path / "jgan" / "pt_inception.pth"


def test_inception_weights_download_on_first_use(server, weights_cache, monkeypatch):
  server, _ = server
  monkeypatch.setenv(inception_weights.URL_ENV, f"{server}/good")
  assert inception_weights.weights_path("", progress=False) == str(weights_cache)
  assert weights_cache.read_bytes() == PAYLOAD
  with pytest.raises(FileNotFoundError, match="not found at .*given by evals.inception_weights"):
    inception_weights.weights_path(str(weights_cache) + ".nope")  # an explicit path is never downloaded


def test_inception_weights_failures_say_what_to_do(server, weights_cache, monkeypatch):
  server, _ = server
  monkeypatch.setenv(inception_weights.URL_ENV, f"{server}/tampered")
  with pytest.raises(download.DownloadError, match="refused and deleted.*Or get pt_inception-2015-12-05-6726825d.pth"):
    inception_weights.weights_path("", progress=False)
  monkeypatch.setenv(inception_weights.URL_ENV, closed_port_url("/weights.pth"))
  with pytest.raises(download.DownloadError, match="cannot reach .*JGAN_INCEPTION_WEIGHTS"):
    inception_weights.weights_path("", progress=False)
  assert _leftovers(weights_cache.parent) == []
  with pytest.raises(FileNotFoundError, match="not found at"):
    inception_weights.weights_path("", download_missing=False)
  monkeypatch.setenv(inception_weights.WEIGHTS_ENV, str(weights_cache.parent / "env.pth"))
  with pytest.raises(FileNotFoundError, match=r"env.pth.*given by \$JGAN_INCEPTION_WEIGHTS"):
    inception_weights.weights_path("")


def test_published_weights_constants():
  # The release URL and the hash whose first 8 hex digits the file name carries (torch.hub's rule).
  assert inception_weights.WEIGHTS_URL.endswith("/fid_weights/pt_inception-2015-12-05-6726825d.pth")
  assert inception_weights.WEIGHTS_SHA256.startswith("6726825d") and len(inception_weights.WEIGHTS_SHA256) == 64
