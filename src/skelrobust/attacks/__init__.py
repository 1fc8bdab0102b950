"""attacks (later issues)."""
