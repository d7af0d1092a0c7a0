"""``python -m core``: the command-line twin of every page action."""

import sys

from core.cli import main

sys.exit(main())
