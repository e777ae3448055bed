"""The training signal in the edit log: must-link and cannot-link pairs of answers.

Each edit says something about which answers belong together:

=================  ==========================================================================
edit               pairs
=================  ==========================================================================
confirm            must-link every pair of the group's members
grade (a group)    must-link its members graded alike; cannot-link each member with each
                   answer, in the group or another, graded otherwise (each answer by the
                   grade it has: its own where it has one, else its group's)
grade_answer       cannot-link the answer with its group's members graded otherwise
merge              must-link across the merged groups
split              cannot-link across the parts
move               cannot-link each moved answer with the group it left; must-link it with
                   the members of the group it joined (none when it went to ungrouped)
check_grades       must-link each checked answer with the members of its group graded as it
                   is; cannot-link it with those graded apart (the answers a grader looks at
                   again are the doubtful ones: a check that they belong is a hard positive)
delete, rename     none (a deleted group may just be junk; a title is not about membership)
undo               removes what the undone edit gave (undoing an undo gives it back)
=================  ==========================================================================

A grade that is corrected takes back what the old one said: grading a group as another graded
group is, clearing a group's grade, or an answer's own grade cleared or set to its group's,
withdraws the cannot-links an earlier *grade* gave between those answers (not a split's or a
move's, which are about grouping: one that a grade's cannot-link had repeated stands again).
A pair a grade gave also stands only while the grades at the end of the log agree with it, so
an undone grade takes back what later grades said against it. Edits by a model (``model:``
authors: regrouping, adaptation) give no pairs and withdraw none: a model must neither learn
from its own guesses nor overwrite what a person said.

When edits disagree about a pair, the latest edit wins, among every person's edits: a filter
chooses among the pairs so decided, so a pair that a later edit reversed never comes back
because that edit is filtered out. A blank answer gives no pairs (it has no text to learn
from; it is embedded as zeros, not by the encoder). Each pair (a
:class:`grouper.pairs.TrainingPair`, with both answers' normalised texts) carries the edit and
the author it came from. A big group gives quadratically many pairs: ``max_pairs_per_edit``
caps each edit's share by uniform sampling with a seeded generator, so the output is
reproducible.

:func:`question_pairs` works on a log in memory; :func:`training_pairs` reads a store. Both
take a :class:`PairFilter` (questions, authors, time window, kinds) so that fine-tuning can
choose its data.
"""

from __future__ import annotations

import bisect
import math
import random
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from grouper.access import canonical_author
from grouper.answers import Answer
from grouper.edits import (
    CheckGrades,
    Confirm,
    Edit,
    Grade,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    QuestionState,
    Split,
    apply,
    grade_kind,
)
from grouper.pairs import TrainingPair
from grouper.store import filing_key

__all__ = [
    "CANNOT_LINK",
    "MUST_LINK",
    "PAIR_KINDS",
    "PAIR_SOURCES",
    "PairFilter",
    "PairSettings",
    "correction_pairs",
    "course_questions",
    "question_pairs",
    "training_pairs",
]

MUST_LINK = "must_link"
CANNOT_LINK = "cannot_link"
#: The edit kinds that give pairs (see the table above).
PAIR_KINDS = (Confirm.kind, GradeGroup.kind, GradeAnswer.kind, Merge.kind, Split.kind, Move.kind, CheckGrades.kind)
# Not a pair: the grade-given cannot-links between the two sides are withdrawn.
_WITHDRAW = "withdraw"
# Edits whose pairs come from grades, and which a later grade can take back.
_GRADE_KINDS = frozenset({GradeGroup.kind, GradeAnswer.kind, CheckGrades.kind})


