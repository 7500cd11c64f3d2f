"""The study's web server (Starlette on uvicorn, the ``jgan[judge]`` extra): study page, answers, results.

Routes (``TOKEN``: the study's ``token``, ``REPORT``: its ``report_token``; every other path, and every
path with a wrong token, answers 403)::

    GET  /s/TOKEN/                 the study page (plain HTML + JS, judge_pages/)
    GET  /s/TOKEN/study.js, judge.css
    GET  /s/TOKEN/img/ID           image ID's PNG (looked up by id in memory; never a file path)
    POST /s/TOKEN/api/evaluators   {"name": str} -> {"evaluator": id}         a new evaluator
    GET  /s/TOKEN/api/next?evaluator=ID  -> {"position", "total", "image", "exposure_ms", ...}
    POST /s/TOKEN/api/answer       {"evaluator", "image", "answer": "real"|"fake", "response_ms"}
    GET  /r/REPORT/                the results page (computed from the database on each request)
    GET  /r/REPORT/grid/most, /r/REPORT/grid/least, /r/REPORT/judge.css

Answers are validated before anything is written: a malformed body (not a JSON object of exactly those
keys and types) -> 400, a body over :data:`MAX_BODY` bytes -> 413 (refused on its Content-Length, or
once that many bytes of a chunked body arrived), not ``application/json`` -> 415, unknown evaluator or
image -> 404, an image answered before or not the evaluator's current one -> 409
(:class:`jgan.labs.judge_store.Rejected`). Every response carries ``Referrer-Policy: no-referrer`` (the
token never leaves in a Referer), ``Cache-Control: no-store``, ``X-Content-Type-Options: nosniff`` and a
Content-Security-Policy that allows only the server's own scripts, styles and images.
"""

from __future__ import annotations

import html
import importlib.resources
import json
import math
import os
import secrets
import socket
import threading

from jgan.labs import judge_stats, judge_store, judge_study

