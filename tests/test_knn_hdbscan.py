"""HDBSCAN for many answers (grouper.knn_hdbscan): the same groups as hdbscan.HDBSCAN."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from grouper.knn_hdbscan import knn_hdbscan


def _reference(points: np.ndarray, **settings) -> tuple[np.ndarray, np.ndarray]:
    hdbscan = pytest.importorskip("hdbscan")
    clusterer = hdbscan.HDBSCAN(metric="euclidean", core_dist_n_jobs=1, **settings).fit(points)
    return clusterer.labels_, clusterer.probabilities_


def _blobs(n: int, dim: int, seed: int) -> np.ndarray:
    """Unit vectors in many blobs of varied size and spread, plus scattered points: the shape
    of reduced answer embeddings (many small groups, some large ones, some loners)."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(3, 60, size=n // 25)
    centres = rng.standard_normal((len(sizes), dim))
    parts = [c + rng.uniform(0.05, 0.4) * rng.standard_normal((s, dim)) for c, s in zip(centres, sizes, strict=True)]
    parts.append(rng.standard_normal((max(0, n - int(sizes.sum())), dim)))
    points = np.concatenate(parts)[:n]
    return points / np.linalg.norm(points, axis=1, keepdims=True)


@pytest.mark.parametrize("min_samples", [1, 3])
def test_groups_match_hdbscan_on_many_blobs(min_samples: int) -> None:
    points = _blobs(3000, 32, seed=min_samples)
    settings = dict(min_cluster_size=3, min_samples=min_samples)
    expected, expected_prob = _reference(points, **settings)
    labels, prob = knn_hdbscan(points, **settings)
    assert adjusted_rand_score(expected, labels) > 0.97
    assert np.mean((expected < 0) == (labels < 0)) > 0.97
    assert labels.dtype == np.int64 and prob.shape == labels.shape
    assert np.all((prob >= 0) & (prob <= 1))


def test_groups_match_hdbscan_on_real_answers(encoder, datasets_dir) -> None:
    """Real answers of one corpus, reduced as the grouping reduces them."""
    import json

    from grouper.clustering import _reduce

    with open(datasets_dir / "semeval2013-beetle.jsonl", encoding="utf-8") as handle:
        texts = sorted({json.loads(line)["answer"].casefold() for line in handle})[:400]
    points = _reduce(encoder.encode(texts).vectors.astype(np.float64), 32)
    settings = dict(min_cluster_size=3, min_samples=1)
    expected, _ = _reference(points, **settings)
    # Few probes for the number of cells, as at 100,000 answers: the approximate search.
    labels, _ = knn_hdbscan(points, **settings, probes=4)
    assert adjusted_rand_score(expected, labels) > 0.97


def test_separate_far_apart_blobs_are_joined_into_one_tree() -> None:
    # Two tight groups far apart: the neighbour graph has two components, which must be
    # joined (else hdbscan's labelling fails) and still come out as two groups.
    rng = np.random.default_rng(0)
    a = rng.normal(0.0, 0.01, (40, 8))
    b = rng.normal(5.0, 0.01, (40, 8))
    labels, _ = knn_hdbscan(np.concatenate([a, b]), min_cluster_size=5, min_samples=1, neighbours=4)
    assert len(set(labels[:40])) == 1 and len(set(labels[40:])) == 1 and labels[0] != labels[40]


def test_is_deterministic_and_handles_tiny_inputs() -> None:
    points = _blobs(500, 16, seed=9)
    first = knn_hdbscan(points, min_cluster_size=3, min_samples=1)
    again = knn_hdbscan(points, min_cluster_size=3, min_samples=1)
    np.testing.assert_array_equal(first[0], again[0])
    np.testing.assert_array_equal(first[1], again[1])
    labels, prob = knn_hdbscan(points[:1], min_cluster_size=3, min_samples=1)
    assert labels.tolist() == [-1] and prob.tolist() == [0.0]
    # Exact duplicate points (distance 0) are neighbours like any other.
    doubled = np.concatenate([points[:50], points[:50]])
    labels, _ = knn_hdbscan(doubled, min_cluster_size=2, min_samples=1)
    assert np.array_equal(labels[:50], labels[50:])
