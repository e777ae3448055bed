"""Shared fixtures: the real packaged encoder (loaded once), paths to real data."""

from __future__ import annotations

import os
from pathlib import Path

# Before torch starts its OpenMP threads: on a machine shared with other jobs (CI, a loaded
# laptop), spinning workers starved each other (400 answers embedded in 10-30 s instead of
# 0.8 s); passive waiting costs nothing measurable when the cores are free.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SAMPLE_DATA = REPO / "sample_data"
# CI clones the repository with shared/ beside it; the corpora are read, never copied.
DATASETS = REPO.parent / "shared" / "datasets"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def encoder():
    """The real packaged all-MiniLM-L6-v2 on the CPU, shared by the whole session."""
    from grouper.embedding import Encoder

    return Encoder(device=torch.device("cpu"))


@pytest.fixture(scope="session")
def datasets_dir() -> Path:
    """The real benchmark corpora; tests that need them skip where they are absent."""
    if not DATASETS.is_dir():
        pytest.skip(f"benchmark corpora not found at {DATASETS}")
    return DATASETS


@pytest.fixture
def foreign_sqlite(tmp_path: Path) -> Path:
    """Another program's SQLite database (one table, ``notes``): grouper must refuse it and
    leave it as it was."""
    import sqlite3

    path = tmp_path / "notes.sqlite"
    raw = sqlite3.connect(path)
    raw.execute("create table notes (body text)")
    raw.commit()
    raw.close()
    return path
