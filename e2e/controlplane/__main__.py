"""Entry point of ``python -m e2e.controlplane``; the commands live in ``cli``."""

import sys

from e2e.controlplane.cli import main

sys.exit(main())
