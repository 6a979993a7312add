"""Storage adapters of the quota service (SQLAlchemy Core)."""
