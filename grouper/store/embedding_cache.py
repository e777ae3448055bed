"""Embeddings cached in the store per (model key, text): a persistent
:class:`grouper.embedding.EmbeddingCache`, so that re-opening or re-grouping a question does
not run the encoder again on text it has already embedded.

Rows are keyed by the sha256 of the UTF-8 text (the table holds no student text); vectors are
little-endian float32 bytes. Pass ``store.embeddings`` as ``Encoder.encode(..., cache=...)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
from sqlalchemy import Connection, select

from grouper.store.schema import embeddings

if TYPE_CHECKING:
    from grouper.store.store import Store

__all__ = ["EmbeddingCache", "text_key"]

_CHUNK = 500  # keys per query: well under every backend's limit on bound parameters


def text_key(text: str) -> str:
    """The cache key of a text: hex sha256 of its UTF-8 bytes (as ``grouper.embedding.text_sha256``)."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class EmbeddingCache:
    """The store's embedding cache (``store.embeddings``)."""

    def __init__(self, store: Store):
        self._store = store

    def get_many(self, model_key: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of those ``texts`` that are cached under ``model_key``.

        Returns
        -------
        dict of str to ndarray of shape (dim,), float32
            Text to vector; texts not cached are absent.
        """
        by_key: dict[str, list[str]] = {}
        for text in texts:
            by_key.setdefault(text_key(text), []).append(text)
        keys = sorted(by_key)

        def txn(conn: Connection) -> dict[str, np.ndarray]:
            found: dict[str, np.ndarray] = {}
            for start in range(0, len(keys), _CHUNK):
                rows = conn.execute(
                    select(embeddings.c.text_sha256, embeddings.c.dim, embeddings.c.vector).where(
                        embeddings.c.model_version == model_key, embeddings.c.text_sha256.in_(keys[start : start + _CHUNK])
                    )
                ).all()
                for key, dim, blob in rows:
                    vector = np.frombuffer(blob, dtype="<f4")
                    if vector.shape != (dim,):
                        continue  # a damaged row is a cache miss, never a wrong vector
                    for text in by_key[key]:
                        found[text] = vector.astype(np.float32)
            return found

        return self._store._read(txn, "reading cached embeddings") if keys else {}

    def put_many(self, model_key: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Remember ``vectors`` (text to vector) under ``model_key``; texts already cached keep
        their vector, and empty texts are not stored (their vector is zero by definition).

        Raises
        ------
        ValueError
            When the vectors differ in shape or hold NaN or infinity (nothing is stored).
        """
        rows: dict[str, bytes] = {}
        dim = None
        for text, vector in vectors.items():
            if not text:
                continue
            vector = np.asarray(vector)
            if vector.ndim != 1 or (dim is not None and vector.shape[0] != dim):
                raise ValueError(f"vector for {text[:40]!r} has shape {vector.shape}; all must have shape ({dim or 'dim'},)")
            if not np.isfinite(vector).all():
                raise ValueError(f"vector for {text[:40]!r} holds NaN or infinity; nothing was cached")
            dim = vector.shape[0]
            rows.setdefault(text_key(text), vector.astype("<f4").tobytes())
        if not rows:
            return
        keys = sorted(rows)

        def txn(conn: Connection) -> None:
            present: set[str] = set()
            for start in range(0, len(keys), _CHUNK):
                present.update(
                    conn.execute(
                        select(embeddings.c.text_sha256).where(
                            embeddings.c.model_version == model_key, embeddings.c.text_sha256.in_(keys[start : start + _CHUNK])
                        )
                    ).scalars()
                )
            new = [{"model_version": model_key, "text_sha256": k, "dim": dim, "vector": rows[k]} for k in keys if k not in present]
            if new:
                conn.execute(embeddings.insert(), new)

        self._store._write(txn, "caching embeddings")
