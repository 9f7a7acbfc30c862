"""Allow ``python -m seedrun``."""

import sys

from seedrun.cli import main

sys.exit(main())
