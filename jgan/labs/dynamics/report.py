"""Reports of the game-dynamics lab: trajectories, spectral radii, a figure and a table.

``jgan dynamics`` (:mod:`jgan.cli.dynamics`) parses the options and calls :func:`run` and
:func:`write_report`, e.g. for the figure in ``docs/dynamics.md``::

  jgan dynamics --game bilinear \
      --methods simultaneous,alternating,extragradient,optimistic,consensus,adam \
      --lr 0.1 --steps 1000 --start 1,1 --workdir docs/img/dynamics_bilinear

which writes ``dynamics.png`` (one panel per method: the trajectory over the gradient-play vector field,
plus the distance to the equilibrium over steps), ``dynamics.md`` and ``dynamics.csv`` (per method:
spectral radius of the step operator at the equilibrium, final distance) into the workdir and prints
the table. For the Dirac-GAN, ``--objective``, ``--r1``, ``--r2``, ``--instance-noise`` and ``--clip``
take comma-separated lists; every combination is one row of panels, e.g. ``--r1 0,1`` compares
unregularised training with R1.

Bad game, objective or method names fail before anything is compiled, with one line naming the value
and listing the valid choices.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
import os
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from jgan.labs import dynamics


class Row(NamedTuple):
  """One (game variant, method) result; distances are Euclidean, >= 0 (inf/NaN when diverged)."""

  game: str
  method: str
  spectral_radius: float  # autodiff, at the equilibrium; NaN for adaptive optimisers
  closed_form: float  # bilinear closed form; NaN where none
  initial_distance: float
  final_distance: float
  verdict: str


def _floats(text: str, flag: str) -> list[float]:
  try:
    return [float(t) for t in text.split(",") if t.strip()]
  except ValueError:
    raise ValueError(f"{flag} expects comma-separated numbers, got {text!r}") from None


def _clips(text: str) -> list[float | None]:
  return [None if t.strip().lower() in ("none", "0", "") else float(t) for t in text.split(",")]


def game_variants(args) -> list[dynamics.Game]:
  """The game variants that ``args`` asks for (validating names and values; nothing is compiled).

  Bilinear: one game. Dirac-GAN: the product of the comma-separated lists of ``--objective``, ``--r1``,
  ``--r2``, ``--instance-noise``, ``--clip``, or, with ``--variants``, one game per variant.
  """
  if args.game not in dynamics.GAMES:
    raise ValueError(f"unknown game {args.game!r}; valid choices: {', '.join(dynamics.GAMES)}")
  r1s, r2s = _floats(args.r1, "--r1"), _floats(args.r2, "--r2")
  noises = _floats(args.instance_noise, "--instance-noise")
  clips = _clips(args.clip)
  objectives = [o.strip() for o in args.objective.split(",") if o.strip()]
  if args.game == "bilinear":
    if any(r1s) or any(r2s) or any(noises) or any(c is not None for c in clips):
      raise ValueError("--r1/--r2/--instance-noise/--clip apply to --game dirac only")
    return [dynamics.make_game("bilinear")]
  valid = dynamics.logit_objectives()
  combos = [
    dict(objective=o, r1=r1, r2=r2, instance_noise=s, clip=c)
    for o, r1, r2, s, c in itertools.product(objectives, r1s, r2s, noises, clips)
  ]
  if args.variants is not None:
    if len(combos) != 1:
      raise ValueError("--variants needs single values of --objective/--r1/--r2/--instance-noise/--clip")
    combos = [{**combos[0], **_parse_variant(v)} for v in args.variants.split(";")]
  for c in combos:
    if c["objective"] not in valid:
      raise ValueError(f"unknown or non-logit objective {c['objective']!r}; valid choices: {', '.join(valid)}")
  return [dynamics.make_game("dirac", noise_points=args.noise_points, **c) for c in combos]


_VARIANT_KEYS = ("objective", "r1", "r2", "instance_noise", "clip")


def _parse_variant(text: str) -> dict[str, Any]:
  """``"r1=1,clip=0.1"`` -> ``{"r1": 1.0, "clip": 0.1}``; ``"none"`` or ``""`` -> ``{}``."""
  out: dict[str, Any] = {}
  text = text.strip()
  if text.lower() in ("", "none"):
    return out
  for item in text.split(","):
    key, sep, value = (t.strip() for t in item.partition("="))
    if not sep or key not in _VARIANT_KEYS:
      raise ValueError(f"bad variant item {item!r}; expected key=value with key in: {', '.join(_VARIANT_KEYS)}")
    if key == "objective":
      out[key] = value
    elif key == "clip":
      out[key] = _clips(value)[0]
    else:
      out[key] = _floats(value, "--variants")[0]
  return out


def _verdict(d0: float, dT: float) -> str:
  """The state at step T (not an asymptotic claim): converged / diverged / not converged."""
  if not math.isfinite(dT) or dT > 1.5 * d0:
    return "diverged"
  if dT < 1e-2 * d0:
    return "converged"
  return "not converged"


def run(args) -> tuple[list[Row], dict[tuple[int, int], np.ndarray], list[Any], list[Any]]:
  """Validates ``args``, then runs every (variant, method): returns rows, trajectories, games, rules."""
  games = game_variants(args)
  specs = [m.strip() for m in args.methods.split(",") if m.strip()]
  if not specs:
    raise ValueError(f"--methods is empty; valid choices: {dynamics.method_choices()}")
  rules = [dynamics.make_update_rule(s, args.lr) for s in specs]
  start = _floats(args.start, "--start")
  if len(start) != 2:
    raise ValueError(f"--start needs two numbers x0,y0, got {args.start!r}")
  if args.steps < 1 or args.lr <= 0:
    raise ValueError(f"--steps must be >= 1 and --lr > 0, got {args.steps} and {args.lr}")

  start_arr = np.asarray(start, np.float32)
  rows, trajs = [], {}
  for gi, game in enumerate(games):
    for ri, (spec, rule) in enumerate(zip(specs, rules)):
      zs = np.asarray(dynamics.trajectory(game, rule, start_arr, args.steps))
      trajs[gi, ri] = zs
      dist = np.asarray(dynamics.distance_to_equilibrium(game, zs))
      closed = dynamics.bilinear_spectral_radius(spec, args.lr) if args.game == "bilinear" else math.nan
      d0, dT = float(dist[0]), float(dist[-1])
      rows.append(Row(game.name, spec, dynamics.step_spectral_radius(game, rule), closed, d0, dT, _verdict(d0, dT)))
  return rows, trajs, games, rules


def _fmt(v: float, digits: int = 6) -> str:
  return "—" if isinstance(v, float) and math.isnan(v) else f"{v:.{digits}f}"


def markdown_table(rows: Sequence[Row]) -> str:
  """The result table as GitHub Markdown."""
  head = (
    "| game | method | spectral radius (autodiff) | closed form | distance at t=0 | distance at t=T | verdict |\n"
    "|---|---|---|---|---|---|---|\n"
  )
  body = "".join(
    f"| {r.game} | {r.method} | {_fmt(r.spectral_radius)} | {_fmt(r.closed_form)} | "
    f"{r.initial_distance:.4g} | {r.final_distance:.3e} | {r.verdict} |\n"
    for r in rows
  )
  return head + body


def write_csv(path: str, rows: Sequence[Row]) -> None:
  """Writes ``rows`` as CSV with a header of the :class:`Row` field names."""
  with open(path, "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(Row._fields)
    for r in rows:
      w.writerow(r)


def plot(path: str, args, rows, trajs, games, rules) -> None:
  """Draws one panel per (variant, method) plus a distance-over-steps panel into ``path`` (PNG)."""
  import matplotlib

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  n_g, n_r = len(games), len(rules)
  if n_g == 1:
    ncols = min(n_r, 3)
    cells = [(0, ri) for ri in range(n_r)]
  else:
    ncols = n_r
    cells = [(gi, ri) for gi in range(n_g) for ri in range(n_r)]
  nrows = math.ceil(len(cells) / ncols)
  fig = plt.figure(figsize=(3.3 * ncols, 3.2 * nrows + 3.0))
  grid = fig.add_gridspec(nrows + 1, ncols, height_ratios=[1.0] * nrows + [0.95])
  r0 = float(np.linalg.norm(_floats(args.start, "--start")))
  by_key = {(r.game, r.method): r for r in rows}
  for k, (gi, ri) in enumerate(cells):
    ax = fig.add_subplot(grid[k // ncols, k % ncols])
    game, rule, zs = games[gi], rules[ri], trajs[gi, ri]
    finite = zs[np.all(np.isfinite(zs), axis=1)]
    extent = max(r0, float(np.abs(finite).max()) if len(finite) else r0)
    extent = 1.1 * min(extent, 1000 * r0)  # diverging runs: show their way out, not the far field
    grid_1d = np.linspace(-extent, extent, 17, dtype=np.float32)
    u, w = (np.asarray(a) for a in dynamics.flow_on_grid(game, grid_1d, grid_1d))
    norm = np.hypot(u, w) + 1e-12  # arrows show direction only; speed varies by orders of magnitude
    ax.quiver(grid_1d, grid_1d, u / norm, w / norm, color="0.7", width=0.004, scale=25)
    ax.plot(finite[:, 0], finite[:, 1], lw=0.8, color="C0")
    ax.plot(*zs[0], "o", color="C2", ms=5, label="start")
    if len(finite):
      ax.plot(*finite[-1], "s", color="C3", ms=4, label="end")
    ax.plot(*game.equilibrium_vector(), "*", color="k", ms=9, label="equilibrium")
    ax.set_xlim(-extent, extent)
    ax.set_ylim(-extent, extent)
    ax.set_aspect("equal")
    ax.set_xlabel(game.labels[0])
    ax.set_ylabel(game.labels[1])
    row = by_key[game.name, rule.name]
    title = rule.name if n_g == 1 else f"{game.name}\n{rule.name}"
    ax.set_title(f"{title}\nρ={_fmt(row.spectral_radius, 4)}, |z_T|={row.final_distance:.2e}", fontsize=9)
    ax.tick_params(labelsize=7)
    if k == 0:
      ax.legend(fontsize=6, loc="lower left")
  ax = fig.add_subplot(grid[nrows, :])
  for (gi, ri), zs in trajs.items():
    dist = np.asarray(dynamics.distance_to_equilibrium(games[gi], zs))
    label = rules[ri].name if n_g == 1 else f"{games[gi].name}: {rules[ri].name}"
    ax.semilogy(np.maximum(dist, 1e-12), lw=1, label=label)  # float32 underflows to 0 near 1e-40
  ax.set_xlabel("step t")
  ax.set_ylabel("distance to equilibrium (floor 1e-12)")
  ax.set_ylim(bottom=1e-12)
  ax.grid(True, which="major", alpha=0.3)
  ax.legend(fontsize=6, ncol=max(1, min(3, len(trajs) // 4 + 1)), loc="upper right", framealpha=0.6)
  fig.suptitle(f"{args.game}: lr={args.lr:g}, {args.steps} steps from ({args.start})", fontsize=11)
  fig.tight_layout()
  buf = io.BytesIO()
  fig.savefig(buf, dpi=args.dpi, format="png")
  plt.close(fig)
  _save_small_png(path, buf.getvalue())


def _save_small_png(path: str, png: bytes) -> None:
  """Writes ``png`` to ``path`` with an adaptive 256-colour palette (~3x smaller; line plots lose nothing)."""
  try:
    from PIL import Image
  except ImportError:  # Pillow is a jgan dependency, but a plain PNG is fine too
    with open(path, "wb") as f:
      f.write(png)
    return
  img = Image.open(io.BytesIO(png)).convert("RGB")
  img.quantize(colors=256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def write_report(args, rows, trajs, games, rules) -> str:
  """Writes ``dynamics.png``, ``dynamics.md`` and ``dynamics.csv`` into ``args.workdir``; returns the table.

  ``args`` holds the options of :mod:`jgan.cli.dynamics` (game, methods, lr, steps, start, workdir, dpi,
  and the Dirac-GAN lists); ``rows, trajs, games, rules`` are what :func:`run` returned.
  """
  os.makedirs(args.workdir, exist_ok=True)
  table = markdown_table(rows)
  header = (
    f"# Game dynamics: {args.game}\n\n"
    f"lr {args.lr:g}, {args.steps} steps, start ({args.start}). Spectral radius: of the Jacobian of one update "
    "step at the equilibrium (autodiff; — for adaptive optimisers, whose step is not a fixed map). "
    "Verdict at step T: distance below 1% of the start (converged), above 150% or non-finite "
    "(diverged), otherwise not converged.\n\n"
  )
  with open(os.path.join(args.workdir, "dynamics.md"), "w") as f:
    f.write(header + table + "\n![dynamics](dynamics.png)\n")
  write_csv(os.path.join(args.workdir, "dynamics.csv"), rows)
  plot(os.path.join(args.workdir, "dynamics.png"), args, rows, trajs, games, rules)
  return table
