"""Alembic environment for the one shared database; ``meterai_common.db.migrate`` runs it."""
