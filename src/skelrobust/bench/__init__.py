"""bench (later issues)."""
