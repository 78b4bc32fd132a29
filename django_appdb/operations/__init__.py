"""What the ``appdb_*`` management commands do, as functions the commands call and print."""
