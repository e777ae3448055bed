"""What the reviewer sees, and in which order: pure functions over embeddings and groups.

The grading UI shows a group's members least typical first (misplaced answers are the ones
to catch), a confidence cue per group, a queue of ungrouped and doubtful answers each with
the nearest group suggested, and a 2-D map of the answers. All of that is computed here,
from answer ids and their embeddings, so that the UI only draws and the same results are
testable without a browser. (The automatic k-way split is ``grouper.edits.auto_split_parts``.)

Embeddings are L2-normalised rows (``grouper.embedding.Encoder.encode``); the blank answer is
the zero vector and is never similar to anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from itertools import islice
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from grouper.edits import Change, QuestionState

__all__ = [
    "DOUBTFUL_LEAD",
    "ConfidenceCue",
    "GraderMoves",
    "QueueItem",
    "centroids",
    "chosen_preset",
    "confidence_cue",
    "grade_change_summary",
    "grader_moves",
    "GradeInUse",
    "grades_in_use",
    "least_typical_first",
    "listing_order",
    "preset_key",
    "no_suggestion_reason",
    "project_2d",
    "question_queue",
    "review_queue",
    "RubricSuggestion",
    "rubric_suggestion",
    "typicality",
]

#: A member less similar than this to its group's mean direction is "doubtful": it goes to
#: the review queue and lowers the group's confidence cue. MiniLM paraphrases of one idea sit
#: around 0.75-0.95 from their centroid; unrelated answers below 0.5.
DOUBTFUL_BELOW = 0.6
#: A group whose least typical member is at least this close is shown as "high".
HIGH_FROM = 0.8
#: A doubtful member is offered another group only when that group's centre is at least this
#: much more similar than its own group's. Measured on the benchmark corpora
#: (``benchmarks/review_queue.py``): offered whenever the other centre is closer at all, the
#: suggestions gave 165 harmful moves (the member had its group's grade, not the suggested
#: one's) against 111 useful ones; from a lead of 0.15 on, useful moves outnumber harmful ones
#: with and without reference answers. A member below the lead is still listed, without a move.
DOUBTFUL_LEAD = 0.15
#: A group is suggested for an answer only if its centre is at least this similar: below it,
#: "no group is close" is the honest suggestion (an "idk" belongs nowhere in particular).
SUGGEST_FROM = 0.5
#: Queue answers scored per matrix product (rows x groups float64: 1,024 x 1,000 is 8 MiB).
_QUEUE_BLOCK = 1024
#: Old groupmates kept per move to find where they are now: a majority vote needs few.
_SEPARATION_SAMPLE = 64


def _unit(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    return vector / norm if norm > 1e-12 else vector


def listing_order(state: QuestionState) -> list[int]:
    """The groups in the order the Groups page lists them: largest first, the blank group
    last, ties by id; "next group" follows it."""
    return sorted(state.groups, key=lambda g: (state.groups[g].blank, -len(state.groups[g].members), g))


def grade_change_summary(change: Change | None) -> str | None:
    """What an edit did to grades, in one sentence; ``None`` when no grade changed.

    Moving answers into a graded group, merging groups with different grades or deleting a
    graded group changes the grade of answers nobody graded one by one: the grader must be
    told, so that no grade changes silently.

    Parameters
    ----------
    change : Change or None
        ``state.last_change`` after the edit.

    Returns
    -------
    str or None
        For example ``"3 answers changed grade: 2 from 1 to 0, 1 from ungraded to 0."``;
        counts per (before, after), most first, ties in the order of the answers.
    """
    if change is None or not change.grade_changes:
        return None

    def score(grade) -> str:
        return "ungraded" if grade is None else f"{grade.score:g}"

    counts: dict[tuple[str, str], int] = {}
    for gc in change.grade_changes:
        key = (score(gc.before), score(gc.after))
        counts[key] = counts.get(key, 0) + 1
    n = len(change.grade_changes)
    parts = sorted(counts.items(), key=lambda item: -item[1])
    if len(parts) == 1:
        (before, after), _ = parts[0]
        detail = f"from {before} to {after}"
    else:
        detail = ", ".join(f"{k} from {before} to {after}" for (before, after), k in parts)
    return f"{n} answer{'' if n == 1 else 's'} changed grade: {detail}."


class GradeInUse(NamedTuple):
    """A grade given in the question, and how often: what "Grade as before" offers."""

    score: float
    comment: str
    uses: int
    items: tuple[int, ...] = ()  # rubric items: given again, it follows their current points
    adjustment: float = 0.0  # with items: the point adjustment on top of them


def preset_key(preset: GradeInUse) -> str:
    """What a "grade as before" box holds for a grade given before: the grade itself (score,
    comment, rubric items, adjustment), not its place in the list. The list is sorted by use
    and re-sorted as graders work, so a place chosen would name another grade after a rerun.

    Parameters
    ----------
    preset : GradeInUse

    Returns
    -------
    str
    """
    return json.dumps([preset.score, preset.comment, list(preset.items), preset.adjustment])


def chosen_preset(presets: Sequence[GradeInUse], key: str | None) -> GradeInUse | None:
    """The grade given before that ``key`` (:func:`preset_key`) names, or ``None`` when
    nothing is chosen or that grade is no longer among ``presets``.

    Parameters
    ----------
    presets : sequence of GradeInUse
    key : str or None

    Returns
    -------
    GradeInUse or None
    """
    return next((p for p in presets if preset_key(p) == key), None)


def grades_in_use(state: QuestionState) -> list[GradeInUse]:
    """The grades given in a question so far, to give again in one click.

    Each distinct grade (score, comment, rubric items and adjustment) counts once per group graded with it
    and once per answer given it as its own grade: graders reuse the same few grades, and
    typing one again risks a slip (1 for 1.5, or the comment worded another way for the same
    mistake).

    Parameters
    ----------
    state : QuestionState

    Returns
    -------
    list of GradeInUse
        Most used first; ties by higher score, then comment.
    """
    uses: dict[tuple[float, str, tuple[int, ...], float], int] = {}
    grades = [g.grade for g in state.groups.values() if g.grade is not None] + list(state.overrides.values())
    for grade in grades:
        key = (grade.score, grade.comment, grade.items, grade.adjustment)
        uses[key] = uses.get(key, 0) + 1
    found = [GradeInUse(s, c, n, items, adj) for (s, c, items, adj), n in uses.items()]
    return sorted(found, key=lambda g: (-g.uses, -g.score, g.comment, g.items, g.adjustment))


def typicality(vectors: np.ndarray) -> np.ndarray:
    """Cosine similarity of each row to the rows' mean direction.

    Parameters
    ----------
    vectors : ndarray of shape (n, dim)

    Returns
    -------
    ndarray of shape (n,), float64
        In [-1, 1]; 1.0 for every row of a one-row block and of a block of zero rows only
        (the blank group: blank answers are all alike), so that neither looks doubtful; -1.0
        for a zero row among others (a blank answer in a group of written ones is as
        doubtful as a member can be).
    """
    block = np.asarray(vectors, dtype=np.float64)
    if len(block) == 0:
        return np.zeros(0)
    norms = np.linalg.norm(block, axis=1)
    if len(block) == 1 or not norms.any():
        return np.ones(len(block))
    centroid = _unit(block.mean(axis=0))
    similarity = (block @ centroid) / np.maximum(norms, 1e-12)
    similarity[norms <= 1e-12] = -1.0
    # Round so float noise between identical answers cannot reorder them.
    return np.round(similarity, 9)


def least_typical_first(
    member_ids: Sequence[str], vectors: Mapping[str, np.ndarray]
) -> list[tuple[str, float]]:
    """Members ordered least typical first, with their typicality.

    Ties keep the order of ``member_ids`` (the state's order, most typical first), so the
    listing is stable from one click to the next.

    Parameters
    ----------
    member_ids : sequence of str
    vectors : mapping of answer id to ndarray of shape (dim,)

    Returns
    -------
    list of (answer_id, typicality)
    """
    if not member_ids:
        return []
    sims = typicality(np.stack([vectors[a] for a in member_ids]))
    order = np.lexsort((np.arange(len(member_ids)), sims))
    return [(member_ids[i], float(sims[i])) for i in order]


@dataclass(frozen=True)
class ConfidenceCue:
    """How sure the grouping is about one group.

    Attributes
    ----------
    level : {"high", "medium", "low"}
    lowest : float
        Typicality of the least typical member.
    doubtful : int
        Members below ``DOUBTFUL_BELOW``.
    """

    level: str
    lowest: float
    doubtful: int

    @property
    def symbol(self) -> str:
        """A compact cue for lists: three, two or one filled dots."""
        return {"high": "●●●", "medium": "●●○", "low": "●○○"}[self.level]


def confidence_cue(similarities: Sequence[float] | np.ndarray) -> ConfidenceCue:
    """The cue of a group from its members' typicality (see :func:`typicality`)."""
    sims = np.asarray(similarities, dtype=np.float64)
    if len(sims) == 0:
        return ConfidenceCue("high", 1.0, 0)
    lowest = float(sims.min())
    doubtful = int((sims < DOUBTFUL_BELOW).sum())
    level = "high" if lowest >= HIGH_FROM else ("medium" if doubtful == 0 else "low")
    return ConfidenceCue(level, lowest, doubtful)


def centroids(
    groups: Mapping[int, Sequence[str]], vectors: Mapping[str, np.ndarray]
) -> tuple[list[int], np.ndarray]:
    """Unit mean direction of each non-empty group with some non-blank member.

    Returns
    -------
    group_ids : list of int
    centres : ndarray of shape (len(group_ids), dim)
    """
    ids: list[int] = []
    rows: list[np.ndarray] = []
    for gid, members in groups.items():
        if not members:
            continue
        mean = np.mean([vectors[a] for a in members], axis=0).astype(np.float64)
        if np.linalg.norm(mean) <= 1e-12:
            continue  # the blank group attracts nothing
        ids.append(gid)
        rows.append(_unit(mean))
    dim = len(next(iter(vectors.values()))) if vectors else 0
    return ids, (np.stack(rows) if rows else np.zeros((0, dim)))


class RubricSuggestion(NamedTuple):
    """The rubric items of the graded group most like an ungraded one: a grader who agrees
    ticks them all in one key instead of one key per item."""

    group_id: int
    items: tuple[int, ...]
    similarity: float  # cosine of the two groups' mean directions


def rubric_suggestion(state: QuestionState, vectors: Mapping[str, np.ndarray], group_id: int) -> RubricSuggestion | None:
    """The items of the group graded by the rubric whose answers are most like ``group_id``'s.

    Groups of similar answers usually earn the same items (the same merit, the same mistake),
    so the nearest rubric-graded group is the best guess at what this one earns. Nothing is
    suggested when no other group is graded by the rubric, when the group is blank, or when
    the nearest is less similar than :data:`SUGGEST_FROM` (the same bar as the queue's group
    suggestions): a far group's items would be a guess, not a suggestion.

    Parameters
    ----------
    state : QuestionState
    vectors : mapping of answer id to ndarray of shape (dim,)
        Unit embeddings of the question's answers (blank: the zero vector).
    group_id : int
        The group to suggest items for.

    Returns
    -------
    RubricSuggestion or None
        Ties go to the lower group id, so the suggestion is stable from one run to the next.
    """
    graded = {
        gid: g.members
        for gid, g in sorted(state.groups.items())
        if gid != group_id and g.grade is not None and g.grade.items
    }
    if not graded or group_id not in state.groups:
        return None
    ids, centres = centroids({group_id: state.groups[group_id].members, **graded}, vectors)
    if not ids or ids[0] != group_id or len(ids) < 2:
        return None  # the group is blank, or no graded group has a non-blank member
    sims = centres[1:] @ centres[0]
    best = int(np.argmax(sims))  # the first of equals: the lowest group id
    if float(sims[best]) < SUGGEST_FROM:
        return None
    gid = ids[1 + best]
    return RubricSuggestion(gid, state.groups[gid].grade.items, float(sims[best]))  # type: ignore[union-attr]


@dataclass(frozen=True)
class GraderMoves:
    """What the graders' own moves say about where answers belong.

    Attributes
    ----------
    moved_away_from : mapping of str to frozenset of int
        Per answer a grader moved out of a group: the groups that now hold most of the
        answers it was moved away from (the group itself, or the one it was merged into).
    placed : frozenset of str
        Answers whose place a grader chose: their last change of group still in effect is a
        grader's move, into the group they are in or out to the ungrouped answers.
    avoid : mapping of str to frozenset of int
        Per answer of ``moved_away_from``: the groups not to suggest for it. Those groups, and
        every group graded as one of them is (same score and rubric items): moving an answer
        there would give it the grade a grader judged it should not have.
    """

    moved_away_from: Mapping[str, frozenset[int]]
    placed: frozenset[str]
    avoid: Mapping[str, frozenset[int]] = field(default_factory=dict)


def grader_moves(state: QuestionState) -> GraderMoves:
    """The graders' moves still in effect, read from the state's undo records.

    Only moves count: a merge, split or delete regroups whole groups, not one answer a
    grader read. Moves by a model (``model:`` authors: regrouping, adaptation) and undone
    moves say nothing; a move undone and then redone counts again. A person's undo of a
    model's edit (a regroup's move, say) places the answers it puts back. When a grader
    later moves an answer back into the group it was moved out of, that earlier separation
    ends.

    Parameters
    ----------
    state : QuestionState

    Returns
    -------
    GraderMoves
    """
    from grouper.edits import GradeKind, grade_kind
    from grouper.regroup import is_model_author  # light, but keeps this module's imports to numpy

    separations: dict[str, list[frozenset[str]]] = {}
    last_kind: dict[str, bool] = {}  # answer -> its last live change of group was a grader's move
    for edit_id in sorted(state.records):
        record = state.records[edit_id]
        if edit_id in state.undone or not record.locations_before:
            continue
        if record.undoes is not None:
            # A person's undo of a model's edit rejects it: the answers it puts back are
            # placed there by that person, so the next regroup must not move them again. Any
            # other undo only returns to what was before, which says what it said then.
            if is_model_author(state.records[record.undoes].author) and not is_model_author(record.author):
                for answer_id in record.locations_before:
                    last_kind[answer_id] = True
            continue
        by_grader = record.kind == "move" and not is_model_author(record.author)
        for answer_id in record.locations_before:
            last_kind[answer_id] = by_grader
        if not by_grader:
            continue
        moved = record.locations_before.keys()
        sources = set(record.locations_before.values())
        # A move changes its target group too (unless to the ungrouped answers or a new group).
        target = next((g for g in record.groups_before if g not in sources), None)
        target_before = getattr(record.groups_before.get(target), "members", ()) if target is not None else ()
        into: frozenset[str] | None = None
        for answer_id, source in record.locations_before.items():
            earlier = separations.get(answer_id)
            if earlier and target_before:
                # Moved into a group that held its old groupmates: that separation is taken back.
                into = frozenset(target_before) if into is None else into
                separations[answer_id] = [s for s in earlier if 2 * len(s & into) < len(s)]
            if source is None:
                continue
            members = getattr(record.groups_before.get(source), "members", ())
            kept = _first(m for m in members if m not in moved)
            if kept:
                separations.setdefault(answer_id, []).append(kept)
    graded_as: dict[GradeKind, set[int]] = {}
    for gid, group in state.groups.items():
        if group.grade is not None:
            graded_as.setdefault(grade_kind(group.grade), set()).add(gid)
    away: dict[str, frozenset[int]] = {}
    avoid: dict[str, frozenset[int]] = {}
    for answer_id, sets in separations.items():
        holders = {g for g in (_holder(state, s) for s in sets) if g is not None}
        if holders:
            away[answer_id] = frozenset(holders)
            rejected = (state.groups[g].grade for g in holders)
            avoid[answer_id] = frozenset(holders.union(*(graded_as[grade_kind(r)] for r in rejected if r is not None)))
    placed = frozenset(a for a, mine in last_kind.items() if mine)
    return GraderMoves(away, placed, avoid)


def _first(items: Iterable[str]) -> frozenset[str]:
    """The first ``_SEPARATION_SAMPLE`` items: enough old groupmates to find where they went,
    without copying a group of thousands for every answer moved out of it."""
    return frozenset(islice(items, _SEPARATION_SAMPLE))


def _holder(state: QuestionState, members: frozenset[str]) -> int | None:
    """The group holding most of those of ``members`` that are in a group now, if one holds
    at least half of them: old groupmates moved out since say nothing about where the rest went."""
    counts: dict[int, int] = {}
    for m in members:
        g = state.location.get(m)
        if g is not None:
            counts[g] = counts.get(g, 0) + 1
    if not counts:
        return None
    best = min(counts, key=lambda g: (-counts[g], g))
    return best if 2 * counts[best] >= sum(counts.values()) else None


@dataclass(frozen=True)
class QueueItem:
    """An answer that needs a look, with where it probably belongs.

    Attributes
    ----------
    answer_id : str
    current_group : int or None
        ``None`` for an ungrouped answer.
    suggested_group : int or None
        The nearest other group; ``None`` when there is none.
    similarity : float
        Cosine similarity to the suggested group's centre (0 without a suggestion).
    reason : {"ungrouped", "doubtful"}
    current_similarity : float
        For a doubtful member, its cosine similarity to its own group's centre (0 otherwise):
        shown beside ``similarity``, since the lead is often small.
    """

    answer_id: str
    current_group: int | None
    suggested_group: int | None
    similarity: float
    reason: str
    current_similarity: float = 0.0


def review_queue(
    groups: Mapping[int, Sequence[str]],
    ungrouped: Sequence[str],
    vectors: Mapping[str, np.ndarray],
    *,
    settled: frozenset[int] | set[int] = frozenset(),
    doubtful_below: float = DOUBTFUL_BELOW,
    suggest_from: float = SUGGEST_FROM,
    moves: GraderMoves | None = None,
    doubtful_lead: float = DOUBTFUL_LEAD,
) -> list[QueueItem]:
    """The ungrouped queue: ungrouped answers, then doubtful members of unsettled groups.

    A member is doubtful when its typicality in its group is below ``doubtful_below`` and
    another group's centre is closer than its own, and at least ``suggest_from`` similar. That
    group is suggested only when it leads the member's own by ``doubtful_lead`` or more;
    otherwise the member is listed with no suggestion (``suggested_group`` ``None``).
    Members of ``settled`` groups (confirmed by a person, or the blank group) are never
    second-guessed. An ungrouped answer with no group at least ``suggest_from`` similar is
    listed without a suggestion.

    With ``moves`` (:func:`grader_moves`), the queue follows the graders: an answer a grader
    moved out of a group is never suggested back into the group holding its old groupmates
    (on the benchmark corpora, half of the answers moved out were suggested straight back),
    nor into a group graded as that one is (``GraderMoves.avoid``), and a member a grader
    moved into its group is not second-guessed.

    Parameters
    ----------
    groups : mapping of group id to member answer ids
    ungrouped : sequence of answer ids
    vectors : mapping of answer id to ndarray of shape (dim,)
    settled : set of int
    doubtful_below : float
    suggest_from : float
    moves : GraderMoves, optional
    doubtful_lead : float

    Returns
    -------
    list of QueueItem
        Ungrouped answers first (most confidently placeable first), then doubtful ones
        (least typical first).
    """
    ids, centres = centroids(groups, vectors)
    column = {gid: j for j, gid in enumerate(ids)}
    away = moves.avoid if moves is not None else {}
    placed = moves.placed if moves is not None else frozenset()

    def nearest(answer_ids: Sequence[str], own: Sequence[int | None]) -> list[tuple[int | None, float, float]]:
        """Per answer: the most similar group other than its own and those to avoid for it
        (``None`` below ``suggest_from``), that similarity, and the one to its own group.
        Scored in blocks of answers: one matrix product each, not one per answer."""
        out: list[tuple[int | None, float, float]] = []
        for start in range(0, len(answer_ids), _QUEUE_BLOCK):
            chunk = answer_ids[start : start + _QUEUE_BLOCK]
            if not ids:
                out.extend((None, 0.0, 0.0) for _ in chunk)
                continue
            block = np.stack([np.asarray(vectors[a], dtype=np.float64) for a in chunk])
            sims = block @ centres.T
            mine = np.array([column.get(g, -1) if g is not None else -1 for g in own[start : start + len(chunk)]])
            has_own = mine >= 0
            own_sims = np.where(has_own, sims[np.arange(len(chunk)), np.maximum(mine, 0)], 0.0)
            sims[np.flatnonzero(has_own), mine[has_own]] = -np.inf
            for row, answer_id in enumerate(chunk):
                for gid in away.get(answer_id, ()):
                    if gid in column:
                        sims[row, column[gid]] = -np.inf
            best = sims.argmax(axis=1)
            best_sims = sims[np.arange(len(chunk)), best]
            blank = np.einsum("ij,ij->i", block, block) <= 1e-24
            for row in range(len(chunk)):
                if blank[row] or not np.isfinite(best_sims[row]) or best_sims[row] < suggest_from:
                    out.append((None, 0.0, float(own_sims[row])))
                else:
                    out.append((ids[int(best[row])], float(best_sims[row]), float(own_sims[row])))
        return out

    waiting = list(ungrouped)
    items = [
        QueueItem(answer_id, None, gid, sim, "ungrouped")
        for answer_id, (gid, sim, _) in zip(waiting, nearest(waiting, [None] * len(waiting)), strict=True)
    ]
    items.sort(key=lambda item: -item.similarity)

    candidates: list[tuple[str, int, float]] = []  # (answer, its group, its typicality there)
    for gid, members in groups.items():
        if gid in settled or len(members) < 2:
            continue
        for answer_id, sim in least_typical_first(members, vectors):
            if sim >= doubtful_below:
                break
            if answer_id not in placed:
                candidates.append((answer_id, gid, sim))
    doubtful: list[tuple[float, QueueItem]] = []
    found = nearest([a for a, _, _ in candidates], [g for _, g, _ in candidates])
    for (answer_id, gid, sim), (other, other_sim, own) in zip(candidates, found, strict=True):
        if sim <= -1.0:  # a blank answer in a group of written ones: listed, with no group to offer
            doubtful.append((sim, QueueItem(answer_id, gid, None, 0.0, "doubtful", own)))
            continue
        if other is None or other_sim <= own:
            continue
        if other_sim - own >= doubtful_lead:
            doubtful.append((sim, QueueItem(answer_id, gid, other, other_sim, "doubtful", own)))
        else:
            doubtful.append((sim, QueueItem(answer_id, gid, None, 0.0, "doubtful", own)))
    doubtful.sort(key=lambda pair: pair[0])
    return items + [item for _, item in doubtful]


def question_queue(
    state: QuestionState, vectors: Mapping[str, np.ndarray], moves: GraderMoves | None = None
) -> list[QueueItem]:
    """A question's review queue as the queue page and ``grouper queue`` show it.

    :func:`review_queue` of the state's groups and of its ungrouped answers still waiting for a
    grade (one graded on its own is done), following the graders' moves. Confirmed groups, the
    blank group and the groups a grader merged, split, renamed or made
    (:func:`grouper.regroup.shaped_groups`) are settled: their members are not second-guessed
    as doubtful, which after a grader's split would mostly suggest moving them back; nor are
    members whose grade a grader checked as right.

    Parameters
    ----------
    state : QuestionState
    vectors : mapping of answer id to ndarray of shape (dim,)
    moves : GraderMoves, optional
        ``grader_moves(state)``, when the caller has it already.

    Returns
    -------
    list of QueueItem
    """
    from grouper.edits import CONFIRMED
    from grouper.regroup import shaped_groups

    settled = set(shaped_groups(state))
    settled.update(g for g, group in state.groups.items() if group.status == CONFIRMED or group.blank)
    waiting = [a for a in state.ungrouped if a not in state.overrides]
    groups = {g: group.members for g, group in state.groups.items()}
    moves = grader_moves(state) if moves is None else moves
    # A member whose grade a grader checked as right ("Looks right") is where it belongs, as
    # far as grading goes: suggesting a group graded otherwise would undo that check's word.
    checked = frozenset(a for members in groups.values() for a in members if state.grade_check(a) is not None)
    if checked:
        moves = replace(moves, placed=moves.placed | checked)
    return review_queue(groups, waiting, vectors, settled=settled, moves=moves)


def no_suggestion_reason(moves: GraderMoves, item: QueueItem | str) -> str:
    """Why the queue suggests no group for an answer: none is close, or the close ones are
    those a grader moved it away from, or graded as they are; for a doubtful member, that no
    other group is clearly closer than its own (:data:`DOUBTFUL_LEAD`).

    Parameters
    ----------
    moves : GraderMoves
    item : QueueItem or str
        The queue's item, or an answer id (read as an answer waiting in no group).

    Returns
    -------
    str
        Plain text, for example ``"no other group is close (moved out of group 3)"``.
    """
    if isinstance(item, QueueItem) and item.reason == "doubtful":
        return (
            f"no other group is clearly closer ({item.current_similarity:.2f} to group {item.current_group}, where it is)"
        )
    answer_id = item.answer_id if isinstance(item, QueueItem) else item
    away = sorted(moves.moved_away_from.get(answer_id, ()))
    if not away:
        return "no group is close"
    named = ", ".join(map(str, away))
    if moves.avoid.get(answer_id, frozenset()) - set(away):
        return f"no group suggested: moved out of group {named}; groups graded as it is are left out"
    return f"no other group is close (moved out of group {named})"


def project_2d(vectors: np.ndarray) -> np.ndarray:
    """A 2-D map of the answers: PCA onto the two main directions, with fixed signs.

    Parameters
    ----------
    vectors : ndarray of shape (n, dim)

    Returns
    -------
    ndarray of shape (n, 2), float64
        Deterministic for the same input; fewer than 3 answers lie on the x axis.
    """
    data = np.asarray(vectors, dtype=np.float64)
    n = len(data)
    out = np.zeros((n, 2))
    if n < 3:
        out[:, 0] = np.arange(n, dtype=np.float64)
        return out
    from sklearn.decomposition import PCA

    components = min(2, data.shape[1], n - 1)
    projected = PCA(n_components=components, svd_solver="full", random_state=0).fit_transform(data)
    # PCA's sign is arbitrary; fix it so the map does not flip between runs or machines.
    for j in range(components):
        column = projected[:, j]
        if column[np.argmax(np.abs(column))] < 0:
            projected[:, j] = -column
    out[:, :components] = projected
    return out
