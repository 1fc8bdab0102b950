"""defenses (later issues)."""
