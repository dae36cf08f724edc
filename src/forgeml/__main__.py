"""``python -m forgeml`` runs the CLI."""

import sys

from forgeml.cli import main

sys.exit(main())
