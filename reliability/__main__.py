"""``python -m reliability``: re-run the reliability cases and write docs/reliability.md."""

from reliability.run import main

raise SystemExit(main())
