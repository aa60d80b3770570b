"""`python -m c2f_core` runs the `c2f` command."""

import sys

from c2f_core.cli.main import main

sys.exit(main())
