"""Drivers for the ``jgan judge`` tests: the server as a real process, raw HTTP, Chromium, a scripted evaluator.

Every wait is on a condition (a line the server prints, an HTTP answer, a page attribute) and has a
timeout that only guards against a hang; nothing sleeps a fixed time to synchronise.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import queue
import select
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HANG_S = 180.0  # a hang guard, not a speed limit: CI is a loaded 2-core machine
CHROMIUM = os.environ.get("JGAN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",  # this closed network refuses Chromium's calls home
  "--disable-component-update",
  "--disable-sync",
]


class Server:
  """``python -m jgan judge --serve STUDY_DIR --port PORT`` as a child process, ready when constructed:
  it has printed its URLs and answers HTTP on them. ``study_url``, ``results_url``, ``port``."""

  def __init__(self, study_dir: str, port: int = 0, timeout_s: float = HANG_S):
    cmd = [sys.executable, "-m", "jgan", "judge", "--serve", study_dir, "--port", str(port)]
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    self.proc = subprocess.Popen(
      cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    self.lines: queue.Queue[str | None] = queue.Queue()
    self.output: list[str] = []
    threading.Thread(target=self._read, daemon=True).start()
    deadline = time.monotonic() + timeout_s
    urls = {}
    while "study" not in urls or "results" not in urls:
      line = self._line(deadline)
      key, _, rest = line.partition(":")
      if key in ("study", "results") and rest.strip().startswith("http"):
        urls[key] = rest.split()[0]
    self.study_url, self.results_url = urls["study"], urls["results"]
    self.port = int(self.study_url.split(":")[2].split("/")[0])
    while True:  # the socket listens before uvicorn runs: poll until the app answers
      try:
        if self.get(self.study_url.split(f":{self.port}")[1], timeout=5)[0] == 200:
          break
      except OSError:
        pass
      if self.proc.poll() is not None or time.monotonic() > deadline:
        raise AssertionError(f"judge server did not answer: {''.join(self.output)[-3000:]}")
      with contextlib.suppress(subprocess.TimeoutExpired):
        self.proc.wait(timeout=0.2)  # the poll interval (returns at once if the server died)

  def _read(self):
    for line in self.proc.stdout:
      self.output.append(line)
      self.lines.put(line)
    self.lines.put(None)

  def _line(self, deadline: float) -> str:
    try:
      line = self.lines.get(timeout=max(0.0, deadline - time.monotonic()))
    except queue.Empty:
      raise AssertionError(f"judge server printed no URL in time: {''.join(self.output)[-3000:]}") from None
    if line is None:
      raise AssertionError(f"judge server exited {self.proc.wait()}: {''.join(self.output)[-3000:]}")
    return line

  def get(self, path: str, timeout: float = 30):
    return request(self.port, "GET", path, timeout=timeout)

  def kill9(self) -> None:
    """SIGKILL, and wait for the process to be gone."""
    os.kill(self.proc.pid, signal.SIGKILL)
    self.proc.wait(timeout=HANG_S)

  def stop(self) -> None:
    if self.proc.poll() is None:
      self.proc.send_signal(signal.SIGINT)
      try:
        self.proc.wait(timeout=60)
      except subprocess.TimeoutExpired:
        self.kill9()


def request(port: int, method: str, path: str, body: bytes | None = None, headers=None, timeout: float = 30):
  """``(status, body bytes)`` of one raw HTTP request (the path is sent as given, never normalised)."""
  conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
  try:
    conn.putrequest(method, path, skip_accept_encoding=True)
    for k, v in (headers or {}).items():
      conn.putheader(k, v)
    if body is not None:
      conn.putheader("Content-Length", str(len(body)))
    conn.endheaders(body)
    r = conn.getresponse()
    return r.status, r.read()
  finally:
    conn.close()


def post_large(port: int, path: str, size: int, chunked: bool = False, timeout: float = HANG_S):
  """``(status, bytes sent)`` of a POST of ``size`` bytes, sent as a client like curl does: the body in
  64 KiB pieces, stopping as soon as the server has answered (it may refuse before reading the body)."""
  s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
  framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}"
  head = f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{framing}\r\n\r\n"
  s.sendall(head.encode())
  piece, sent = b"x" * 65536, 0
  while sent < size and not select.select([s], [], [], 0)[0]:
    data = piece[: size - sent]
    try:
      s.sendall(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
    except (BrokenPipeError, ConnectionResetError):
      break
    sent += len(data)
  reply = b""
  with contextlib.suppress(ConnectionResetError):
    while b"\r\n\r\n" not in reply:
      more = s.recv(65536)
      if not more:
        break
      reply += more
  s.close()
  return int(reply.split(b" ", 2)[1]) if reply.startswith(b"HTTP/1.1 ") else None, sent


def db_rows(study_dir: str, table: str = "answers") -> list[tuple]:
  """Every row of a table of the study's database, read with plain sqlite3 (no jgan code)."""
  with contextlib.closing(sqlite3.connect(os.path.join(study_dir, "answers.sqlite"), timeout=30)) as db:
    if table == "answers":
      columns = "evaluator, image, position, kind, truth, answer, response_ms, ts"
      return db.execute(f"SELECT {columns} FROM answers ORDER BY evaluator, position").fetchall()
    return db.execute(f"SELECT * FROM {table} ORDER BY id").fetchall()


@contextlib.contextmanager
def chromium():
  """A headless Chromium (the system's, through Playwright) for the browser tests."""
  from playwright.sync_api import sync_playwright

  if not os.path.exists(CHROMIUM):
    raise AssertionError(f"no Chromium at {CHROMIUM}: run `make browser` (Debian's chromium) or set JGAN_CHROMIUM")
  with sync_playwright() as p:
    browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
      yield browser
    finally:
      browser.close()


def wait_at(page, position: int, timeout_s: float = HANG_S) -> str:
  """Waits until the page shows the image at ``position`` (0-based), ready for an answer; returns its id."""
  page.wait_for_function(
    "p => document.body.dataset.ready === '1' && document.body.dataset.position === String(p)",
    arg=position,
    timeout=timeout_s * 1000,
  )
  return page.evaluate("document.body.dataset.image")


def wait_acked(page, count: int, timeout_s: float = HANG_S) -> None:
  """Waits until the server has acknowledged ``count`` answers of this page."""
  page.wait_for_function("n => window.jgan.acked.length >= n", arg=count, timeout=timeout_s * 1000)


def wait_done(page, timeout_s: float = HANG_S) -> None:
  page.wait_for_function("() => document.body.dataset.done === '1'", timeout=timeout_s * 1000)


def answer_by_key(page, position: int, policy) -> str:
  """Waits for the image at ``position``, presses R or F as ``policy(image id)`` says; returns the id."""
  image = wait_at(page, position)
  page.keyboard.press("r" if policy(image) == "real" else "f")
  return image
