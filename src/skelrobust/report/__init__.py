"""report (later issues)."""
