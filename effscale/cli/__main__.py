"""``python -m effscale.cli``: the same command line as ``effscale``."""

import sys

from effscale.cli import main

sys.exit(main())
