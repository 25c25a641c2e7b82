"""`python -m serving.drift`: see serving/drift/cli.py."""

import sys

from .cli import main

sys.exit(main())