@dataclass(frozen=True)
class PairFilter:
    """Which edits give pairs. ``None`` means no restriction.

    Attributes
    ----------
    question_ids : frozenset of str, optional
    authors : frozenset of str, optional
    since, until : datetime, optional
        Edits at or after ``since`` and before ``until`` (timezone-aware).
    kinds : frozenset of str, optional
        Edit kinds, e.g. ``{"merge", "split"}``.
    """

    question_ids: frozenset[str] | None = None
    authors: frozenset[str] | None = None
    since: datetime | None = None
    until: datetime | None = None
    kinds: frozenset[str] | None = None

    def __post_init__(self) -> None:
        if self.authors is not None:
            # One spelling per person: an address logged as "Ben@Example.edu" is "ben@...".
            object.__setattr__(self, "authors", frozenset(map(canonical_author, self.authors)))
        # A filter that can match nothing by construction is a typo, not an empty answer.
        if self.kinds is not None:
            unknown = sorted(set(self.kinds) - set(PAIR_KINDS))
            if unknown:
                raise ValueError(
                    f"edit kind(s) {', '.join(map(repr, unknown))} give no pairs; the kinds that do: {', '.join(PAIR_KINDS)}"
                )
        if self.since is not None and self.until is not None and self.since >= self.until:
            raise ValueError(f"since ({self.since.isoformat()}) must be before until ({self.until.isoformat()})")

    def admits(self, edit: Edit) -> bool:
        """True when ``edit`` may give pairs."""
        return (
            (self.question_ids is None or edit.question_id in self.question_ids)
            and (self.authors is None or canonical_author(edit.author) in self.authors)
            and (self.since is None or edit.at >= self.since)
            and (self.until is None or edit.at < self.until)
            and (self.kinds is None or edit.kind in self.kinds)
        )


@dataclass(frozen=True)
class PairSettings:
    """How many pairs one edit may give.

    Attributes
    ----------
    max_pairs_per_edit : int or None
        Sample this many when an edit implies more (``None``: keep all).
    seed : int
        Seeds the sampling; the same log and seed give the same pairs.
    """

    max_pairs_per_edit: int | None = 5000
    seed: int = 0

    def __post_init__(self) -> None:
        if self.max_pairs_per_edit is not None and self.max_pairs_per_edit < 1:
            raise ValueError(f"max_pairs_per_edit ({self.max_pairs_per_edit}) must be at least 1, or None for no cap")


# --------------------------------------------------------------------------- pair blocks

# A block is a set of pairs described without listing them: every pair within one sequence,
# or every pair across two. Sampling picks indices into the blocks, so an edit over a group of
# 10,000 answers never materialises its 50 million pairs.


