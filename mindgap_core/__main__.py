"""``python -m mindgap_core`` runs the ``mindgap`` command."""

import sys

from mindgap_core.cli import main

sys.exit(main())
