"""A local HTTP server on 127.0.0.1 for download tests (nothing leaves the machine).

``serve(routes)`` yields the base URL; ``routes`` maps a path prefix to the bytes served there, or to
``("truncated", body)`` (the announced Content-Length, then a third of the body and a dead connection)
or ``("status", code)``. ``requests`` lists the paths asked for, in order.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import threading


@contextlib.contextmanager
def serve(routes: dict):
  requests: list[str] = []

  class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
      requests.append(self.path)
      route = next((v for k, v in routes.items() if self.path.startswith(k)), ("status", 404))
      if isinstance(route, tuple) and route[0] == "status":
        self.send_error(route[1])
        return
      body = route[1] if isinstance(route, tuple) else route
      self.send_response(200)
      self.send_header("Content-Length", str(len(body)))
      self.end_headers()
      if isinstance(route, tuple) and route[0] == "truncated":
        self.wfile.write(body[: len(body) // 3])
        self.wfile.flush()
        self.connection.shutdown(socket.SHUT_RDWR)  # the server dies mid-transfer
        return
      self.wfile.write(body)

    def log_message(self, *args):  # keep the test output clean
      pass

  httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
  thread = threading.Thread(target=httpd.serve_forever, daemon=True)
  thread.start()
  try:
    yield f"http://127.0.0.1:{httpd.server_address[1]}", requests
  finally:
    httpd.shutdown()
    httpd.server_close()


def closed_port_url(path: str = "/file") -> str:
  """A URL on 127.0.0.1 where nothing listens (connection refused)."""
  s = socket.socket()
  s.bind(("127.0.0.1", 0))
  port = s.getsockname()[1]
  s.close()
  return f"http://127.0.0.1:{port}{path}"
