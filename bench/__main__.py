"""``python -m bench``: run every benchmark and print the results table."""

from bench.run import main

raise SystemExit(main())
