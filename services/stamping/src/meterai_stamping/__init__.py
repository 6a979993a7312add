"""meterai stamping."""
