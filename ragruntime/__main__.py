"""``python -m ragruntime``: the same entry point as the ``ragruntime`` console script."""

import sys

from ragruntime.cli import main

sys.exit(main())
