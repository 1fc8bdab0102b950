"""``python -m skelrobust.cli`` runs the command line."""

import sys

from skelrobust.cli import main

sys.exit(main())
