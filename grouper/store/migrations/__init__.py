"""Alembic migrations of the store, run programmatically by :mod:`grouper.store.migrate`."""
