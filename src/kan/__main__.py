"""``python -m kan``: the command line in :mod:`kan.cli`."""

import sys

from kan.cli import main

sys.exit(main())
