"""``python -m kis_async``: the same as the ``kis-async`` command."""

import sys

from .cli import main

sys.exit(main())
