"""Integration tests: each hop against the real local services."""
