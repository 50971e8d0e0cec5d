"""``python -m crm``: the command line (see crm.cli)."""

import sys

from crm.cli import main

sys.exit(main())
