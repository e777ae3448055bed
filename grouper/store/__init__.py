"""The store: SQLAlchemy over a SQLite file by default, any SQLAlchemy URL by setting.

Questions, answers, embeddings cached per model version, groupings, and each question's
append-only edit log, folded by :mod:`grouper.edits` into the state graders see.
"""

from grouper.store.embedding_cache import EmbeddingCache, text_key
from grouper.store.engine import StoreBusy
from grouper.store.store import (
    DEFAULT_DB,
    NO_EXAM,
    QuestionInfo,
    Store,
    StoreError,
    database_files,
    default_url,
    filing_key,
    is_sqlite_database,
    sqlite_file,
)

__all__ = [
    "DEFAULT_DB",
    "NO_EXAM",
    "EmbeddingCache",
    "QuestionInfo",
    "Store",
    "StoreBusy",
    "StoreError",
    "database_files",
    "default_url",
    "filing_key",
    "is_sqlite_database",
    "sqlite_file",
    "text_key",
]
