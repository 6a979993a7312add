"""meterai cli."""
