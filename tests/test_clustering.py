"""Grouping of answer embeddings (grouper.clustering), on real embeddings of small inputs."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from grouper.answers import load_answers
from grouper.clustering import UNGROUPED, Grouping, GroupingSettings, group_embeddings
from grouper.embedding import Encoder

SAMPLE_DATA = Path(__file__).resolve().parents[1] / "sample_data"
LEFTOVERS_TITLE = "(other answers)"  # the group of answers HDBSCAN left out, by default


@dataclass(frozen=True)
class Embedded:
    texts: list[str]
    vectors: np.ndarray


@pytest.fixture(scope="module")
def capital(encoder: Encoder) -> Embedded:
    """The sample question on Australia's capital (185 answers, blanks among them), embedded."""
    (question,) = load_answers(SAMPLE_DATA / "q1_capital_australia.csv")
    texts = [a.normalized for a in question.answers]
    return Embedded(texts, encoder.encode(texts).vectors)


def _embed(encoder: Encoder, texts: list[str]) -> tuple[np.ndarray, list[str]]:
    return encoder.encode(texts).vectors, texts


def _partition(grouping: Grouping, keys: list[int] | np.ndarray) -> set[frozenset[int]]:
    """The groups as sets of answer keys, plus the ungrouped answers as one set."""
    parts = {frozenset(int(keys[m]) for m in g.members) for g in grouping.groups}
    return parts | {frozenset(int(keys[i]) for i in grouping.ungrouped)}


def _check_invariants(grouping: Grouping, n: int) -> None:
    """Every answer in exactly one group or ungrouped; ids, confidence, order as promised."""
    assert grouping.labels.shape == (n,) and grouping.confidence.shape == (n,)
    ids = [g.group_id for g in grouping.groups]
    assert ids == list(range(1, len(ids) + 1))
    covered = sorted([m for g in grouping.groups for m in g.members] + grouping.ungrouped.tolist())
    assert covered == list(range(n))
    for group in grouping.groups:
        assert all(grouping.labels[m] == group.group_id for m in group.members)
        assert group.title
    assert np.all((grouping.confidence >= 0.0) & (grouping.confidence <= 1.0))
    assert not grouping.confidence[grouping.ungrouped].any()
    content = [g for g in grouping.groups if not g.blank]
    sizes = [len(g.members) for g in content]
    assert sizes == sorted(sizes, reverse=True)
    assert all(not g.blank for g in grouping.groups[: len(content)])  # the blank group is last


# --------------------------------------------------------------------------- real answers


def test_real_answers_group_by_meaning(capital: Embedded) -> None:
    grouping = group_embeddings(capital.vectors, capital.texts)
    _check_invariants(grouping, len(capital.texts))
    label = {t: int(grouping.labels[capital.texts.index(t)]) for t in ("Canberra", "canberra", "Sydney")}
    assert label["Canberra"] != UNGROUPED and label["Canberra"] == label["canberra"]
    assert label["Sydney"] != UNGROUPED and label["Sydney"] != label["Canberra"]


def test_members_are_ordered_most_typical_first_and_the_first_titles_the_group(capital: Embedded) -> None:
    grouping = group_embeddings(capital.vectors, capital.texts)
    for group in grouping.groups:
        if group.blank:
            continue
        block = capital.vectors[list(group.members)].astype(np.float64)
        centroid = block.mean(axis=0)
        similarity = block @ (centroid / np.linalg.norm(centroid))
        assert np.all(np.diff(similarity) <= 1e-6), group.group_id
        first = capital.texts[group.members[0]]
        assert group.title in (first, LEFTOVERS_TITLE) or (
            len(group.title) <= 60 and group.title.endswith("…") and first.startswith(group.title[:-1])
        )


