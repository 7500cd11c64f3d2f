"""jgan's command line from a checkout: ``python launch.py [SUBCOMMAND] [args]`` = ``jgan ...``.

Train:   python launch.py --config configs/dcgan_mnist5k.py --workdir runs/x [--config.KEY=VALUE ...]
Others:  python launch.py SUBCOMMAND [args]   (python launch.py --help lists them)
"""

import sys

import jgan  # noqa: F401  (first: applies the XLA:CPU work-around before JAX starts)
from jgan.cli import main

if __name__ == "__main__":
  sys.exit(main())  # no argv: this process's own command line (jgan.cli.main)
