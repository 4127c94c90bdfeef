"""`python -m ragflow_operator ...` is `ragflow-operator ...` (see cli.py)."""

import sys

from ragflow_operator.cli import main

sys.exit(main())