def test_blank_answers_form_their_own_flagged_group(capital: Embedded) -> None:
    grouping = group_embeddings(capital.vectors, capital.texts)
    blank_indices = {i for i, t in enumerate(capital.texts) if not t}
    assert blank_indices  # the sample data has blank answers
    (blank,) = [g for g in grouping.groups if g.blank]
    assert set(blank.members) == blank_indices
    assert blank.title == "(blank)" and blank is grouping.groups[-1]
    assert np.all(grouping.confidence[list(blank_indices)] == 1.0)


def test_leftovers_are_one_group_or_stay_ungrouped_by_setting(capital: Embedded) -> None:
    kept = group_embeddings(capital.vectors, capital.texts, GroupingSettings(leftovers="ungrouped"))
    pooled = group_embeddings(capital.vectors, capital.texts, GroupingSettings(leftovers="group"))
    _check_invariants(kept, len(capital.texts))
    _check_invariants(pooled, len(capital.texts))
    assert len(kept.ungrouped) >= 3  # the sample has stray answers
    (leftovers,) = [g for g in pooled.groups if g.title == LEFTOVERS_TITLE]
    # The same answers: pooling changes where the leftovers go, not which they are.
    assert sorted(leftovers.members) == kept.ungrouped.tolist()
    assert len(pooled.ungrouped) == 0
    others = {frozenset(g.members) for g in pooled.groups if g.title != LEFTOVERS_TITLE}
    assert others == {frozenset(g.members) for g in kept.groups}


def test_the_same_input_gives_the_same_grouping(capital: Embedded) -> None:
    first = group_embeddings(capital.vectors, capital.texts)
    second = group_embeddings(capital.vectors.copy(), list(capital.texts))
    assert np.array_equal(first.labels, second.labels)
    assert np.array_equal(first.confidence, second.confidence)
    assert first.groups == second.groups


@pytest.mark.parametrize("seed", [0, 1])
def test_shuffled_input_gives_the_same_partition(capital: Embedded, seed: int) -> None:
    order = np.random.default_rng(seed).permutation(len(capital.texts))
    reference = group_embeddings(capital.vectors, capital.texts)
    shuffled = group_embeddings(capital.vectors[order], [capital.texts[i] for i in order])
    assert _partition(shuffled, order) == _partition(reference, np.arange(len(capital.texts)))


def test_shuffled_input_gives_the_same_partition_through_the_encoder(
    encoder: Encoder, capital: Embedded
) -> None:
    # Re-embedding in another order must not move an answer: batches depend on the texts,
    # not on their order.
    order = np.random.default_rng(7).permutation(len(capital.texts))
    texts = [capital.texts[i] for i in order]
    shuffled = group_embeddings(encoder.encode(texts).vectors, texts)
    reference = group_embeddings(capital.vectors, capital.texts)
    assert _partition(shuffled, order) == _partition(reference, np.arange(len(capital.texts)))


def test_spellings_equal_after_casefold_give_the_same_partition_in_any_order(encoder: Encoder) -> None:
    # "der Fuß" and "DER FUSS" are one text to the grouping but two to the encoder: the text's
    # vector was its first spelling's, so moving one row to the top moved "der Kopf".
    from grouper.references import References

    answers = (["der Fuß"] * 4 + ["DER FUSS"] + ["die Hand"] * 4 + ["die Hände"] * 2 + ["das Bein"] * 4
               + ["der Kopf"] * 3 + ["die Zehe"] * 3 + ["der Zeh"] * 2 + ["das Knie"] * 3 + ["ich weiß nicht"] * 2)
    references = References(("der Fuß",), encoder.encode(["der Fuß"]).vectors, "Welcher Körperteil hat Zehen?")
    partitions = []
    for order in (list(range(len(answers))), [4] + [i for i in range(len(answers)) if i != 4]):
        texts = [answers[i] for i in order]
        grouping = group_embeddings(encoder.encode(texts).vectors, texts, references=references)
        partitions.append(_partition(grouping, order))
    assert partitions[0] == partitions[1]


# --------------------------------------------------------------------------- small inputs