@dataclass(frozen=True, slots=True)
class _Block:
    label: str
    first: Sequence[str]
    second: Sequence[str] | None = None  # None: pairs within ``first``

    @property
    def size(self) -> int:
        n = len(self.first)
        return n * (n - 1) // 2 if self.second is None else n * len(self.second)

    def pair(self, index: int) -> tuple[str, str]:
        if self.second is not None:
            return self.first[index // len(self.second)], self.second[index % len(self.second)]
        # Pairs (i, j), i < j, numbered j(j-1)/2 + i.
        j = (1 + math.isqrt(1 + 8 * index)) // 2
        while j * (j - 1) // 2 > index:
            j -= 1
        while (j + 1) * j // 2 <= index:
            j += 1
        return self.first[index - j * (j - 1) // 2], self.first[j]

    def pairs(self) -> Iterator[tuple[str, str]]:
        if self.second is not None:
            for a in self.first:
                for b in self.second:
                    yield a, b
        else:
            for j, b in enumerate(self.first):
                for a in self.first[:j]:
                    yield a, b


def _graded_apart(a: Grade, b: Grade) -> bool:
    """Two grades a grader would not give one group: other points, or other rubric items at
    the same points (:func:`grouper.edits.grade_kind`)."""
    return grade_kind(a) != grade_kind(b)


def _by_grade(state: QuestionState, members: Iterable[str]) -> dict[Any, tuple[str, ...]]:
    """Members by the grade each has (:func:`grouper.edits.grade_kind` of its own grade, else
    its group's); ``None`` for the ungraded. A member with partial credit is graded apart from
    its group."""
    parts: dict[Any, list[str]] = {}
    for m in members:
        grade = state.grade_of(m)
        parts.setdefault(None if grade is None else grade_kind(grade), []).append(m)
    return {kind: tuple(ms) for kind, ms in parts.items()}


def _between_grades(
    mine: Mapping[Any, Sequence[str]], theirs: Mapping[Any, Sequence[str]]
) -> list[_Block]:
    """Cannot-link the answers of ``mine`` with those of ``theirs`` graded otherwise; withdraw
    the grade-given cannot-links of those graded alike or not graded."""
    blocks = []
    for kind, first in mine.items():
        for other, second in theirs.items():
            apart = kind is not None and other is not None and kind != other
            blocks.append(_Block(CANNOT_LINK if apart else _WITHDRAW, first, second))
    return blocks


def _edit_blocks(before: QuestionState, after: QuestionState, edit: Edit) -> list[_Block]:
    p = edit.payload
    kind = edit.kind
    if kind == "confirm":
        return [_Block(MUST_LINK, after.groups[p.group_id].members)]
    if isinstance(p, GradeGroup):
        # Each member is linked by the grade it has, which is its own where it has one.
        group = after.groups[p.group_id]
        mine = _by_grade(after, group.members)
        blocks = [_Block(MUST_LINK, ms) for k, ms in mine.items() if k is not None]
        kinds = list(mine)
        for i, k in enumerate(kinds):  # within the group: graded apart, or no longer
            blocks += _between_grades({k: mine[k]}, {j: mine[j] for j in kinds[i + 1 :]})
        for other in after.groups.values():
            if other.group_id != group.group_id:
                blocks += _between_grades(mine, _by_grade(after, other.members))
        if p.clears:  # a clear takes back; it says nothing new about the members with grades of their own
            blocks = [b for b in blocks if b.label == _WITHDRAW]
        return blocks
    if isinstance(p, GradeAnswer):
        group_id = after.location[p.answer_id]
        if group_id is None:
            return []
        mates = (m for m in after.groups[group_id].members if m != p.answer_id)
        # Its own grade cleared or set to its group's: no longer apart from its mates.
        return _between_grades(_by_grade(after, (p.answer_id,)), _by_grade(after, mates))
    if isinstance(p, Merge):
        parts = [before.groups[p.into].members, *(before.groups[g].members for g in p.others)]
        return [_Block(MUST_LINK, parts[i], parts[j]) for i in range(len(parts)) for j in range(i + 1, len(parts))]
    if isinstance(p, Split):
        parts = [after.groups[p.group_id].members, *(after.groups[g].members for g in after.last_change.groups_created)]
        return [_Block(CANNOT_LINK, parts[i], parts[j]) for i in range(len(parts)) for j in range(i + 1, len(parts))]
    if isinstance(p, Move):
        moved = after.last_change.answers_moved
        blocks: list[_Block] = []
        by_source: dict[int, list[str]] = {}
        for a in moved:
            source = before.location[a]
            if source is not None:
                by_source.setdefault(source, []).append(a)
        for source, out in by_source.items():
            blocks.append(_Block(CANNOT_LINK, tuple(out), after.groups[source].members))
        dest = after.location[moved[0]] if moved else None
        if dest is not None:
            moved_set = set(moved)
            stayers = tuple(m for m in after.groups[dest].members if m not in moved_set)
            blocks.append(_Block(MUST_LINK, tuple(moved), stayers))
            blocks.append(_Block(MUST_LINK, tuple(moved)))
        return blocks
    if isinstance(p, CheckGrades):
        checked: list[_Block] = []
        for a in after.last_change.grades_checked:
            group_id = after.location[a]
            if group_id is None:
                continue
            grade = after.grade_of(a)
            assert grade is not None  # only graded answers are checked
            together, apart = [], []
            for m in after.groups[group_id].members:
                other = after.grade_of(m)
                if m != a and other is not None:
                    (apart if _graded_apart(grade, other) else together).append(m)
            checked += [_Block(MUST_LINK, (a,), tuple(together)), _Block(CANNOT_LINK, (a,), tuple(apart))]
        return checked
    return []  # delete, rename, undo


def _sample(blocks: list[_Block], cap: int | None, rng: random.Random) -> Iterator[tuple[str, str, str]]:
    blocks = [b for b in blocks if b.size]
    total = sum(b.size for b in blocks)
    if cap is None or total <= cap:
        for block in blocks:
            for a, b in block.pairs():
                yield a, b, block.label
        return
    offsets = []
    running = 0
    for block in blocks:
        offsets.append(running)
        running += block.size
    for index in sorted(rng.sample(range(total), cap)):
        k = bisect.bisect_right(offsets, index) - 1
        a, b = blocks[k].pair(index - offsets[k])
        yield a, b, blocks[k].label


# --------------------------------------------------------------------------- pairs of a log


def question_pairs(
    initial: QuestionState,
    edits: Iterable[Edit],
    texts: Mapping[str, str],
    *,
    select: PairFilter | None = None,
    settings: PairSettings | None = None,
) -> list[TrainingPair]:
    """Must-link / cannot-link pairs from one question's edit log.

    Parameters
    ----------
    initial : QuestionState
        Version 0 of the question.
    edits : iterable of Edit
        Its whole log, in order (every edit is folded; ``select`` only decides which give pairs).
    texts : mapping of str to str
        Each answer's normalised text (``Answer.normalized``), carried in the pairs.
    select : PairFilter, optional
    settings : PairSettings, optional

    Returns
    -------
    list of TrainingPair
        One per pair of answers, decided by the latest edit that spoke about it and is not
        undone; ordered by that edit, then by the pair.
    """
    from grouper.regroup import is_model_author

    select = select or PairFilter()
    settings = settings or PairSettings()
    state = initial
    # Every person's edit is resolved, whatever ``select`` says: a pair that a later edit
    # reversed must not come back because the later edit is filtered out.
    given: list[tuple[Edit, list[tuple[str, str, str]], list[_Block], list[_Block]]] = []
    for edit in edits:
        after = apply(state, edit)
        if edit.kind != "undo" and not is_model_author(edit.author):
            rng = random.Random(f"{settings.seed}:{edit.question_id}:{edit.edit_id}")
            blocks = _edit_blocks(state, after, edit)
            pairs: dict[tuple[str, str], str] = {}
            links = [b for b in blocks if b.label != _WITHDRAW and b.size]
            for a, b, label in _sample(links, settings.max_pairs_per_edit, rng):
                if a != b:
                    pairs[(a, b) if a < b else (b, a)] = label
            # A capped edit still has the latest word on every pair it speaks about, sampled
            # or not: what earlier edits said about the ones it leaves out must not stand.
            capped = settings.max_pairs_per_edit is not None and sum(b.size for b in links) > settings.max_pairs_per_edit
            withdrawn = [b for b in blocks if b.label == _WITHDRAW and b.size]
            given.append((edit, [(a, b, label) for (a, b), label in pairs.items()], withdrawn, links if capped else []))
        state = after
    decided = _Decisions()
    for edit, pairs, withdrawn, spoken_for in given:
        if edit.edit_id in state.undone:
            continue  # undo removes what its edit gave
        decided.edits[edit.edit_id] = edit
        for block in spoken_for:
            decided.forget(block)
        for block in withdrawn:
            decided.withdraw(block)
        for a, b, label in pairs:
            decided.set(
                TrainingPair(edit.question_id, a, b, texts[a], texts[b], label == MUST_LINK, edit.edit_id, edit.author),
                from_grade=edit.kind in _GRADE_KINDS,
            )
    kept = [
        pair
        for pair in decided.latest.values()
        # A blank answer has no text to learn from (it is embedded as zeros, not encoded).
        if pair.text_a and pair.text_b
        and select.admits(decided.edits[pair.edit_id])
        and decided.agrees_with_grades(pair, state)
    ]
    return sorted(kept, key=lambda p: (p.edit_id, p.answer_id_a, p.answer_id_b))


class _Decisions:
    """The latest word on each pair, and what a grade's cannot-link overwrote.

    A grade-given cannot-link can be taken back (a corrected grade); what it had overwritten,
    a split's cannot-link or a grade's must-link, then stands again. A capped edit's pairs left
    out of its sample are forgotten, earlier words and all: no pair is given then, which costs
    a pair to learn from but never gives a wrong one.
    """

    def __init__(self) -> None:
        self.latest: dict[tuple[str, str], TrainingPair] = {}
        self._keys_of: dict[str, set[tuple[str, str]]] = {}  # each answer's pairs in ``latest``
        self.edits: dict[int, Edit] = {}
        self._from_grade: set[tuple[str, str]] = set()  # pairs a grade decided
        self._shadowed: dict[tuple[str, str], tuple[TrainingPair, bool]] = {}  # and whether a grade gave it
        self._grade_apart: dict[str, set[tuple[str, str]]] = {}  # each answer's grade cannot-links

    def set(self, pair: TrainingPair, *, from_grade: bool) -> None:
        key = (pair.answer_id_a, pair.answer_id_b)
        earlier = self.latest.get(key)
        grade_apart = from_grade and not pair.together
        if grade_apart:
            if earlier is not None and not self._is_grade_apart(key):
                self._shadowed[key] = (earlier, key in self._from_grade)
        else:
            self._shadowed.pop(key, None)
        if earlier is None:
            for x in key:
                self._keys_of.setdefault(x, set()).add(key)
        self.latest[key] = pair
        (self._from_grade.add if from_grade else self._from_grade.discard)(key)
        for x in key:
            if grade_apart:
                self._grade_apart.setdefault(x, set()).add(key)
            elif x in self._grade_apart:
                self._grade_apart[x].discard(key)

    def _is_grade_apart(self, key: tuple[str, str]) -> bool:
        return key in self._grade_apart.get(key[0], ())

    def withdraw(self, block: _Block) -> None:
        """Take back the grade-given cannot-links between the block's two sides (those still
        latest), walking the smaller side's own pairs, not every pair of the block."""
        first, second = set(block.first), set(block.first if block.second is None else block.second)
        small, other = (first, second) if len(first) <= len(second) else (second, first)
        for a in small:
            for key in list(self._grade_apart.get(a, ())):
                mate = key[1] if key[0] == a else key[0]
                if mate in other:
                    self._grade_apart[key[0]].discard(key)
                    self._grade_apart[key[1]].discard(key)
                    self._from_grade.discard(key)
                    earlier = self._shadowed.pop(key, None)
                    if earlier is None:
                        self._drop(key)
                    else:
                        self.latest[key] = earlier[0]
                        if earlier[1]:
                            self._from_grade.add(key)

    def forget(self, block: _Block) -> None:
        """Drop every decision on the block's pairs (a capped edit spoke about them all)."""
        first = set(block.first)
        second = first if block.second is None else set(block.second)
        small, other = (first, second) if len(first) <= len(second) else (second, first)
        for a in small:
            for key in list(self._keys_of.get(a, ())):
                mate = key[1] if key[0] == a else key[0]
                if mate in other:
                    self._shadowed.pop(key, None)
                    self._from_grade.discard(key)
                    for x in key:
                        self._grade_apart.get(x, set()).discard(key)
                    self._drop(key)

    def _drop(self, key: tuple[str, str]) -> None:
        del self.latest[key]
        for x in key:
            self._keys_of[x].discard(key)

    def agrees_with_grades(self, pair: TrainingPair, final: QuestionState) -> bool:
        """A pair a grade gave stands only while the grades at the end of the log agree: an
        undo or correction of one grade can change what another grade's pairs meant."""
        if (pair.answer_id_a, pair.answer_id_b) not in self._from_grade:
            return True
        a, b = final.grade_of(pair.answer_id_a), final.grade_of(pair.answer_id_b)
        apart = a is not None and b is not None and grade_kind(a) != grade_kind(b)
        return not apart if pair.together else apart


class _LogSource(Protocol):
    def question_ids(self) -> list[str]: ...

    def initial_state(self, question_id: str) -> QuestionState: ...

    def answers(self, question_id: str) -> Sequence[Answer]: ...

    def edits(self, question_id: str | None = None) -> list[Edit]: ...


def training_pairs(
    store: _LogSource,
    *,
    select: PairFilter | None = None,
    settings: PairSettings | None = None,
) -> list[TrainingPair]:
    """Pairs from every question of a store (or those ``select.question_ids`` names).

    Parameters
    ----------
    store : Store
        Anything with ``question_ids()``, ``initial_state(q)``, ``answers(q)`` and ``edits(q)``.
    select : PairFilter, optional
    settings : PairSettings, optional

    Returns
    -------
    list of TrainingPair
        Grouped by question in import order.
    """
    select = select or PairFilter()
    out: list[TrainingPair] = []
    for question_id in store.question_ids():
        if select.question_ids is not None and question_id not in select.question_ids:
            continue
        log = store.edits(question_id)
        if not log:
            continue
        texts = {a.answer_id: a.normalized for a in store.answers(question_id)}
        out.extend(question_pairs(store.initial_state(question_id), log, texts, select=select, settings=settings))
    return out


def course_questions(store: Any, courses: Iterable[str], within: Iterable[str] | None = None) -> list[str]:
    """The questions filed under these courses (``grouper import --course``), for a pair filter.

    Parameters
    ----------
    store : Store
        Anything with ``questions()`` listing :class:`grouper.store.QuestionInfo`.
    courses : iterable of str
    within : iterable of str, optional
        Keep only these question ids (the ones asked for by name), in their order.

    Returns
    -------
    list of str
        In import order (or ``within``'s).

    Raises
    ------
    ValueError
        A course the store does not know, named with the courses it does; or none of the
        questions in ``within`` is in them.
    """
    infos = store.questions()
    known = sorted({i.course for i in infos if i.course is not None})
    wanted = list(dict.fromkeys(courses))
    # "--course geography" is the stored "Geography": courses are filed under one spelling.
    keys = {filing_key(c) for c in wanted}
    unknown = [c for c in wanted if filing_key(c) not in {filing_key(k) for k in known}]
    if unknown:
        raise ValueError(
            f"no course {', '.join(map(repr, unknown))} in the store (courses: {', '.join(known) or 'none'}); "
            "file questions under one with `grouper import --course`"
        )
    ids = [i.question_id for i in infos if i.course is not None and filing_key(i.course) in keys]
    in_courses = set(ids)
    chosen = ids if within is None else [q for q in within if q in in_courses]
    if not chosen:  # an empty choice must never widen to every question
        raise ValueError(f"none of the questions named is in course(s) {', '.join(map(repr, wanted))}")
    outside = [] if within is None else [q for q in within if q not in in_courses]
    if outside:  # a question asked for by name is never left out without a word
        raise ValueError(
            f"question(s) {', '.join(map(repr, outside))} are not in course(s) {', '.join(map(repr, wanted))}; "
            "name only questions of the course, or drop --course"
        )
    return chosen


#: Where training pairs can come from: the answers' links in the log (this module), and the
#: graded answers against the reference answers (:mod:`grouper.reference_pairs`).
PAIR_SOURCES = ("answers", "references")


def correction_pairs(
    store: Any,
    *,
    select: PairFilter | None = None,
    sources: Sequence[str] = ("answers",),
    encoder: Any = None,
) -> list[TrainingPair]:
    """The training pairs of a store's corrections, from the sources asked for.

    A model's own regrouping edits (``model:`` authors) are left out: a model must not learn
    from its own guesses.

    Parameters
    ----------
    store : Store
    select : PairFilter, optional
        Its ``question_ids`` apply to both sources; its authors, time window and kinds filter
        edits, so they apply to answer pairs only, and asking for them with reference pairs is
        an error.
    sources : sequence of {"answers", "references"}
    encoder : Encoder, optional
        Needed for reference pairs (it picks each answer's nearest reference answer).

    Returns
    -------
    list of TrainingPair
        Reference pairs first, then answer pairs.
    """
    from grouper.reference_pairs import reference_pairs

    select = select or PairFilter()
    unknown = sorted(set(sources) - set(PAIR_SOURCES))
    if unknown or not sources:
        raise ValueError(f"sources ({list(sources)!r}) must be one or more of {', '.join(PAIR_SOURCES)}")
    pairs: list[TrainingPair] = []
    if "references" in sources:
        if select.authors is not None or select.since is not None or select.until is not None:
            raise ValueError(
                "reference pairs come from the questions' current grades, so authors and dates cannot "
                "filter them: learn from answer pairs alone to filter by author or date"
            )
        if encoder is None:
            raise ValueError("reference pairs need the encoder that picks each answer's nearest reference answer")
        ids = [q for q in store.question_ids() if select.question_ids is None or q in select.question_ids]
        pairs += reference_pairs(store, ids, encoder)
    if "answers" in sources:
        pairs += training_pairs(store, select=select)  # a model's edits give none (question_pairs)
    return pairs
