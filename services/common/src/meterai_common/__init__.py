"""meterai common."""
