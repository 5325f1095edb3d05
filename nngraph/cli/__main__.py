"""`python -m nngraph.cli`."""

import sys

from nngraph.cli.app import main

sys.exit(main())
