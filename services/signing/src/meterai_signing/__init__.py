"""meterai signing."""
