"""``python -m mutation``: the mutation run (see :mod:`mutation.runner`)."""

import sys

from mutation.runner import main

sys.exit(main())
