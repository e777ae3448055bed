"""The arithmetic of the APA benchmark (actions per answer), without any product code.

``../shared/benchmark-protocol.md`` defines the oracle instructor. For one question with N
answers, the instructor reviews the groups in the order the product shows them; in a group G
of majority gold label L, every member whose label is not L is moved out to the ungrouped
answers (1 action each) and G is confirmed and graded L (1 action). The ungrouped answers left
at the end are graded one by one (1 action each). APA is the number of actions over N.

This module counts those actions from gold labels alone. :mod:`grouper.evaluation.oracle`
performs them through the product's edit operations; both must agree, and the tests check
that they do. The one product function it uses is the text key of the exact-text
baseline (:func:`grouper.answers.exact_text_key`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Iterable, Sequence
from dataclasses import dataclass

from grouper.answers import exact_text_key  # the baseline's key; the product's grade check uses it too

#: The protocol's two modes: grouped once before review, or learning from the corrections.
MODES = ("zero-shot", "flywheel")
#: Questions with fewer answers are left out, as in the protocol.
MIN_ANSWERS = 20

__all__ = [
    "MIN_ANSWERS",
    "MODES",
    "ReviewCount",
    "count_review",
    "exact_text_key",
    "floor_apa",
    "groups_from_keys",
    "majority_label",
]


@dataclass(frozen=True)
class ReviewCount:
    """Actions the oracle instructor takes on one question.

    Attributes
    ----------
    answers : int
        N, the number of answers.
    group_reviews : int
        Groups confirmed and graded (1 action each).
    moves : int
        Answers moved out of a group whose majority grade they do not share.
    singles : int
        Answers graded one by one at the end (ungrouped ones and those moved out).
    """

    answers: int
    group_reviews: int
    moves: int
    singles: int

    @property
    def actions(self) -> int:
        """All actions taken."""
        return self.group_reviews + self.moves + self.singles

    @property
    def apa(self) -> float:
        """Actions per answer; 0 for a question without answers."""
        return self.actions / self.answers if self.answers else 0.0


def majority_label(labels: Sequence[Hashable]) -> Hashable:
    """The most frequent label; a tie goes to the label seen first.

    The members of a group are listed most typical first, so a tie is broken in favour of
    the label of the most typical member: what an instructor reading the group from the top
    would take as the group's grade. The number of actions does not depend on the choice.

    Parameters
    ----------
    labels : sequence of hashable, not empty
        Gold labels of a group's members, in the order the product lists them.

    Returns
    -------
    hashable
    """
    if not labels:
        raise ValueError("a group without members has no majority label")
    counts = Counter(labels)
    best = max(counts.values())
    return next(label for label in labels if counts[label] == best)


def count_review(groups: Iterable[Sequence[Hashable]], ungrouped: int) -> ReviewCount:
    """Count the oracle instructor's actions.

    Parameters
    ----------
    groups : iterable of sequences of hashable
        For each group, in review order, the gold labels of its members (not empty).
    ungrouped : int
        Answers in no group.

    Returns
    -------
    ReviewCount
    """
    reviews = moves = 0
    answers = ungrouped
    for labels in groups:
        label = majority_label(labels)
        reviews += 1
        moves += sum(1 for x in labels if x != label)
        answers += len(labels)
    return ReviewCount(answers=answers, group_reviews=reviews, moves=moves, singles=ungrouped)


def floor_apa(labels: Iterable[Hashable]) -> float:
    """The least APA possible: one perfect group per gold class.

    Parameters
    ----------
    labels : iterable of hashable
        Gold label of every answer.

    Returns
    -------
    float
        Number of distinct labels over the number of answers (0 without answers).
    """
    labels = list(labels)
    return len(set(labels)) / len(labels) if labels else 0.0


def groups_from_keys(keys: Sequence[Hashable]) -> list[list[int]]:
    """Indices grouped by equal key, largest group first (ties: first appearance).

    Parameters
    ----------
    keys : sequence of hashable

    Returns
    -------
    list of list of int
    """
    members: dict[Hashable, list[int]] = {}
    for i, key in enumerate(keys):
        members.setdefault(key, []).append(i)
    return sorted(members.values(), key=lambda m: (-len(m), m[0]))
