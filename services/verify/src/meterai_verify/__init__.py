"""meterai verify."""
