"""``jgan dynamics``: the game-dynamics lab from the command line (:mod:`jgan.labs.dynamics.report`).

Example (the figure in ``docs/dynamics.md``)::

  jgan dynamics --game bilinear --methods simultaneous,alternating,extragradient,optimistic,consensus,adam \\
      --lr 0.1 --steps 1000 --start 1,1 --workdir docs/img/dynamics_bilinear

Bad game, objective or method names fail before anything is compiled, with one line naming the value
and listing the valid choices.
"""

from __future__ import annotations

import argparse
import math
import sys

DEFAULT_METHODS = "simultaneous,alternating,extragradient,optimistic,consensus"


def _point(text: str) -> str:
  """``x0,y0``: two finite numbers (argparse type of ``--start``)."""
  parts = text.split(",")
  try:
    ok = len(parts) == 2 and all(math.isfinite(float(p)) for p in parts)
  except ValueError:
    ok = False
  if not ok:
    raise argparse.ArgumentTypeError(f"{text!r} is not two finite numbers x0,y0 (e.g. 1,1)")
  return text


def build_parser() -> argparse.ArgumentParser:
  """The argparse parser of :func:`main`: every argument with its type and range."""
  from jgan.cli import args as a
  from jgan.labs import dynamics

  p = a.Parser(
    prog="jgan dynamics", description="Game-dynamics lab: trajectories and spectral radii of GAN update rules."
  )
  p.add_argument(
    "--game", default="bilinear", type=a.one_of(dynamics.GAMES, "game"), help="one of: " + ", ".join(dynamics.GAMES)
  )
  p.add_argument("--objective", default="non_saturating", help="Dirac-GAN only: comma-separated logit objectives")
  p.add_argument(
    "--methods",
    default=DEFAULT_METHODS,
    help="comma-separated update rules: name[:key=value...]; " + dynamics.method_choices(),
  )
  p.add_argument("--lr", type=a.positive_float, default=0.1, help="learning rate of every method (> 0)")
  p.add_argument("--steps", type=a.int_in(1, 10**7), default=1000, help="number of updates T")
  p.add_argument("--start", default="1,1", type=_point, help="starting point x0,y0 (theta0,psi0 for the Dirac-GAN)")
  p.add_argument("--workdir", required=True, type=a.new_dir, help="directory for dynamics.png / .md / .csv")
  p.add_argument("--r1", default="0", type=a.float_list(0.0), help="Dirac-GAN: comma-separated R1 weights gamma >= 0")
  p.add_argument("--r2", default="0", type=a.float_list(0.0), help="Dirac-GAN: comma-separated R2 weights gamma >= 0")
  p.add_argument(
    "--instance-noise", default="0", type=a.float_list(0.0), help="Dirac-GAN: comma-separated noise std sigma >= 0"
  )
  p.add_argument(
    "--clip",
    default="none",
    type=a.float_list(0.0, allow=("none",)),
    help="Dirac-GAN: comma-separated WGAN clip values c (or none)",
  )
  p.add_argument(
    "--variants",
    default=None,
    help="Dirac-GAN: ';'-separated variants, each 'key=value,...' over objective, r1, r2, instance_noise, "
    "clip overriding the flags above ('none' = the flags as given), e.g. 'none;r1=1;instance_noise=1'",
  )
  p.add_argument("--noise-points", type=a.int_in(1, 4096), default=64, help="quadrature points for instance noise")
  p.add_argument("--dpi", type=a.int_in(10, 1200), default=80, help="resolution of dynamics.png")
  return p


def main(argv: list[str] | None = None) -> int:
  """Runs the report; returns 0, or 2 after a one-line error for bad names or values.

  Writes ``dynamics.png``, ``dynamics.md`` and ``dynamics.csv`` into ``--workdir`` and prints the
  Markdown table to stdout.
  """
  from jgan.cli import args as args_lib
  from jgan.labs.dynamics import report

  args = args_lib.parse(build_parser(), sys.argv[1:] if argv is None else argv)
  if isinstance(args, int):
    return args
  try:
    rows, trajs, games, rules = report.run(args)
  except ValueError as e:  # validation happens before any compilation; keep the message to one line
    print(f"error: {e}", file=sys.stderr)
    return 2
  table = report.write_report(args, rows, trajs, games, rules)
  print(table, end="")
  print(f"wrote {args.workdir}/dynamics.png, dynamics.md, dynamics.csv")
  return 0


if __name__ == "__main__":
  sys.exit(main())