def test_no_answers(encoder: Encoder) -> None:
    grouping = group_embeddings(np.zeros((0, 384), dtype=np.float32), [])
    assert grouping.labels.shape == (0,) and grouping.groups == ()


def test_one_answer_is_ungrouped(encoder: Encoder) -> None:
    grouping = group_embeddings(*_embed(encoder, ["Canberra"]))
    _check_invariants(grouping, 1)
    assert grouping.labels.tolist() == [UNGROUPED]


def test_two_answers(encoder: Encoder) -> None:
    for texts in (["Canberra", "Sydney"], ["Canberra", "Canberra"]):
        grouping = group_embeddings(*_embed(encoder, texts))
        _check_invariants(grouping, 2)
        # Below the minimum group size of 3: nothing to group yet.
        assert grouping.labels.tolist() == [UNGROUPED, UNGROUPED]


@pytest.mark.parametrize("n", [3, 4, 50])
def test_identical_answers_make_one_group(encoder: Encoder, n: int) -> None:
    grouping = group_embeddings(*_embed(encoder, ["The capital is Canberra."] * n))
    _check_invariants(grouping, n)
    (group,) = grouping.groups
    assert sorted(group.members) == list(range(n)) and not group.blank
    assert group.title == "The capital is Canberra."
    assert np.all(grouping.confidence == 1.0)


def test_a_text_repeated_min_cluster_size_times_is_a_group(encoder: Encoder) -> None:
    texts = ["Canberra"] * 3 + ["photosynthesis", "the moon is made of cheese", "seventeen", "blue whale"]
    grouping = group_embeddings(*_embed(encoder, texts))
    _check_invariants(grouping, len(texts))
    assert len({int(grouping.labels[i]) for i in range(3)}) == 1 and grouping.labels[0] != UNGROUPED


def test_only_blank_answers(encoder: Encoder) -> None:
    grouping = group_embeddings(*_embed(encoder, ["", "", ""]))
    (group,) = grouping.groups
    assert group.blank and group.members == (0, 1, 2) and group.group_id == 1


def test_one_blank_answer_is_still_its_own_group(encoder: Encoder) -> None:
    grouping = group_embeddings(*_embed(encoder, ["Canberra", ""]))
    _check_invariants(grouping, 2)
    assert grouping.labels[0] == UNGROUPED
    (group,) = grouping.groups
    assert group.blank and group.members == (1,)


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (GroupingSettings(min_cluster_size=1), "min_cluster_size (1)"),
        (GroupingSettings(min_samples=0), "min_samples (0)"),
        (GroupingSettings(reduce_to=1), "reduce_to (1)"),
        (GroupingSettings(cluster_selection_method="dbscan"), "cluster_selection_method ('dbscan')"),
        (GroupingSettings(cluster_selection_epsilon=-0.5), "cluster_selection_epsilon (-0.5)"),
    ],
)
def test_invalid_settings_name_the_parameter_and_value(settings: GroupingSettings, named: str) -> None:
    with pytest.raises(ValueError) as info:
        group_embeddings(np.zeros((0, 384), dtype=np.float32), [], settings)
    assert named in str(info.value)


def test_vectors_and_texts_must_agree_in_length() -> None:
    with pytest.raises(ValueError, match="2 rows but there are 3 texts"):
        group_embeddings(np.zeros((2, 384), dtype=np.float32), ["a", "b", "c"])


def test_a_larger_minimum_group_size_is_honoured(capital: Embedded) -> None:
    settings = GroupingSettings(min_cluster_size=10)
    grouping = group_embeddings(capital.vectors, capital.texts, settings)
    _check_invariants(grouping, len(capital.texts))
    assert all(len(g.members) >= 10 for g in grouping.groups if not g.blank)


def test_raw_embeddings_without_reduction(capital: Embedded) -> None:
    grouping = group_embeddings(capital.vectors, capital.texts, GroupingSettings(reduce_to=None))
    _check_invariants(grouping, len(capital.texts))
    assert len(grouping.groups) >= 2
