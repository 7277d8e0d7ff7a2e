"""``python -m kan``: the command line in :mod:`kan.pipeline.cli`."""

import sys

from kan.pipeline.cli import main

sys.exit(main())