MAX_BODY = 4096  # bytes of a request body; an answer is about 150
MAX_NAME = 64
HEADERS = [
  (b"referrer-policy", b"no-referrer"),
  (b"cache-control", b"no-store"),
  (b"x-content-type-options", b"nosniff"),
  (b"x-frame-options", b"DENY"),
  (
    b"content-security-policy",
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    b"base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  ),
]
ANSWER_KEYS = {"evaluator", "image", "answer", "response_ms"}


def page(name: str) -> bytes:
  """The bytes of ``jgan/labs/judge_pages/<name>`` (the static study page, its script and style)."""
  return (importlib.resources.files("jgan.labs") / "judge_pages" / name).read_bytes()


class Guard:
  """ASGI middleware: body-size limit (413) and the security headers on every response."""

  def __init__(self, app, max_body: int = MAX_BODY):
    self.app, self.max_body = app, max_body

  async def __call__(self, scope, receive, send):
    if scope["type"] != "http":
      return await self.app(scope, receive, send)

    async def send_with_headers(message):
      if message["type"] == "http.response.start":
        message = dict(message, headers=list(message.get("headers", [])) + HEADERS)
      await send(message)

    length = dict(scope["headers"]).get(b"content-length")
    if length is not None and (not length.isdigit() or int(length) > self.max_body):
      return await _too_large(send_with_headers)  # refused unread
    messages, seen = [], 0  # the body (at most max_body bytes), read here and replayed to the app
    while True:
      message = await receive()
      if message["type"] != "http.request":
        return  # the client went away
      seen += len(message.get("body", b""))
      if seen > self.max_body:
        return await _too_large(send_with_headers)
      messages.append(message)
      if not message.get("more_body", False):
        break

    async def replay():
      return messages.pop(0) if messages else await receive()

    await self.app(scope, replay, send_with_headers)


async def _too_large(send):
  body = json.dumps({"error": f"request body over {MAX_BODY} bytes"}).encode()
  headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
  await send({"type": "http.response.start", "status": 413, "headers": headers + [(b"connection", b"close")]})
  await send({"type": "http.response.body", "body": body})


def _clean(value):
  """A report value with NaN -> None (strict JSON)."""
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, dict):
    return {k: _clean(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_clean(v) for v in value]
  return value


def results_html(rep: dict, study_dir: str) -> str:
  """The results page: the report's Markdown tables as HTML, and the two fake grids."""
  text = judge_stats.format_report(rep, os.path.basename(os.path.normpath(study_dir)))
  out, table = [], False
  for line in text.splitlines():
    if line.startswith("|"):
      cells = [html.escape(c.strip()) for c in line.strip("|").split("|")]
      if set("".join(cells)) <= {"-"}:
        continue
      tag = "th" if not table else "td"
      out.append(("<table>" if not table else "") + "<tr>" + "".join(f"<{tag}>{c}</{tag}>" for c in cells) + "</tr>")
      table = True
      continue
    if table:
      out.append("</table>")
      table = False
    if line.startswith("#"):
      level = len(line) - len(line.lstrip("#"))
      out.append(f"<h{level}>{html.escape(line.lstrip('#').strip())}</h{level}>")
    elif line.strip():
      out.append(f"<p>{html.escape(line)}</p>")
  if table:
    out.append("</table>")
  for name, title in (("most", "Most convincing fakes"), ("least", "Least convincing fakes")):
    if name in rep.get("grids", {}):
      out.append(f'<h2>{title}</h2><img class="grid" id="grid-{name}" src="grid/{name}" alt="{title}">')
  body = "\n".join(out)
  return (
    '<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>Study results</title>'
    '<link rel="stylesheet" href="judge.css"></head>\n<body class="results"><main>\n'
    + body
    + "\n</main></body></html>\n"
  )


def make_app(study_dir: str):
  """The ASGI app serving the study in ``study_dir`` (prepared by :func:`jgan.labs.judge_study.prepare`)."""
  from starlette.applications import Starlette
  from starlette.concurrency import run_in_threadpool
  from starlette.requests import Request
  from starlette.responses import JSONResponse, Response
  from starlette.routing import Route

  study = judge_study.load(study_dir)
  store = judge_store.Store(study_dir, study)
  images = {}
  for record in study["images"]:
    with open(judge_study.image_path(study_dir, record["id"]), "rb") as f:
      images[record["id"]] = f.read()
  static = {name: page(name) for name in ("study.html", "study.js", "judge.css")}
  h, w, _ = study["image_shape"]
  report_lock = threading.Lock()
  shape = {"height": h, "width": w, "scale": study["scale"], "mode": study["mode"]}

  def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)

  def forbidden(request: Request) -> bool:
    token = study["report_token"] if request.url.path.startswith("/r/") else study["token"]
    return not secrets.compare_digest(request.path_params.get("token", "").encode(), token.encode())

  def guarded(handler):
    async def endpoint(request: Request):
      if forbidden(request):
        return error(403, "forbidden")
      try:
        return await handler(request)
      except judge_store.Rejected as e:
        return error(e.status, str(e))

    return endpoint

  async def json_body(request: Request) -> dict:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
      raise judge_store.Rejected(415, "the body must be application/json")
    try:
      body = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError):
      raise judge_store.Rejected(400, "the body is not JSON") from None
    if not isinstance(body, dict):
      raise judge_store.Rejected(400, "the body must be a JSON object")
    return body

  def static_response(name: str, media_type: str):
    async def handler(request: Request):
      return Response(static[name], media_type=media_type)

    return handler

  async def image(request: Request):
    data = images.get(request.path_params["image"])
    if data is None:
      raise judge_store.Rejected(404, "unknown image")
    return Response(data, media_type="image/png")

  async def new_evaluator(request: Request):
    body = await json_body(request)
    name = body.get("name", "")
    if set(body) - {"name"} or not isinstance(name, str) or len(name) > MAX_NAME:
      raise judge_store.Rejected(400, f'expected {{"name": a string of at most {MAX_NAME} characters}}')
    evaluator = await run_in_threadpool(store.create_evaluator, name)
    return JSONResponse({"evaluator": evaluator})

  def next_json(at: judge_store.Next) -> JSONResponse:
    return JSONResponse(dict(at._asdict(), done=at.image is None, **shape))

  async def next_image(request: Request):
    evaluator = request.query_params.get("evaluator", "")
    return next_json(await run_in_threadpool(store.next, evaluator))

  async def answer(request: Request):
    body = await json_body(request)
    ms = body.get("response_ms")
    if (
      set(body) != ANSWER_KEYS
      or not all(isinstance(body[k], str) for k in ("evaluator", "image", "answer"))
      or body["answer"] not in ("real", "fake")
      or isinstance(ms, bool)
      or not isinstance(ms, int | float)
      or not 0 <= ms <= 86_400_000
    ):
      raise judge_store.Rejected(400, 'expected {"evaluator", "image", "answer": "real"|"fake", "response_ms": ms}')
    at = await run_in_threadpool(store.record, body["evaluator"], body["image"], body["answer"], float(ms))
    return next_json(at)

  def fresh_report() -> dict:
    with report_lock:  # one report at a time writes the grid files
      return judge_stats.write_report(study_dir)[0]

  async def results(request: Request):
    rep = await run_in_threadpool(fresh_report)
    return Response(results_html(rep, study_dir), media_type="text/html; charset=utf-8")

  async def grid(request: Request):
    name = request.path_params["name"]
    path = os.path.join(study_dir, f"{name}_convincing.png")
    if name not in ("most", "least") or not os.path.isfile(path):
      raise judge_store.Rejected(404, "no such grid")
    with open(path, "rb") as f:
      return Response(f.read(), media_type="image/png")

  async def report_json(request: Request):
    rep = await run_in_threadpool(fresh_report)
    return JSONResponse(_clean(rep))

  routes = [
    ("/s/{token}/", static_response("study.html", "text/html; charset=utf-8"), ["GET"]),
    ("/s/{token}/study.js", static_response("study.js", "text/javascript; charset=utf-8"), ["GET"]),
    ("/s/{token}/judge.css", static_response("judge.css", "text/css; charset=utf-8"), ["GET"]),
    ("/s/{token}/img/{image}", image, ["GET"]),
    ("/s/{token}/api/evaluators", new_evaluator, ["POST"]),
    ("/s/{token}/api/next", next_image, ["GET"]),
    ("/s/{token}/api/answer", answer, ["POST"]),
    ("/r/{token}/", results, ["GET"]),
    ("/r/{token}/report.json", report_json, ["GET"]),
    ("/r/{token}/judge.css", static_response("judge.css", "text/css; charset=utf-8"), ["GET"]),
    ("/r/{token}/grid/{name}", grid, ["GET"]),
  ]
  app = Starlette(routes=[Route(path, guarded(fn), methods=methods) for path, fn, methods in routes])
  app.router.redirect_slashes = False  # /s/TOKEN answers 403 like every other path, not a redirect

  async def everything_else(request, exc):  # unknown paths and methods: the same answer as a wrong token
    return error(403, "forbidden")

  app.add_exception_handler(404, everything_else)
  app.add_exception_handler(405, everything_else)
  return Guard(app)


def open_socket(host: str, port: int) -> socket.socket:
  """A listening TCP socket on ``host:port`` (``port`` 0: any free port). Raises OSError if it is taken."""
  family = socket.AF_INET6 if ":" in host else socket.AF_INET
  sock = socket.socket(family, socket.SOCK_STREAM)
  sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
  try:
    sock.bind((host, port))
    sock.listen(128)
  except OSError:
    sock.close()
    raise
  return sock


def urls(study: dict, host: str, port: int) -> tuple[str, str]:
  """``(study URL, results URL)`` of a study served on ``host:port``."""
  where = f"[{host}]" if ":" in host else host
  return f"http://{where}:{port}/s/{study['token']}/", f"http://{where}:{port}/r/{study['report_token']}/"


def serve(study_dir: str, sock: socket.socket) -> None:
  """Serves the study on the listening socket ``sock`` until SIGINT / SIGTERM (uvicorn, one process)."""
  import uvicorn

  config = uvicorn.Config(
    make_app(study_dir), log_level="warning", access_log=False, server_header=False, timeout_keep_alive=5
  )
  uvicorn.Server(config).run(sockets=[sock])
