"""``python -m rsarchive.cli``: the same as the ``rsarchive`` command."""

import sys

from rsarchive.cli import main

sys.exit(main())
