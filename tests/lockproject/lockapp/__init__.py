"""An app whose migrations are slow, record which server port ran them, and need session state."""
