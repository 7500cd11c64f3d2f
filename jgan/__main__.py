"""``python -m jgan SUBCOMMAND [args]``: the same as the ``jgan`` console script."""

import sys

import jgan  # noqa: F401  (first: the XLA:CPU work-around before JAX starts its backend)
from jgan.cli import main

sys.exit(main())
