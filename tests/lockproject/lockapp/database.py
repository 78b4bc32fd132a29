"""The lockapp database: through PgBouncer (transaction mode), with the server's own URL for migrations."""

import os

DATABASE_URL = os.environ["LOCKAPP_POOLED_URL"]
if os.environ.get("LOCKAPP_DIRECT_URL"):
    DATABASE_DIRECT_URL = os.environ["LOCKAPP_DIRECT_URL"]
# No prepared statements or server-side cursors through a transaction pooler.
DATABASE_OPTIONS = {"prepare_threshold": None}
DISABLE_SERVER_SIDE_CURSORS = True
