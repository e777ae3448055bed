"""Errors about model files, importable without loading torch (the command line reports them)."""

from __future__ import annotations

__all__ = ["ModelIntegrityError"]


class ModelIntegrityError(RuntimeError):
    """Model weights are missing or do not match their expected sha256, or a version's card
    is damaged."""
