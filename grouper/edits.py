"""The edits of a question's grouping, as data, and the pure fold that applies them.

The grouping a grader sees is a fold of the question's edit log over its initial grouping::

    state = replay(initial_state(question_id, answer_ids, grouping), edits)

:func:`apply` is pure and total: it returns a new :class:`QuestionState` (sharing every group
the edit did not touch with the old one) or raises :class:`EditRefused`, saying what changed
since the version the author saw and by whom; an edit is never half-applied.

Conflicts are detected per group and per answer, not per question: an edit is refused when a
group or an answer that it names changed after the author's ``base_version``, so two graders
working on different groups never block each other.

Grades belong to groups. An answer's effective grade is its override when it has one, else
the grade of the group it is in; an ungrouped answer has no group grade. So moving an answer
changes its effective grade: every edit records the grade changes it caused in
``state.last_change.grade_changes``, and an answer moved out of a graded group to the ungrouped
bucket shows as ungraded. Nothing changes a grade without the state saying so.

Every edit keeps the before-images of what it changed (its undo record), so ``Undo`` restores
exactly those groups and answers, provided nothing else changed them since; otherwise it is
refused, naming every later edit to undo first, in order (tried on the state before it is
said), or why no chain of undos gets there. Undoing an undo re-applies the original edit.

Group ids are never reused: new groups take ``state.next_group_id``, which only grows. A group
emptied by moves stays (empty) until deleted, so that ids and grades stay where graders put them.

A question may have a maximum score (``SetMaxScore``, logged like any edit). While it has one,
every grade lies in [0, maximum]: a grade outside is refused, a maximum below a grade given is
refused, and so is a grade made on a version from before the maximum last changed (5 meant
half marks out of 10, and means full marks out of 5). Undo obeys the same rule: it neither
brings back a grade given under another maximum than today's, nor undoes a change of the
maximum while grades given since stand (undo those first).

The maximum score and the reference answers (``SetReferences``, for questions imported without
them or with wrong ones) are the question's *attributes*: each has its value and the mark of
its last change in the state, is refused when changed on a version older than that mark, and is
undone like a group, by lineage.

The third attribute is the question's *rubric* (``SetRubric``): named items with points. A
grade may be given as a set of rubric items instead of a bare score; its score is then the sum
of their points, plus the grade's own point adjustment for what no item names. Changing an item's points regrades every group and answer that has the item,
in the same edit, so the grade change is recorded like any other and undone with it. An item
still in use cannot be removed, a grade cannot be given with a rubric older than the current
one, and a rubric change cannot be undone while a grade given since uses an item it changed.

A grader who looks at an answer's grade again and finds it right says so (``CheckGrades``,
the Check grades page's "Looks right"). The state keeps the grade they checked: the answer
counts as checked while its effective grade is still that one (:meth:`QuestionState.grade_check`),
so a later regrade, move or repricing lapses the check without any edit saying so, and undoing
that change brings the check back. A check is a change to the answer (it is refused on a
version older than the answer's or its group's last change, and it makes later edits of the
answer made on older versions stale), and it is undone like any other.
"""

from __future__ import annotations

import bisect
import math
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import TYPE_CHECKING, ClassVar, Literal, NamedTuple, TypeVar, Union

import numpy as np

from grouper.clustering import UNGROUPED, Grouping

if TYPE_CHECKING:
    from grouper.review import GradeInUse  # a grade given before: score, items, comment

__all__ = [
    "CONFIRMED",
    "NEW",
    "SUGGESTED",
    "AddAnswers",
    "Change",
    "CheckGrades",
    "Confirm",
    "Delete",
    "Edit",
    "EditRefused",
    "Grade",
    "GradeAnswer",
    "GradeChange",
    "GradeCheck",
    "GradeGroup",
    "GradeKind",
    "GroupState",
    "Mark",
    "Merge",
    "Move",
    "Payload",
    "QuestionState",
    "Rename",
    "ReplayError",
    "RubricItem",
    "SetMaxScore",
    "SetReferences",
    "SetRubric",
    "Split",
    "Undo",
    "UndoRecord",
    "apply",
    "grade_kind",
    "auto_split_parts",
    "check_text",
    "initial_state",
    "listed_edits",
    "make_edit",
    "replay",
    "undo_plan",
    "rubric_key",
]

SUGGESTED = "suggested"
CONFIRMED = "confirmed"
#: ``Move(..., to=NEW)`` moves answers into a new group.
NEW: Literal["new"] = "new"

_INITIAL = "the initial grouping"  # who made a change with no author
_MAX_TITLE = 200


class EditRefused(ValueError):
    """An edit does not fit the current state; nothing of it was applied.

    Attributes
    ----------
    question_id : str
    reasons : tuple of str
        Each conflict or problem, e.g. ``"group 7 was merged into group 3 by ta2 at version 12"``.
    version : int
        The question's current version: reload it and decide again.
    undo_plan : tuple of int
        For a refused undo: the edits to undo first, in that order, after which it goes
        through (found by trying them on the state, which is pure); empty otherwise.
    """

    def __init__(
        self,
        question_id: str,
        reasons: Sequence[str],
        version: int,
        base_version: int | None = None,
        *,
        undo_plan: Sequence[int] = (),
    ):
        self.question_id = question_id
        self.reasons = tuple(reasons)
        self.version = version
        self.base_version = base_version
        self.undo_plan = tuple(undo_plan)
        text = "; ".join(self.reasons)
        if base_version is not None and base_version != version:
            text += f" (you saw version {base_version}, question {question_id} is now at version {version}; reload)"
        super().__init__(f"edit refused: {text}")


class ReplayError(RuntimeError):
    """A logged edit no longer applies on replay: the log or the code changed."""


# --------------------------------------------------------------------------- state


@dataclass(frozen=True, slots=True)
class Grade:
    """A score with a comment, and who gave it.

    Attributes
    ----------
    score : float
        Any finite number (penalties may be negative).
    comment : str
    by : str or None
        The author of the edit that gave it.
    version : int
        The version at which it was given.
    items : tuple of int
        The rubric items it was given as (sorted ids); ``()`` for a bare score. With items,
        ``score`` is the sum of their current points plus ``adjustment``.
    adjustment : float
        Points added to (or, negative, taken from) the items' sum for this grade alone: the
        grader's "point adjustment" for what no item names. Always 0 for a bare score.
    """

    score: float
    comment: str = ""
    by: str | None = None
    version: int = 0
    items: tuple[int, ...] = ()
    adjustment: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "score", _check_score(self.score, "grade score"))
        if not isinstance(self.comment, str):
            raise ValueError(f"grade comment must be text, found {type(self.comment).__name__}")
        object.__setattr__(self, "items", _item_ids(self.items, "grade items"))
        object.__setattr__(self, "adjustment", _check_adjustment(self.adjustment, self.items, "grade"))

    def same_as(self, other: Grade | None) -> bool:
        """True when ``other`` has the same score, comment, rubric items and adjustment
        (ignoring who gave it)."""
        return _grade_key(self) == _grade_key(other)


class RubricItem(NamedTuple):
    """One item of a question's rubric: a grader ticks it, the grade earns its points.

    Attributes
    ----------
    item_id : int
        Stable id (>= 1): grades name their items by it, so a description can be reworded.
    description : str
        What the item stands for, e.g. ``"names the closed path"``; shown to graders.
    points : float
        Added to the score; negative for a deduction.
    """

    item_id: int
    description: str
    points: float


@dataclass(frozen=True, slots=True)
class GroupState:
    """One group as it stands at some version.

    Attributes
    ----------
    group_id : int
    title : str
    members : tuple of str
        Answer ids, most typical first; answers moved in are appended.
    status : {"suggested", "confirmed"}
    grade : Grade or None
        Given to every member that has no override.
    blank : bool
        The group of empty answers.
    changed_at_version, changed_by, change :
        The last edit that changed this group: its version, author (``None`` for the initial
        grouping) and what it did, e.g. ``"renamed from 'x'"``. Used to detect stale edits.
    set_by : int
        The live edit whose result this group shows (0: the initial grouping). An undo puts
        back the earlier result, and with it the earlier ``set_by``: this is what lets edits
        be undone in reverse order.
    """

    group_id: int
    title: str
    members: tuple[str, ...]
    status: str = SUGGESTED
    grade: Grade | None = None
    blank: bool = False
    changed_at_version: int = 0
    changed_by: str | None = None
    change: str = "created by the initial grouping"
    set_by: int = 0


@dataclass(frozen=True, slots=True)
class Mark:
    """The last change to an answer (moved, override set) or the removal of a group.

    ``version``, ``author`` and ``what`` describe the change; ``set_by`` is the live edit whose
    result the answer (or the group's absence) shows, as for :attr:`GroupState.set_by`.
    """

    version: int
    author: str | None
    what: str
    set_by: int = 0


@dataclass(frozen=True, slots=True)
class GradeChange:
    """An answer whose effective grade an edit changed (``None``: ungraded)."""

    answer_id: str
    before: Grade | None
    after: Grade | None


@dataclass(frozen=True, slots=True)
class GradeCheck:
    """A grader's word that an answer's grade is right.

    Attributes
    ----------
    grade : Grade
        The answer's effective grade when it was checked: the check holds while the answer
        still has this grade (same score, comment, rubric items and adjustment).
    by : str
        Who checked it.
    version : int
        The version of the check (its edit's id).
    """

    grade: Grade
    by: str
    version: int


@dataclass(frozen=True, slots=True)
class Change:
    """What one applied edit did, for display and audit.

    Attributes
    ----------
    edit_id : int
    author : str
    kind : str
    groups_changed : tuple of int
        Groups that existed before and after and changed.
    groups_created, groups_removed : tuple of int
    answers_moved : tuple of str
    answers_added : tuple of str
        Late answers the edit added (``AddAnswers``).
    grade_changes : tuple of GradeChange
        Every answer whose effective grade is different after the edit.
    grades_checked : tuple of str
        Answers whose grade check the edit recorded or took back (``CheckGrades``, or its undo).
    """

    edit_id: int
    author: str
    kind: str
    groups_changed: tuple[int, ...] = ()
    groups_created: tuple[int, ...] = ()
    groups_removed: tuple[int, ...] = ()
    answers_moved: tuple[str, ...] = ()
    answers_added: tuple[str, ...] = ()
    grade_changes: tuple[GradeChange, ...] = ()
    grades_checked: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class UndoRecord:
    """Before-images of everything one edit changed: what ``Undo`` restores.

    Attributes
    ----------
    edit_id : int
    author : str
    kind : str
    undoes : int or None
        For an ``Undo``: the edit it reversed.
    groups_before : mapping of int to GroupState, Mark or None
        Each group the edit changed, created or removed, as it was before: a ``GroupState``,
        the ``Mark`` of its earlier removal, or ``None`` when it had never existed.
    marks_before : mapping of str to Mark or None
        Each answer the edit moved or re-graded: its mark before (``None``: never changed).
    locations_before : mapping of str to int or None
        Each answer the edit moved: its group before (``None``: ungrouped).
    overrides_before : mapping of str to Grade or None
        Each answer whose override the edit set or cleared.
    attributes_before : mapping of str to (value, Mark or None)
        Each question attribute the edit changed (``"max_score"``, ``"reference_answers"``):
        its value and mark before.
    checks_before : mapping of str to GradeCheck or None
        Each answer whose grade check the edit recorded or removed: its check before.
    """

    edit_id: int
    author: str
    kind: str
    undoes: int | None
    groups_before: Mapping[int, GroupState | Mark | None]
    marks_before: Mapping[str, Mark | None]
    locations_before: Mapping[str, int | None]
    overrides_before: Mapping[str, Grade | None]
    attributes_before: Mapping[str, tuple[object, Mark | None]] = field(default_factory=dict)
    checks_before: Mapping[str, GradeCheck | None] = field(default_factory=dict)


@dataclass(frozen=True, eq=True)
class QuestionState:
    """A question's grouping at one version. Immutable: never mutate the mappings.

    Attributes
    ----------
    question_id : str
    version : int
        Number of edits applied.
    groups : mapping of int to GroupState
        Existing groups (emptied groups stay until deleted).
    ungrouped : tuple of str
        Answers in no group, in the order the answers were imported.
    overrides : mapping of str to Grade
        Per-answer grades that win over the group's grade.
    next_group_id : int
        The id the next new group gets; ids are never reused.
    location : mapping of str to int or None
        Every answer's group (``None``: ungrouped).
    positions : mapping of str to int
        Every answer's position: import order, then late answers (``AddAnswers``) in the
        order they were added. Answers are never removed.
    answer_marks : mapping of str to Mark
        The last change to each answer that has changed.
    removed : mapping of int to Mark
        How and by whom each removed group was removed.
    records : mapping of int to UndoRecord
        Per applied edit, what undoing it restores.
    undone : mapping of int to int
        Edit id to the id of the ``Undo`` that reversed it (while it stays reversed).
    last_change : Change or None
        What the last edit did.
    max_score : float or None
        The question's maximum score; every grade lies in [0, max_score]. ``None``: no limit.
    max_score_mark : Mark or None
        The last change of the maximum (who, when, and the live edit it shows).
    reference_answers : tuple of str, or None
        The reference answers set by ``SetReferences`` (``()``: none, on purpose); ``None``:
        the question's own, as imported.
    references_mark : Mark or None
        The last change of the reference answers.
    rubric : tuple of RubricItem
        The question's rubric (``()``: none), in the order graders see it.
    rubric_mark : Mark or None
        The last change of the rubric.
    grade_checks : mapping of str to GradeCheck
        The latest check of each answer whose grade a grader checked; it holds only while the
        answer's grade is the one checked (:meth:`grade_check`).
    """

    question_id: str
    version: int
    groups: Mapping[int, GroupState]
    ungrouped: tuple[str, ...]
    overrides: Mapping[str, Grade]
    next_group_id: int
    location: Mapping[str, int | None] = field(repr=False)
    positions: Mapping[str, int] = field(repr=False)
    answer_marks: Mapping[str, Mark] = field(default_factory=dict, repr=False)
    removed: Mapping[int, Mark] = field(default_factory=dict, repr=False)
    records: Mapping[int, UndoRecord] = field(default_factory=dict, repr=False)
    undone: Mapping[int, int] = field(default_factory=dict, repr=False)
    last_change: Change | None = field(default=None, repr=False)
    max_score: float | None = None
    max_score_mark: Mark | None = field(default=None, repr=False)
    reference_answers: tuple[str, ...] | None = None
    references_mark: Mark | None = field(default=None, repr=False)
    rubric: tuple[RubricItem, ...] = ()
    rubric_mark: Mark | None = field(default=None, repr=False)
    grade_checks: Mapping[str, GradeCheck] = field(default_factory=dict, repr=False)

    @property
    def answer_ids(self) -> tuple[str, ...]:
        """Every answer of the question, in import order."""
        return tuple(self.positions)

    def group_of(self, answer_id: str) -> int | None:
        """The group an answer is in, ``None`` when ungrouped; ``KeyError`` for an unknown id."""
        return self.location[answer_id]

    def grade_of(self, answer_id: str) -> Grade | None:
        """The answer's effective grade: its override, else its group's grade, else ``None``."""
        override = self.overrides.get(answer_id)
        if override is not None:
            return override
        group_id = self.location[answer_id]
        return None if group_id is None else self.groups[group_id].grade

    def graded_count(self) -> int:
        """How many answers have an effective grade (their own, or their group's): what is
        left to grade is the rest. Linear in the groups' members, not in the log."""
        count = len(self.overrides)
        for group in self.groups.values():
            if group.grade is not None:
                count += sum(1 for m in group.members if m not in self.overrides)
        return count

    def grade_check(self, answer_id: str) -> GradeCheck | None:
        """The check of the answer's grade, when a grader checked the grade it has now;
        ``None`` when unchecked, or checked at a grade it no longer has."""
        check = self.grade_checks.get(answer_id)
        if check is None or not check.grade.same_as(self.grade_of(answer_id)):
            return None
        return check

    def grade_source(self, answer_id: str) -> str | None:
        """``"override"``, ``"group"`` or ``None`` (ungraded)."""
        if answer_id in self.overrides:
            return "override"
        group_id = self.location[answer_id]
        if group_id is not None and self.groups[group_id].grade is not None:
            return "group"
        return None

    def content(self) -> tuple:
        """The grouping and grades without change metadata: equal when graders would see
        the same groups, members, titles, statuses and grades."""
        groups = tuple(
            (g.group_id, g.title, g.members, g.status, _grade_key(g.grade), g.blank)
            for g in sorted(self.groups.values(), key=lambda g: g.group_id)
        )
        overrides = tuple(sorted((a, _grade_key(g)) for a, g in self.overrides.items()))
        return groups, self.ungrouped, overrides


    def rubric_item(self, item_id: int) -> RubricItem | None:
        """The rubric item with that id, ``None`` when the rubric has none."""
        return next((i for i in self.rubric if i.item_id == item_id), None)

    def retired_rubric_items(self) -> dict[int, RubricItem]:
        """Items of earlier rubrics that the current one no longer has, by id (the latest
        form of each). Their ids are never given to new items: an undo may bring back a
        grade that names one, and it must mean what it meant."""
        current = {i.item_id for i in self.rubric}
        retired: dict[int, RubricItem] = {}
        for record in self.records.values():  # in edit order: later forms win
            before = record.attributes_before.get("rubric")
            for item in before[0] if before is not None else ():  # type: ignore[union-attr]
                if item.item_id not in current:
                    retired[item.item_id] = item
        return retired

    def next_rubric_item_id(self) -> int:
        """The id for a new rubric item: above every id the question's rubrics have used."""
        used = [i.item_id for i in self.rubric] + list(self.retired_rubric_items())
        return max(used, default=0) + 1


def _grade_key(grade: Grade | None) -> tuple[float, str, tuple[int, ...], float] | None:
    return None if grade is None else (grade.score, grade.comment, grade.items, grade.adjustment)


#: A grade as graders tell grades apart: its score and its rubric items.
GradeKind = tuple[float, tuple[int, ...]]


def grade_kind(grade: Grade | GradeInUse) -> GradeKind:
    """What makes two grades different grades: the score, and the rubric items it was given as
    (each item is feedback of its own), not the comment, which graders word freely. The grade
    check, the queue's suggestions and the training pairs all compare grades so."""
    return (grade.score, grade.items)


# --------------------------------------------------------------------------- payloads


@dataclass(frozen=True, slots=True)
class Confirm:
    """Mark a group as checked by a grader."""

    kind: ClassVar[str] = "confirm"
    group_id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_id", _group_id(self.group_id, "confirm: group_id"))


@dataclass(frozen=True, slots=True)
class Merge:
    """Move every member of ``others`` into ``into``; ``others`` are removed.

    ``into`` keeps its id, title, status and grade; answers coming from the other groups get
    its grade (their grade changes are recorded).
    """

    kind: ClassVar[str] = "merge"
    into: int
    others: tuple[int, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "into", _group_id(self.into, "merge: into"))
        others = tuple(_group_id(g, "merge: others") for g in _as_tuple(self.others, "merge: others"))
        if not others:
            raise ValueError("merge: others is empty; name at least one group to merge into the first")
        if len(set(others)) != len(others) or self.into in others:
            raise ValueError(f"merge: groups {[self.into, *others]} repeat an id; name each group once")
        object.__setattr__(self, "others", others)


@dataclass(frozen=True, slots=True)
class Split:
    """Split a group into explicit parts that together hold exactly its members.

    The first part keeps the group (id, status, grade); each further part becomes a new
    group. ``titles``, when given, has one title per part (the first renames the group).
    Members keep their order within the group.
    """

    kind: ClassVar[str] = "split"
    group_id: int
    parts: tuple[tuple[str, ...], ...]
    titles: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_id", _group_id(self.group_id, "split: group_id"))
        parts = tuple(_answer_ids(p, "split: part") for p in _as_tuple(self.parts, "split: parts"))
        if len(parts) < 2:
            raise ValueError(f"split: {len(parts)} part(s) given; a split needs at least 2 parts")
        seen: set[str] = set()
        for part in parts:
            twice = seen.intersection(part)
            if twice:
                raise ValueError(f"split: answer {sorted(twice)[0]!r} is in more than one part; parts must not overlap")
            seen.update(part)
        titles = tuple(_check_title(t, "split: titles") for t in _as_tuple(self.titles, "split: titles"))
        if titles and len(titles) != len(parts):
            raise ValueError(f"split: {len(titles)} titles for {len(parts)} parts; give one per part or none")
        object.__setattr__(self, "parts", parts)
        object.__setattr__(self, "titles", titles)


@dataclass(frozen=True, slots=True)
class Move:
    """Move answers to a group (an id), to the ungrouped bucket (``None``) or to a new group
    (``NEW``, titled ``title``). Answers already there are left as they are."""

    kind: ClassVar[str] = "move"
    answer_ids: tuple[str, ...]
    to: int | None | Literal["new"]
    title: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "answer_ids", _answer_ids(self.answer_ids, "move: answer_ids"))
        if self.to is not None and not (isinstance(self.to, str) and self.to == NEW):
            object.__setattr__(self, "to", _group_id(self.to, "move: to (a group id, None for ungrouped, or NEW)"))
        if self.title != "":  # (None or [] from a damaged record is refused, not taken as none)
            # Trimmed, as a rename's: " Sydney " and "Sydney" are one title.
            object.__setattr__(self, "title", _check_title(self.title, "move: title"))
            if self.to != NEW:
                raise ValueError("move: a title is only for a move to a new group (to=NEW)")


@dataclass(frozen=True, slots=True)
class Delete:
    """Remove a group; its members go to the ungrouped bucket."""

    kind: ClassVar[str] = "delete"
    group_id: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_id", _group_id(self.group_id, "delete: group_id"))


@dataclass(frozen=True, slots=True)
class Rename:
    """Give a group a new title."""

    kind: ClassVar[str] = "rename"
    group_id: int
    title: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_id", _group_id(self.group_id, "rename: group_id"))
        object.__setattr__(self, "title", _check_title(self.title, "rename: title"))


@dataclass(frozen=True, slots=True)
class GradeGroup:
    """Grade a group (every member without an override); ``score=None`` without items clears
    its grade.

    With rubric ``items``, the grade is those items and its score the sum of their points plus
    ``adjustment`` (points for what no item names; only with items); ``score`` may then be
    left ``None``, and when given it must equal that total (what the grader saw). Without
    items, the score is the grade.
    """

    kind: ClassVar[str] = "grade"
    group_id: int
    score: float | None
    comment: str = ""
    items: tuple[int, ...] = ()
    adjustment: float = 0.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "group_id", _group_id(self.group_id, "grade: group_id"))
        _check_grade_payload(self, "grade")

    @property
    def clears(self) -> bool:
        """True when this edit removes the grade rather than giving one."""
        return self.score is None and not self.items


@dataclass(frozen=True, slots=True)
class GradeAnswer:
    """Override one answer's grade; ``score=None`` without items clears the override.
    ``items`` and ``adjustment`` as for :class:`GradeGroup`."""

    kind: ClassVar[str] = "grade_answer"
    answer_id: str
    score: float | None
    comment: str = ""
    items: tuple[int, ...] = ()
    adjustment: float = 0.0

    def __post_init__(self) -> None:
        if not isinstance(self.answer_id, str) or not self.answer_id:
            raise ValueError(f"grade_answer: answer_id must be a non-empty string, found {self.answer_id!r}")
        check_text(self.answer_id, "grade_answer: answer_id")
        _check_grade_payload(self, "grade_answer")

    @property
    def clears(self) -> bool:
        """True when this edit removes the override rather than giving one."""
        return self.score is None and not self.items


def _check_grade_payload(p: GradeGroup | GradeAnswer, where: str) -> None:
    if p.score is not None:
        object.__setattr__(p, "score", _check_score(p.score, f"{where}: score"))
    object.__setattr__(p, "items", _item_ids(p.items, f"{where}: items"))
    object.__setattr__(p, "adjustment", _check_adjustment(p.adjustment, p.items, where))
    if p.score is None and not p.items and p.comment:
        raise ValueError(f"{where}: a comment needs a score or rubric items; clear a grade with score=None and no comment")
    if not isinstance(p.comment, str):
        raise ValueError(f"{where}: comment must be text, found {type(p.comment).__name__}")
    check_text(p.comment, f"{where}: comment")


@dataclass(frozen=True, slots=True)
class AddAnswers:
    """Answers submitted after the question was grouped (late submissions), each placed in a
    group or left ungrouped: ``to[i]`` is where ``answer_ids[i]`` goes (``None``: ungrouped).

    A late answer joins only a group nobody has reviewed: confirmed and graded groups are
    refused, so that no grade is given to an answer no grader has looked at. Such an edit is
    never undone (a submitted answer stays); the added answers are moved and graded like any
    other.
    """

    kind: ClassVar[str] = "add_answers"
    answer_ids: tuple[str, ...]
    to: tuple[int | None, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "answer_ids", _answer_ids(self.answer_ids, "add_answers: answer_ids"))
        to = tuple(
            None if g is None else _group_id(g, "add_answers: to (a group id or None for ungrouped)")
            for g in _as_tuple(self.to, "add_answers: to")
        )
        if len(to) != len(self.answer_ids):
            raise ValueError(f"add_answers: {len(to)} places for {len(self.answer_ids)} answers; give one per answer")
        object.__setattr__(self, "to", to)


@dataclass(frozen=True, slots=True)
class SetMaxScore:
    """Set the question's maximum score (``None`` removes it): every grade must then lie in
    [0, max_score], and no grade given may lie outside the new range."""

    kind: ClassVar[str] = "max_score"
    max_score: float | None

    def __post_init__(self) -> None:
        if self.max_score is not None:
            value = _check_score(self.max_score, "max_score")
            if value <= 0:
                raise ValueError(f"max_score must be above 0, found {self.max_score!r}")
            object.__setattr__(self, "max_score", value)


_MAX_REFERENCE = 5000  # characters of one reference answer
_MAX_REFERENCES = 50


@dataclass(frozen=True, slots=True)
class SetReferences:
    """Set the question's reference answers (``()``: none), which grouping and regrouping use
    in place of the ones imported with it."""

    kind: ClassVar[str] = "references"
    texts: tuple[str, ...]

    def __post_init__(self) -> None:
        texts = _as_tuple(self.texts, "references: texts")
        clean = []
        for t in texts:
            if not isinstance(t, str) or not t.strip():
                raise ValueError(f"references: each reference answer must be non-empty text, found {t!r}")
            check_text(t, "references: a reference answer")
            if len(t) > _MAX_REFERENCE:
                raise ValueError(f"references: a reference answer is {len(t)} characters; at most {_MAX_REFERENCE}")
            clean.append(t.strip())
        if len(set(clean)) != len(clean):
            raise ValueError("references: a reference answer is given twice; give each once")
        if len(clean) > _MAX_REFERENCES:
            raise ValueError(f"references: {len(clean)} reference answers; at most {_MAX_REFERENCES}")
        object.__setattr__(self, "texts", tuple(clean))


_MAX_RUBRIC_ITEMS = 100


@dataclass(frozen=True, slots=True)
class SetRubric:
    """Set the question's whole rubric (``()``: none). Items are matched to the current ones
    by id: an item whose points change regrades every grade that has it; an item still used
    by a grade cannot be left out."""

    kind: ClassVar[str] = "rubric"
    items: tuple[RubricItem, ...]

    def __post_init__(self) -> None:
        items = []
        for raw in _as_tuple(self.items, "rubric: items"):
            parts = _as_tuple(raw, "rubric: an item (id, description, points)")
            if len(parts) != 3:
                raise ValueError(f"rubric: an item is (id, description, points), found {raw!r}")
            item_id = _item_id(parts[0], "rubric: item id")
            description = parts[1]
            if not isinstance(description, str) or not description.strip():
                raise ValueError(f"rubric: item {item_id} needs a description (non-empty text), found {description!r}")
            check_text(description, f"rubric: item {item_id}'s description")
            if len(description) > _MAX_TITLE:
                raise ValueError(f"rubric: item {item_id}'s description is {len(description)} characters; at most {_MAX_TITLE}")
            points = _check_score(parts[2], f"rubric: item {item_id}'s points")
            items.append(RubricItem(item_id, description.strip(), points))
        ids = [i.item_id for i in items]
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"rubric: item id {twice} is given twice; give each item once")
        # Case only: logged rubrics were accepted so, and must replay. Texts that read alike
        # otherwise (spaces, Unicode form) are refused where rubrics are typed (parse_rubric).
        descriptions = [i.description.casefold() for i in items]
        if len(set(descriptions)) != len(descriptions):
            twice = next(i for i in items if descriptions.count(i.description.casefold()) > 1)
            raise ValueError(f"rubric: the description {twice.description!r} is given twice; graders could not tell them apart")
        if len(items) > _MAX_RUBRIC_ITEMS:
            raise ValueError(f"rubric: {len(items)} items; at most {_MAX_RUBRIC_ITEMS}")
        object.__setattr__(self, "items", tuple(items))


@dataclass(frozen=True, slots=True)
class CheckGrades:
    """Say that these answers' grades are right, as they stand: the grader looked again (the
    Check grades page's "Looks right"). Answers already checked at the grade they have are
    left as they are; the edit is refused when that is all of them."""

    kind: ClassVar[str] = "check_grades"
    answer_ids: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "answer_ids", _answer_ids(self.answer_ids, "check_grades: answer_ids"))


@dataclass(frozen=True, slots=True)
class Undo:
    """Reverse an earlier edit (itself possibly an undo), as a new event."""

    kind: ClassVar[str] = "undo"
    edit_id: int

    def __post_init__(self) -> None:
        if isinstance(self.edit_id, bool) or not isinstance(self.edit_id, int) or self.edit_id < 1:
            raise ValueError(f"undo: edit_id must be a positive integer (an edit's id), found {self.edit_id!r}")


Payload = Union[
    Confirm,
    Merge,
    Split,
    Move,
    Delete,
    Rename,
    GradeGroup,
    GradeAnswer,
    AddAnswers,
    SetMaxScore,
    SetReferences,
    SetRubric,
    CheckGrades,
    Undo,
]

#: Question attributes set by edits: the state field of each, and the field of its mark.
_ATTRIBUTE_MARKS = {"max_score": "max_score_mark", "reference_answers": "references_mark", "rubric": "rubric_mark"}
_ATTRIBUTE_NAMES = {"max_score": "maximum score was", "reference_answers": "reference answers were", "rubric": "rubric was"}


@dataclass(frozen=True, slots=True)
class Edit:
    """One event of the edit log.

    Attributes
    ----------
    edit_id : int
        The question version this edit produces: edits of a question are numbered 1, 2, ...
    question_id : str
    author : str
    at : datetime
        When it was appended (timezone-aware, UTC).
    base_version : int
        The version of the question the author saw when making it.
    payload : Payload
    """

    edit_id: int
    question_id: str
    author: str
    at: datetime
    base_version: int
    payload: Payload

    def __post_init__(self) -> None:
        if not isinstance(self.author, str) or not self.author.strip():
            raise ValueError(f"edit author must be a non-empty name, found {self.author!r}")
        check_text(self.author, "edit author")
        if isinstance(self.base_version, bool) or not isinstance(self.base_version, int) or self.base_version < 0:
            raise ValueError(f"base_version must be a version number >= 0, found {self.base_version!r}")
        if self.at.tzinfo is None:
            raise ValueError(f"edit time {self.at.isoformat()} has no timezone; use UTC")

    @property
    def kind(self) -> str:
        """The payload's kind: ``"merge"``, ``"undo"``, ..."""
        return self.payload.kind


def make_edit(
    state: QuestionState,
    author: str,
    payload: Payload,
    *,
    base_version: int | None = None,
    at: datetime | None = None,
) -> Edit:
    """The edit that would come next in ``state``'s log.

    Parameters
    ----------
    state : QuestionState
    author : str
    payload : Payload
    base_version : int, optional
        The version the author saw; defaults to ``state.version``.
    at : datetime, optional
        Defaults to now (UTC).

    Returns
    -------
    Edit
        With ``edit_id = state.version + 1``.
    """
    return Edit(
        edit_id=state.version + 1,
        question_id=state.question_id,
        author=author,
        at=at or datetime.now(timezone.utc),
        base_version=state.version if base_version is None else base_version,
        payload=payload,
    )


# --------------------------------------------------------------------------- validation helpers


def _group_id(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{where} must be a group id (an integer >= 1), found {value!r}")
    return int(value)


def _item_id(value: object, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
        raise ValueError(f"{where}: a rubric item id is an integer >= 1, found {value!r}")
    return int(value)


def _check_score(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise ValueError(f"{where} must be a number, found {value!r}")
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{where} must be a finite number, found {value!r}")
    return number + 0.0  # -0.0 is 0: "grade 1 -0" is a grade of 0, shown so


def rubric_key(description: str) -> str:
    """What two rubric items' descriptions are compared by: graders could not tell apart
    texts that differ only in case, in Unicode form ("café" composed or not) or in spaces
    (two, or a non-breaking one).

    Parameters
    ----------
    description : str

    Returns
    -------
    str
    """
    # NFC, not NFKC: "10³ J" and "103 J", "kg" and "㎏" are different items.
    return " ".join(unicodedata.normalize("NFC", description).split()).casefold()


def check_text(value: str, where: str) -> str:
    """Refuse text that cannot be stored.

    A lone surrogate (what Python makes of bytes that are not UTF-8 on a command line) would
    otherwise fail deep in the store, unnamed. Every piece of text a person types goes
    through this one rule: edit payloads here, course and exam names in the store.

    Parameters
    ----------
    value : str
        The text.
    where : str
        What the text is, for the message ("rename: title").

    Returns
    -------
    str
        ``value`` unchanged.

    Raises
    ------
    ValueError
        Naming ``where``, the character's position and its code point.
    """
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"{where} is not valid text: character {exc.start + 1} is a lone surrogate "
            f"(U+{ord(value[exc.start]):04X}), as bytes that are not UTF-8 become; retype it"
        ) from None
    return value


def _part_title(title: str, number: int) -> str:
    """The default title of a split's part: the group's, numbered, shortened to stay a title
    a rename would take (a long title plus " (part 2)" would not be)."""
    suffix = f" (part {number})"
    base = title.strip()[: _MAX_TITLE - len(suffix)].rstrip()
    return f"{base}{suffix}" if base else f"part {number}"


def _check_title(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{where} must be non-empty text, found {value!r}")
    check_text(value, where)
    if len(value) > _MAX_TITLE:
        raise ValueError(f"{where} is {len(value)} characters; at most {_MAX_TITLE} are allowed")
    return value.strip()


def _item_ids(value: object, where: str) -> tuple[int, ...]:
    """Rubric item ids, sorted: a grade is a set of items, whatever order they were ticked in."""
    ids = [_item_id(i, where) for i in _as_tuple(value, where)]
    if len(set(ids)) != len(ids):
        raise ValueError(f"{where} names a rubric item more than once")
    return tuple(sorted(ids))


def _check_adjustment(value: object, items: tuple[int, ...], where: str) -> float:
    """A point adjustment: a finite number, and 0 unless the grade is given as rubric items
    (a bare score is already whatever the grader wants)."""
    points = _check_score(value, f"{where}: adjustment")
    if points and not items:
        raise ValueError(f"{where}: a point adjustment goes with rubric items; without items, give the score itself")
    return points


def _as_tuple(value: object, where: str) -> tuple:
    # (a mapping iterates its keys: from a damaged record, that is not a list it meant)
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Iterable):
        raise ValueError(f"{where} must be a sequence, found {value!r}")
    return tuple(value)


def _answer_ids(value: object, where: str) -> tuple[str, ...]:
    ids = _as_tuple(value, where)
    if not ids:
        raise ValueError(f"{where} is empty; name at least one answer")
    for a in ids:
        if not isinstance(a, str) or not a:
            raise ValueError(f"{where}: answer ids must be non-empty strings, found {a!r}")
        check_text(a, f"{where}: answer id {a!r}")
    if len(set(ids)) != len(ids):
        twice = next(a for a in ids if ids.count(a) > 1)
        raise ValueError(f"{where} names answer {twice!r} more than once")
    return ids


# --------------------------------------------------------------------------- initial state


def initial_state(question_id: str, answer_ids: Sequence[str], grouping: Grouping) -> QuestionState:
    """Version 0 of a question: its answers grouped as ``grouping`` says.

    Parameters
    ----------
    question_id : str
    answer_ids : sequence of str
        The question's answers in import order; ``grouping``'s indices refer to it.
    grouping : Grouping

    Returns
    -------
    QuestionState
    """
    ids = tuple(answer_ids)
    positions = {a: i for i, a in enumerate(ids)}
    if len(positions) != len(ids):
        raise ValueError(f"question {question_id}: answer ids repeat; each answer needs its own id")
    if len(grouping.labels) != len(ids):
        raise ValueError(
            f"question {question_id}: the grouping labels {len(grouping.labels)} answers but there are {len(ids)}"
        )
    location: dict[str, int | None] = dict.fromkeys(ids)
    groups: dict[int, GroupState] = {}
    for group in grouping.groups:
        members = tuple(ids[i] for i in group.members)
        for a in members:
            if location[a] is not None:
                raise ValueError(f"question {question_id}: answer {a!r} is in groups {location[a]} and {group.group_id}")
            location[a] = group.group_id
        groups[group.group_id] = GroupState(group.group_id, group.title, members, blank=group.blank)
    for i, label in enumerate(grouping.labels):
        expected = None if label == UNGROUPED else int(label)
        if location[ids[i]] != expected:
            raise ValueError(
                f"question {question_id}: answer {ids[i]!r} is labelled {expected} but listed in group {location[ids[i]]}"
            )
    ungrouped = tuple(a for a in ids if location[a] is None)
    return QuestionState(
        question_id=question_id,
        version=0,
        groups=groups,
        ungrouped=ungrouped,
        overrides={},
        next_group_id=max(groups, default=0) + 1,
        location=location,
        positions=positions,
    )


# --------------------------------------------------------------------------- the fold


def replay(initial: QuestionState, edits: Iterable[Edit]) -> QuestionState:
    """Fold edits over a state.

    Raises
    ------
    ReplayError
        When a logged edit no longer applies (the log is damaged or the rules changed).
    """
    state = initial
    for edit in edits:
        try:
            state = apply(state, edit)
        except EditRefused as exc:
            raise ReplayError(f"question {state.question_id}: logged edit {edit.edit_id} does not replay: {exc}") from exc
    return state


def apply(state: QuestionState, edit: Edit) -> QuestionState:
    """Apply one edit; pure.

    A refused undo names the edits to undo first, in order, when undoing them would let it
    through (its :attr:`EditRefused.undo_plan`).

    Parameters
    ----------
    state : QuestionState
    edit : Edit
        Must be the next edit of this question: ``edit.edit_id == state.version + 1``.

    Returns
    -------
    QuestionState
        At version ``edit.edit_id``; groups the edit did not touch are shared with ``state``.

    Raises
    ------
    EditRefused
        When the edit does not fit: something it names changed after ``edit.base_version``,
        no longer exists, or the edit would change nothing. ``state`` is unchanged.
    ValueError
        When the edit belongs to another question or is out of sequence.
    """
    if edit.question_id != state.question_id:
        raise ValueError(f"edit {edit.edit_id} is for question {edit.question_id}, not {state.question_id}")
    if edit.edit_id != state.version + 1:
        raise ValueError(
            f"edit {edit.edit_id} cannot follow version {state.version} of question {state.question_id}: "
            f"edits apply in order, the next must have id {state.version + 1}"
        )
    if edit.base_version > state.version:
        raise EditRefused(
            state.question_id,
            [f"base version {edit.base_version} is ahead of the question (version {state.version})"],
            state.version,
        )
    return _apply(state, edit, plan_undos=True)


class _PointsOverflow(ValueError):
    """Rubric points that sum beyond any finite score."""


def _apply(state: QuestionState, edit: Edit, *, plan_undos: bool) -> QuestionState:
    """:func:`apply`; with ``plan_undos`` false (a step of a plan being tried), a refused undo
    names only the next edit to undo, in its ``undo_plan``, and its message no advice."""
    builder = _Builder(state, edit)
    handler = _HANDLERS[type(edit.payload)]
    try:
        try:
            handler(builder, edit.payload)
            builder.rescore_staged()
            builder.check_score_range()
        except _PointsOverflow as exc:  # a grade or a repricing: refused as any edit that does not fit
            raise EditRefused(state.question_id, [str(exc)], state.version) from None
    except EditRefused as refused:
        if not (plan_undos and isinstance(edit.payload, Undo) and refused.undo_plan):
            raise
        head = "; ".join(refused.reasons)
        plan, blocked = _undo_plan(state, edit, refused.undo_plan[0])
        if not plan:
            raise EditRefused(state.question_id, [f"{head}; {blocked}"], state.version) from None
        order = "" if len(plan) == 1 else ", in that order"
        raise EditRefused(
            state.question_id, [f"{head}; undo {listed_edits(plan)} first{order}"], state.version, undo_plan=plan
        ) from None
    return builder.finish()


def undo_plan(state: QuestionState, edit_id: int, author: str) -> tuple[int, ...] | None:
    """The undos to make before ``Undo(edit_id)`` goes through, in order.

    Parameters
    ----------
    state : QuestionState
    edit_id : int
        The edit to undo.
    author : str
        Who would undo it.

    Returns
    -------
    tuple of int or None
        Empty when it goes through now; ``None`` when no chain of undos gets there (late
        answers stay, the edit does not exist, was undone already); else the edits to undo
        first, the same as a refusal's :attr:`EditRefused.undo_plan`.
    """
    try:
        apply(state, make_edit(state, author, Undo(edit_id)))
    except EditRefused as refused:
        return refused.undo_plan or None
    return ()


#: The longest chain of undos a refused undo's advice is worked out for.
_MAX_UNDO_PLAN = 20


def _undo_plan(state: QuestionState, edit: Edit, first: int) -> tuple[tuple[int, ...], str]:
    """The undos that let ``edit`` (a refused undo) through, in order, starting from ``first``.

    Each undo the advice names may itself wait on a later edit, so the chain is tried on the
    state (``apply`` is pure) rather than handed to the grader one refusal at a time.

    Returns
    -------
    plan : tuple of int
        The undos to make first, in order; empty when the chain leads nowhere.
    blocked : str
        Why it leads nowhere (a step refused for another reason, such as late answers; a
        circle; more than ``_MAX_UNDO_PLAN`` steps); empty with a plan.
    """
    target = edit.payload.edit_id  # type: ignore[union-attr]
    waiting = [target, first]  # undos still to make, the next one last
    done: list[int] = []
    current = state
    while len(done) + len(waiting) <= _MAX_UNDO_PLAN + 1:
        step = waiting[-1]
        trial = Edit(
            edit_id=current.version + 1,
            question_id=current.question_id,
            author=edit.author,
            at=edit.at,
            base_version=current.version,
            payload=Undo(step),
        )
        try:
            current = _apply(current, trial, plan_undos=False)
        except EditRefused as refused:
            if step == target:  # the undos made so far were not enough
                needed = f"after undoing {listed_edits(done)} it would still be refused" if done else "it is refused"
            else:
                needed = f"it needs {listed_edits([*done, step])} undone first"
            after = refused.undo_plan[0] if refused.undo_plan else None
            if after is None:
                return (), f"{needed}, and {'; '.join(refused.reasons)}"
            # (an edit the plan itself made: undoing it would take back a step of the plan)
            if after in waiting or after in done or after > state.version:
                return (), f"{needed}, and then no further undo gets there; make the change by hand instead"
            waiting.append(after)
            continue
        waiting.pop()
        if not waiting:
            return tuple(done), ""
        done.append(step)
    return (), f"it waits on more than {_MAX_UNDO_PLAN} other undos; make the change by hand instead"


def listed_edits(edit_ids: Sequence[int]) -> str:
    """Edit ids in words, as refusals name them: ``"edit 7"``, ``"edits 7, 5 and 2"``.

    Parameters
    ----------
    edit_ids : sequence of int
        At least one.

    Returns
    -------
    str
    """
    if len(edit_ids) == 1:
        return f"edit {edit_ids[0]}"
    return "edits " + ", ".join(str(e) for e in edit_ids[:-1]) + f" and {edit_ids[-1]}"


class _Builder:
    """Collects one edit's changes against ``state``; ``finish`` makes the new state.

    Handlers first check (``refuse`` raises before anything is built), then stage changes.
    Before-images are taken from the untouched old state, so a refusal leaves nothing behind.
    """

    def __init__(self, state: QuestionState, edit: Edit):
        self.state = state
        self.edit = edit
        self.version = edit.edit_id
        self.author = edit.author
        self.problems: list[str] = []
        self.group_changes: dict[int, GroupState | None] = {}  # None: removed
        self.removal_what: dict[int, str] = {}
        self.moves: dict[str, int | None] = {}  # answer -> new location
        self.move_what: dict[str, str] = {}
        self.override_changes: dict[str, Grade | None] = {}
        self.override_what: dict[str, str] = {}
        self.lineage: dict[str, int] = {}  # answers whose set_by is not this edit (undo)
        self.added: dict[str, int | None] = {}  # late answers -> their place
        self.removal_lineage: dict[int, int] = {}
        self.next_group_id = state.next_group_id
        self.undoes: int | None = None
        # Question attributes this edit sets: name -> (new value, what, lineage or None).
        self.attribute_changes: dict[str, tuple[object, str, int | None]] = {}
        self.check_changes: dict[str, GradeCheck | None] = {}  # answer -> its check after
        self.check_what: dict[str, str] = {}

    # ----- checks

    def group(self, group_id: int, *, check_base: bool = True) -> GroupState | None:
        """The group, or ``None`` with the reason recorded when it is gone or stale."""
        g = self.state.groups.get(group_id)
        if g is None:
            mark = self.state.removed.get(group_id)
            if mark is not None:
                self.problems.append(f"group {group_id} was {mark.what} by {_who(mark.author)} at version {mark.version}")
            else:
                self.problems.append(f"group {group_id} does not exist in question {self.state.question_id}")
            return None
        if check_base and g.changed_at_version > self.edit.base_version:
            self.problems.append(
                f"group {group_id} was {g.change} by {_who(g.changed_by)} at version {g.changed_at_version}"
            )
        return g

    def answer(self, answer_id: str) -> bool:
        """True when the answer exists; records a reason when it is unknown or stale."""
        if answer_id not in self.state.positions:
            self.problems.append(f"answer {answer_id!r} is not an answer to question {self.state.question_id}")
            return False
        mark = self.state.answer_marks.get(answer_id)
        if mark is not None and mark.version > self.edit.base_version:
            self.problems.append(f"answer {answer_id!r} was {mark.what} by {_who(mark.author)} at version {mark.version}")
        return True

    def max_score_seen(self) -> None:
        """Records a reason when the maximum score changed after the author's version: a grade
        chosen against the old maximum may mean something else under the new one."""
        mark = self.state.max_score_mark
        if mark is not None and mark.version > self.edit.base_version:
            limit = self.state.max_score
            now = "removed" if limit is None else f"changed to {_score(limit)}"
            self.problems.append(f"the question's maximum score was {now} by {_who(mark.author)} at version {mark.version}")

    def attribute_seen(self, name: str) -> None:
        """Records a reason when the attribute changed after the author's version."""
        mark = getattr(self.state, _ATTRIBUTE_MARKS[name])
        if mark is not None and mark.version > self.edit.base_version:
            self.problems.append(_attribute_change(name, mark))

    def set_attribute(self, name: str, value: object, what: str, lineage: int | None = None) -> None:
        self.attribute_changes[name] = (value, what, lineage)

    def rubric_after(self) -> tuple[RubricItem, ...]:
        """The rubric as this edit leaves it."""
        staged = self.attribute_changes.get("rubric")
        return self.state.rubric if staged is None else staged[0]  # type: ignore[return-value]

    def rubric_grade(self, score: float | None, comment: str, items: tuple[int, ...], adjustment: float = 0.0) -> Grade:
        """The grade a grading edit gives: its score, or the sum of its rubric items' points
        plus its adjustment, refused when an item is unknown, the rubric changed since the
        author's version, or the score the author saw is not that total."""
        if not items:
            assert score is not None
            return Grade(score, comment, self.author, self.version)
        self.attribute_seen("rubric")
        self.refuse_if_problems()
        points = {i.item_id: i.points for i in self.state.rubric}
        unknown = [i for i in items if i not in points]
        if unknown:
            shown = ", ".join(str(i) for i in unknown)
            self.refuse(f"rubric item(s) {shown} are not in question {self.state.question_id}'s rubric")
        total = _rubric_total(items, adjustment, points)
        if score is not None and not math.isclose(score, total, rel_tol=0.0, abs_tol=1e-9):  # 0.1 + 0.2 is 0.3
            what = "the sum of the rubric items' points" + (f" and the adjustment {adjustment:+g}" if adjustment else "")
            self.refuse(f"score {_score(score)} is not {what} ({_score(total)})")
        return Grade(total, comment, self.author, self.version, items, adjustment)

    def rescore_staged(self) -> None:
        """Re-scores the rubric grades this edit puts in place (an undo's before-images) by the
        rubric it leaves, so that a grade given as items always has their current points."""
        points = {i.item_id: i.points for i in self.rubric_after()}
        staged = [g.grade for g in self.group_changes.values() if g is not None and g.grade is not None]
        staged += [g for g in self.override_changes.values() if g is not None]
        missing = sorted({i for grade in staged for i in grade.items if i not in points})
        if missing:
            mark = self.state.rubric_mark
            since = "" if mark is None else f" ({_who(mark.author)} changed the rubric at version {mark.version})"
            first = () if mark is None else (mark.set_by or mark.version,)  # the rubric change that stands
            self.refuse(
                f"the grade to put back has rubric item(s) {', '.join(map(str, missing))}, no longer in the rubric{since}",
                undo_plan=first,
            )
        for gid, g in self.group_changes.items():
            if g is not None and g.grade is not None and g.grade.items:
                rescored = _rescored(g.grade, points)
                if rescored is not g.grade:
                    self.group_changes[gid] = replace(g, grade=rescored)
        for a, grade in self.override_changes.items():
            if grade is not None and grade.items:
                self.override_changes[a] = _rescored(grade, points)
        if "rubric" in self.attribute_changes:
            self._rescore_unstaged(points)

    def _rescore_unstaged(self, points: Mapping[int, float]) -> None:
        """When the edit changes the rubric (an undo of a rubric change, say), the grades it
        does not touch take their items' points too: a grade an earlier undo brought back
        under today's points is worth its items again when the old points return, and no
        grade may be left naming an item the rubric no longer has."""
        state = self.state
        graded = [(f"group {gid}", g.grade) for gid, g in state.groups.items() if gid not in self.group_changes and g.grade is not None]
        graded += [(f"answer {a!r}", g) for a, g in state.overrides.items() if a not in self.override_changes]
        lost = [(what, i) for what, grade in graded for i in grade.items if i not in points]
        if lost:
            what, item = lost[0]
            self.refuse(
                f"{what} is graded with rubric item {item}, which this would take out of the rubric; "
                "give it another grade first"
            )
        because = "regraded (its rubric items' points changed)"
        for gid, g in state.groups.items():
            if gid not in self.group_changes and g.grade is not None and g.grade.items:
                rescored = _rescored(g.grade, points)
                if rescored is not g.grade:
                    self.set_group(replace(g, grade=rescored), because)
        for a, grade in state.overrides.items():
            if a not in self.override_changes and grade.items:
                rescored = _rescored(grade, points)
                if rescored is not grade:
                    self.set_override(a, rescored, because)

    def check_score_range(self) -> None:
        """Refuses the edit when it would leave a grade outside [0, maximum]: the grades it
        gives, or every grade when it changes the maximum."""
        changing = "max_score" in self.attribute_changes
        limit = self.attribute_changes["max_score"][0] if changing else self.state.max_score
        if limit is None:
            return
        state = self.state
        if changing:
            groups = {gid: g for gid, g in state.groups.items() if gid not in self.group_changes}
            groups.update({gid: g for gid, g in self.group_changes.items() if g is not None})
            overrides = {a: g for a, g in state.overrides.items() if a not in self.override_changes}
            overrides.update({a: g for a, g in self.override_changes.items() if g is not None})
        else:
            groups = {
                gid: g
                for gid, g in self.group_changes.items()
                if g is not None and g.grade is not None and not g.grade.same_as(_grade_in(state, gid))
            }
            overrides = {a: g for a, g in self.override_changes.items() if g is not None}
        bad = [(f"group {gid} is graded", g.grade.score) for gid, g in sorted(groups.items()) if g.grade is not None]
        bad += [(f"answer {a!r} has its own grade", g.score) for a, g in overrides.items()]
        bad = [(what, score) for what, score in bad if not 0 <= score <= limit]
        if not bad:
            return
        if changing:
            shown = ", ".join(f"{what} {_score(score)}" for what, score in bad[:5])
            more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
            where = (
                f"above the new maximum score {_score(limit)}"
                if all(score > limit for _, score in bad)
                else f"outside 0 to the new maximum score {_score(limit)}"
            )
            self.refuse(f"{shown}{more}, {where}; change those grades first")
        mark = state.max_score_mark
        by = "" if mark is None else f" (set by {_who(mark.author)} at version {mark.version})"
        what, score = bad[0]
        # A grade the grader typed needs no name; one an edit gives back or rescores (an undo,
        # a rubric repricing) does, or the grader cannot tell which grade is at fault.
        named = isinstance(self.edit.payload, (GradeGroup, GradeAnswer))
        which = "" if named else f": {what} {_score(score)}" + (f" and {len(bad) - 1} more" if len(bad) > 1 else "")
        if score < 0:
            self.refuse(
                f"score {_score(score)} is below 0; grades lie between 0 and the maximum score {_score(limit)}{which}"
            )
        self.refuse(f"score {_score(score)} is above the question's maximum score {_score(limit)}{by}{which}")

    def refuse_if_problems(self) -> None:
        if self.problems:
            raise EditRefused(self.state.question_id, self.problems, self.state.version, self.edit.base_version)

    def refuse(self, reason: str, *, undo_plan: Sequence[int] = ()) -> None:
        raise EditRefused(self.state.question_id, [reason], self.state.version, undo_plan=undo_plan)

    # ----- staging

    def current(self, group_id: int) -> GroupState:
        staged = self.group_changes.get(group_id, self.state.groups.get(group_id))
        assert staged is not None
        return staged

    def set_group(self, group: GroupState, change: str, set_by: int | None = None) -> None:
        self.group_changes[group.group_id] = replace(
            group,
            changed_at_version=self.version,
            changed_by=self.author,
            change=change,
            set_by=self.edit.edit_id if set_by is None else set_by,
        )

    def remove_group(self, group_id: int, what: str, set_by: int | None = None) -> None:
        self.group_changes[group_id] = None
        self.removal_what[group_id] = what
        self.removal_lineage[group_id] = self.edit.edit_id if set_by is None else set_by

    def set_override(self, answer_id: str, grade: Grade | None, what: str) -> None:
        self.override_changes[answer_id] = grade
        self.override_what[answer_id] = what

    def set_check(self, answer_id: str, check: GradeCheck | None, what: str) -> None:
        self.check_changes[answer_id] = check
        self.check_what[answer_id] = what

    def new_group_id(self) -> int:
        gid = self.next_group_id
        self.next_group_id += 1
        return gid

    def move(self, answer_id: str, to: int | None, what: str) -> None:
        self.moves[answer_id] = to
        self.move_what[answer_id] = what

    # ----- the new state

    def finish(self) -> QuestionState:
        old = self.state
        version, author = self.version, self.author
        groups = dict(old.groups)
        removed = dict(old.removed) if self.removal_what or self._restores_removed() else old.removed
        created: list[int] = []
        changed: list[int] = []
        for gid, g in self.group_changes.items():
            if g is None:
                groups.pop(gid, None)
                removed[gid] = Mark(version, author, self.removal_what[gid], self.removal_lineage[gid])
            else:
                if gid in old.groups:
                    changed.append(gid)
                else:
                    created.append(gid)
                    removed.pop(gid, None)
                groups[gid] = g

        moved = [a for a, to in self.moves.items() if old.location[a] != to]
        location = old.location
        ungrouped = old.ungrouped
        answer_marks = old.answer_marks
        touched_answers = set(moved) | set(self.override_changes) | set(self.check_changes)
        edit_id = self.edit.edit_id
        if touched_answers:
            answer_marks = dict(old.answer_marks)
            for a in touched_answers:
                if a in moved:
                    what = self.move_what[a]
                elif a in self.override_changes:
                    what = self.override_what[a]
                else:
                    what = self.check_what[a]
                answer_marks[a] = Mark(version, author, what, self.lineage.get(a, edit_id))
        if moved:
            location = dict(old.location)
            leaving = {a for a in moved if old.location[a] is None}
            arriving = [a for a in moved if self.moves[a] is None]
            for a in moved:
                location[a] = self.moves[a]
            ungrouped = _update_ungrouped(old.ungrouped, leaving, arriving, old.positions)

        positions = old.positions
        if self.added:
            # Late answers come after every answer there is, so the ungrouped bucket stays in
            # position order by appending them.
            positions = dict(old.positions)
            location = dict(location)
            answer_marks = dict(answer_marks)
            for a, to in self.added.items():
                positions[a] = len(positions)
                location[a] = to
                where = "ungrouped" if to is None else f"in group {to}"
                answer_marks[a] = Mark(version, author, f"added late ({where})", edit_id)
            ungrouped = ungrouped + tuple(a for a, to in self.added.items() if to is None)

        overrides = _changed(old.overrides, self.override_changes)
        grade_checks = _changed(old.grade_checks, self.check_changes)

        record = UndoRecord(
            edit_id=self.edit.edit_id,
            author=author,
            kind=self.edit.kind,
            undoes=self.undoes,
            groups_before={gid: old.groups.get(gid) or old.removed.get(gid) for gid in self.group_changes},
            marks_before={a: old.answer_marks.get(a) for a in touched_answers},
            locations_before={a: old.location[a] for a in moved},
            overrides_before={a: old.overrides.get(a) for a in self.override_changes},
            attributes_before={
                name: (getattr(old, name), getattr(old, _ATTRIBUTE_MARKS[name])) for name in self.attribute_changes
            },
            checks_before={a: old.grade_checks.get(a) for a in self.check_changes},
        )
        records = dict(old.records)
        records[record.edit_id] = record
        undone = old.undone
        if self.undoes is not None:
            undone = dict(old.undone)
            undone[self.undoes] = self.edit.edit_id
            target = old.records[self.undoes]
            if target.undoes is not None:
                # Undoing an undo re-applies the edit it had reversed; if that edit was itself
                # an undo, the edit it reversed is reversed again.
                again = old.records[target.undoes]
                undone.pop(again.edit_id, None)
                if again.undoes is not None:
                    undone[again.undoes] = again.edit_id

        attributes: dict[str, object] = {}
        for name, (value, what, lineage) in self.attribute_changes.items():
            attributes[name] = value
            attributes[_ATTRIBUTE_MARKS[name]] = Mark(version, author, what, edit_id if lineage is None else lineage)

        # The question's attributes (maximum, references, rubric) carry over from ``old``
        # unless this edit set them: no list of them to keep in step here.
        state = replace(
            old,
            version=version,
            groups=groups,
            ungrouped=ungrouped,
            overrides=overrides,
            next_group_id=self.next_group_id,
            location=location,
            positions=positions,
            answer_marks=answer_marks,
            removed=removed,
            records=records,
            undone=undone,
            grade_checks=grade_checks,
            **attributes,
        )
        change = Change(
            edit_id=self.edit.edit_id,
            author=author,
            kind=self.edit.kind,
            groups_changed=tuple(sorted(changed)),
            groups_created=tuple(sorted(created)),
            groups_removed=tuple(sorted(g for g, v in self.group_changes.items() if v is None)),
            answers_moved=tuple(moved),
            answers_added=tuple(self.added),
            grade_changes=_grade_changes(old, state, moved, self.override_changes, self.group_changes),
            grades_checked=tuple(self.check_changes),
        )
        return replace(state, last_change=change)

    def _restores_removed(self) -> bool:
        return any(g is not None and gid in self.state.removed for gid, g in self.group_changes.items())


V = TypeVar("V")


def _changed(mapping: Mapping[str, V], changes: Mapping[str, V | None]) -> Mapping[str, V]:
    """``mapping`` with ``changes`` applied (``None`` removes the key); the same object when
    there are none, so that untouched states share it."""
    if not changes:
        return mapping
    out = dict(mapping)
    for key, value in changes.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = value
    return out


def _attribute_change(name: str, mark: Mark) -> str:
    """``"the question's maximum score was set to 5 by ada at version 3"``."""
    return f"the question's {_ATTRIBUTE_NAMES[name]} {mark.what} by {_who(mark.author)} at version {mark.version}"


def _grade_in(state: QuestionState, group_id: int) -> Grade | None:
    g = state.groups.get(group_id)
    return None if g is None else g.grade


def _who(author: str | None) -> str:
    return _INITIAL if author is None else author


def _update_ungrouped(
    ungrouped: tuple[str, ...], leaving: set[str], arriving: list[str], positions: Mapping[str, int]
) -> tuple[str, ...]:
    """The ungrouped bucket, kept in import order, without a full sort per edit."""
    kept = [a for a in ungrouped if a not in leaving] if leaving else list(ungrouped)
    if len(arriving) > 32:
        return tuple(sorted(kept + arriving, key=positions.__getitem__))
    for a in arriving:
        bisect.insort(kept, a, key=positions.__getitem__)
    return tuple(kept)


def _grade_changes(
    old: QuestionState,
    new: QuestionState,
    moved: list[str],
    override_changes: Mapping[str, Grade | None],
    group_changes: Mapping[int, GroupState | None],
) -> tuple[GradeChange, ...]:
    candidates: dict[str, None] = dict.fromkeys(moved)
    candidates.update(dict.fromkeys(override_changes))
    for gid, g in group_changes.items():
        before = old.groups.get(gid)
        if g is not None and before is not None and _grade_key(g.grade) != _grade_key(before.grade):
            candidates.update(dict.fromkeys(g.members))
    changes = []
    for a in candidates:
        before, after = old.grade_of(a), new.grade_of(a)
        if _grade_key(before) != _grade_key(after):
            changes.append(GradeChange(a, before, after))
    return tuple(changes)


# --------------------------------------------------------------------------- handlers


def _confirm(b: _Builder, p: Confirm) -> None:
    g = b.group(p.group_id)
    b.refuse_if_problems()
    assert g is not None
    if g.status == CONFIRMED:
        b.refuse(f"group {g.group_id} is already confirmed (by {_who(g.changed_by)}); nothing to do")
    b.set_group(replace(g, status=CONFIRMED), "confirmed")


def _merge(b: _Builder, p: Merge) -> None:
    into = b.group(p.into)
    others = [b.group(g) for g in p.others]
    b.refuse_if_problems()
    assert into is not None
    members = list(into.members)
    for other in others:
        assert other is not None
        members.extend(other.members)
        for a in other.members:
            b.move(a, into.group_id, f"moved to group {into.group_id} (group {other.group_id} merged into it)")
        b.remove_group(other.group_id, f"merged into group {into.group_id}")
    names = ", ".join(str(g) for g in p.others)
    b.set_group(replace(into, members=tuple(members)), f"merged with group(s) {names}")


def _split(b: _Builder, p: Split) -> None:
    g = b.group(p.group_id)
    b.refuse_if_problems()
    assert g is not None
    given = {a for part in p.parts for a in part}
    members = set(g.members)
    if given != members:
        missing, foreign = members - given, given - members
        reasons = []
        if foreign:
            reasons.append(f"answer(s) {_some(foreign)} are not in group {g.group_id}")
        if missing:
            reasons.append(f"member(s) {_some(missing)} of group {g.group_id} are in no part; parts must hold every member")
        raise EditRefused(b.state.question_id, reasons, b.state.version)
    part_of = {a: i for i, part in enumerate(p.parts) for a in part}
    ordered: list[list[str]] = [[] for _ in p.parts]
    for a in g.members:  # members keep the group's most-typical-first order
        ordered[part_of[a]].append(a)
    new_ids = [b.new_group_id() for _ in p.parts[1:]]
    titles = p.titles or (g.title, *(_part_title(g.title, i + 2) for i in range(len(new_ids))))
    b.set_group(
        replace(g, members=tuple(ordered[0]), title=titles[0]),
        "split into groups " + ", ".join(str(x) for x in [g.group_id, *new_ids]),
    )
    for gid, part, title in zip(new_ids, ordered[1:], titles[1:], strict=True):
        b.set_group(GroupState(gid, title, tuple(part), blank=g.blank), f"created by splitting group {g.group_id}")
        for a in part:
            b.move(a, gid, f"moved to group {gid} (group {g.group_id} split)")


def _move(b: _Builder, p: Move) -> None:
    target: GroupState | None = None
    if isinstance(p.to, int):
        target = b.group(p.to)
    known = [a for a in p.answer_ids if b.answer(a)]
    # The groups the answers leave change too: like the target, each must be as its author
    # saw it. A group confirmed or graded since then is not emptied behind that decision.
    for src in sorted({b.state.location[a] for a in known} - {None, p.to}):
        b.group(src)
    b.refuse_if_problems()
    old = b.state
    if p.to == NEW:
        moving = list(known)
        gid = b.new_group_id()
        title = p.title or f"Group {gid}"
        b.set_group(GroupState(gid, title, tuple(moving)), f"created by moving {_count(len(moving), 'answer')} into it")
        dest: int | None = gid
        where = f"moved to new group {gid}"
    else:
        dest = None if p.to is None else int(p.to)
        moving = [a for a in known if old.location[a] != dest]
        if not moving:
            place = "ungrouped" if dest is None else f"in group {dest}"
            b.refuse(f"answer(s) {_some(known)} are already {place}; nothing to do")
        where = "moved to the ungrouped answers" if dest is None else f"moved to group {dest}"
        if target is not None:
            b.set_group(replace(target, members=target.members + tuple(moving)), f"changed ({_count(len(moving), 'answer')} moved in)")
    leaving: dict[int, set[str]] = {}
    for a in moving:
        src = old.location[a]
        if src is not None:
            leaving.setdefault(src, set()).add(a)
        b.move(a, dest, where)
    for src, out in leaving.items():
        g = b.current(src)
        b.set_group(replace(g, members=tuple(m for m in g.members if m not in out)), f"changed ({_count(len(out), 'answer')} moved out)")


def _delete(b: _Builder, p: Delete) -> None:
    g = b.group(p.group_id)
    b.refuse_if_problems()
    assert g is not None
    for a in g.members:
        b.move(a, None, f"moved to the ungrouped answers (group {g.group_id} deleted)")
    b.remove_group(g.group_id, "deleted")


def _rename(b: _Builder, p: Rename) -> None:
    g = b.group(p.group_id)
    b.refuse_if_problems()
    assert g is not None
    if g.title == p.title:
        b.refuse(f"group {g.group_id} is already titled {p.title!r}; nothing to do")
    b.set_group(replace(g, title=p.title), f"renamed from {g.title!r}")


def _grade_group(b: _Builder, p: GradeGroup) -> None:
    g = b.group(p.group_id)
    if not p.clears:
        b.max_score_seen()
    b.refuse_if_problems()
    assert g is not None
    if p.clears:
        if g.grade is None:
            b.refuse(f"group {g.group_id} has no grade to clear; nothing to do")
        b.set_group(replace(g, grade=None), "cleared of its grade")
        return
    grade = b.rubric_grade(p.score, p.comment, p.items, p.adjustment)
    if grade.same_as(g.grade):
        b.refuse(f"group {g.group_id} already has grade {_score(grade.score)} with that comment; nothing to do")
    b.set_group(replace(g, grade=grade), f"graded {_score(grade.score)}")


def _grade_answer(b: _Builder, p: GradeAnswer) -> None:
    b.answer(p.answer_id)
    if not p.clears:
        b.max_score_seen()
    b.refuse_if_problems()
    current = b.state.overrides.get(p.answer_id)
    if p.clears:
        if current is None:
            b.refuse(f"answer {p.answer_id!r} has no grade override to clear; nothing to do")
        b.set_override(p.answer_id, None, "cleared of its grade override")
        return
    grade = b.rubric_grade(p.score, p.comment, p.items, p.adjustment)
    if grade.same_as(current):
        b.refuse(f"answer {p.answer_id!r} already has override {_score(grade.score)} with that comment; nothing to do")
    b.set_override(p.answer_id, grade, f"given the grade override {_score(grade.score)}")


def _check_grades(b: _Builder, p: CheckGrades) -> None:
    state = b.state
    ungraded: list[str] = []
    for a in p.answer_ids:
        if not b.answer(a):
            continue
        grade = state.grade_of(a)
        if grade is None:
            ungraded.append(a)
            continue
        # What the grader saw must still be what is there: the answer (moved, given its own
        # grade, checked) and, for a grade it has from its group, the group (regraded, or put
        # back by an undo); for a rubric grade, the rubric (an item repriced).
        if a not in state.overrides:
            b.group(state.location[a])  # type: ignore[arg-type]
        if grade.items:
            b.attribute_seen("rubric")
    # A score checked against one maximum is not checked against another ("4" of 10 is not
    # "4" of 20), as for grading.
    b.max_score_seen()
    if ungraded:
        b.problems.append(f"answer(s) {_some(ungraded)} have no grade to check; grade them first")
    b.refuse_if_problems()
    unchecked = [a for a in p.answer_ids if state.grade_check(a) is None]
    if not unchecked:
        check = state.grade_checks[p.answer_ids[0]]
        also = "" if len(p.answer_ids) == 1 else f" (and the other {len(p.answer_ids) - 1} too)"
        b.refuse(
            f"answer {p.answer_ids[0]!r}'s grade {_score(check.grade.score)} was already checked by {check.by} "
            f"at version {check.version}{also}; nothing to do"
        )
    for a in unchecked:
        grade = state.grade_of(a)
        assert grade is not None
        b.set_check(a, GradeCheck(grade, b.author, b.version), f"checked at grade {_score(grade.score)}")


def _undo(b: _Builder, p: Undo) -> None:
    state = b.state
    record = state.records.get(p.edit_id)
    if record is None:
        b.refuse(f"edit {p.edit_id} does not exist in question {state.question_id} (version {state.version})")
    assert record is not None
    if record.kind == AddAnswers.kind:
        b.refuse(
            f"edit {p.edit_id} added late answers, which stay once submitted; move or grade them instead of undoing it"
        )
    # Everything the edit changed must still show its result: otherwise restoring its
    # before-images would silently revert later edits. An item shows the edit's result when
    # its lineage (set_by) is the one the edit left; edits undone since in reverse order
    # put that lineage back.
    reversed_ = state.records[record.undoes] if record.undoes is not None else None
    stale: list[tuple[str, int]] = []  # (what changed, the edit that changed it)
    # An undo restores what its edit changed (lineage: the before-image's) and may rescore
    # grades its edit never touched (lineage: the undo itself, set like any edit's).
    for gid in record.groups_before:
        expected = (
            record.edit_id if reversed_ is None or gid not in reversed_.groups_before
            else _lineage(reversed_.groups_before[gid])
        )
        g = state.groups.get(gid)
        if g is not None:
            if g.set_by != expected:
                said = f"group {gid} was {g.change} by {_who(g.changed_by)} at version {g.changed_at_version}"
                stale.append(_standing(state, said, g.set_by, g.changed_at_version, expected))
            else:
                b.group(gid)  # the author must have seen it as it is
        else:
            mark = state.removed[gid]
            if mark.set_by != expected:
                said = f"group {gid} was {mark.what} by {_who(mark.author)} at version {mark.version}"
                stale.append(_standing(state, said, mark.set_by, mark.version, expected))
            elif mark.version > b.edit.base_version:
                b.problems.append(f"group {gid} was {mark.what} by {_who(mark.author)} at version {mark.version}")
    touched = record.locations_before.keys() | record.overrides_before.keys() | record.checks_before.keys()
    for a in sorted(touched, key=state.positions.__getitem__):
        expected = (
            record.edit_id if reversed_ is None or a not in reversed_.marks_before else _lineage(reversed_.marks_before[a])
        )
        mark = state.answer_marks[a]
        if mark.set_by != expected:
            said = f"answer {a!r} was {mark.what} by {_who(mark.author)} at version {mark.version}"
            stale.append(_standing(state, said, mark.set_by, mark.version, expected))
        else:
            b.answer(a)
    for name in record.attributes_before:
        expected = record.edit_id if reversed_ is None else _lineage(reversed_.attributes_before[name][1])
        mark = getattr(state, _ATTRIBUTE_MARKS[name])
        if _lineage(mark) != expected:
            assert mark is not None
            stale.append(_standing(state, _attribute_change(name, mark), mark.set_by, mark.version, expected))
        else:
            b.attribute_seen(name)
    stale += _rubric_dependents(state, record)
    stale += _max_score_dependents(state, record)
    if stale and p.edit_id in state.undone:
        undo_id = state.undone[p.edit_id]
        b.refuse(f"edit {p.edit_id} was already undone by edit {undo_id} ({state.records[undo_id].author})")
    # An edit marked undone whose result is nevertheless in place again (its undo's effect was
    # itself reverted by a later undo) may be undone: the lineage, not the history, decides.
    if stale:
        latest = max(v for _, v in stale)
        shown = "; ".join(s for s, _ in stale[:3]) + (f"; and {len(stale) - 3} more" if len(stale) > 3 else "")
        late = sorted({v for _, v in stale if v in state.records and state.records[v].kind == AddAnswers.kind})
        if late:
            # Late answers stay once submitted, so pointing at their edit would send the
            # grader round in a circle: say what can be done instead.
            b.refuse(
                f"edit {p.edit_id} cannot be undone: {shown}; late answers (edit {late[-1]}) stay once "
                "submitted, so make the change by hand instead (move, merge, split or rename)"
            )
        # The next undo to try; ``_apply`` works out the whole chain and says it.
        b.refuse(f"edit {p.edit_id} cannot be undone: {shown}", undo_plan=(latest,))
    b.refuse_if_problems()
    what = f"restored by undoing edit {p.edit_id}"
    for gid, before in record.groups_before.items():
        if isinstance(before, GroupState):
            b.set_group(before, what, set_by=before.set_by)
        else:
            b.remove_group(gid, f"removed by undoing edit {p.edit_id}", set_by=_lineage(before))
    for a, before_loc in record.locations_before.items():
        b.move(a, before_loc, f"moved back by undoing edit {p.edit_id}")
    for a, before_grade in record.overrides_before.items():
        b.set_override(a, before_grade, f"given back its earlier override by undoing edit {p.edit_id}")
    for a, before_check in record.checks_before.items():
        b.set_check(a, before_check, f"given back its earlier grade check by undoing edit {p.edit_id}")
    for a in touched:
        b.lineage[a] = _lineage(record.marks_before[a])
    for name, (before_value, before_mark) in record.attributes_before.items():
        b.set_attribute(name, before_value, f"set back by undoing edit {p.edit_id}", _lineage(before_mark))
    b.undoes = p.edit_id


def _standing(state: QuestionState, said: str, set_by: int, version: int, expected: int) -> tuple[str, int]:
    """A change that keeps an undo from going through, with the edit to undo for it.

    The item should show edit ``expected``'s result and shows ``set_by``'s. When that is a
    later edit's, undo it: the one whose result stands, not the last to touch the item
    (after an undo, the item shows an earlier edit's result, and undoing the undo would only
    bring back what it took away, so the advice would go round for ever). When it is an
    earlier one's (the import's, 0), ``expected`` itself was undone since: undo that undo.
    """
    if set_by > expected:
        return (said, version) if set_by == version else (f"{said} (it shows edit {set_by}'s result)", set_by)
    undo = state.undone.get(expected)
    if undo is not None and undo != version:
        return f"{said} (edit {expected} was undone by edit {undo})", undo
    return said, version


def _add_answers(b: _Builder, p: AddAnswers) -> None:
    state = b.state
    known = [a for a in p.answer_ids if a in state.positions]
    if known:
        b.problems.append(
            f"answer(s) {_some(known)} are already answers to question {state.question_id}; give late answers new ids"
        )
    for gid in sorted({g for g in p.to if g is not None}):
        g = b.group(gid)
        if g is None:
            continue
        if g.status == CONFIRMED or g.grade is not None:
            reviewed = "graded" if g.grade is not None else "confirmed"
            b.problems.append(
                f"group {gid} is {reviewed}: a late answer joins only a group nobody has reviewed (leave it ungrouped)"
            )
    b.refuse_if_problems()
    joining: dict[int, list[str]] = {}
    for a, to in zip(p.answer_ids, p.to, strict=True):
        b.added[a] = to
        if to is not None:
            joining.setdefault(to, []).append(a)
    for gid, late in joining.items():
        g = b.current(gid)
        b.set_group(replace(g, members=g.members + tuple(late)), f"changed ({_count(len(late), 'late answer')} added)")


def _set_max_score(b: _Builder, p: SetMaxScore) -> None:
    b.attribute_seen("max_score")
    b.refuse_if_problems()
    if p.max_score == b.state.max_score:
        if p.max_score is None:
            b.refuse("the question has no maximum score to remove; nothing to do")
        b.refuse(f"the question's maximum score is already {_score(p.max_score)}; nothing to do")
    b.set_attribute("max_score", p.max_score, "removed" if p.max_score is None else f"set to {_score(p.max_score)}")


def _set_references(b: _Builder, p: SetReferences) -> None:
    b.attribute_seen("reference_answers")
    b.refuse_if_problems()
    if p.texts == b.state.reference_answers:
        already = "already has no reference answers" if not p.texts else "already has exactly these reference answers"
        b.refuse(f"the question {already}; nothing to do")
    b.set_attribute("reference_answers", p.texts, "removed" if not p.texts else "set")


def _set_rubric(b: _Builder, p: SetRubric) -> None:
    state = b.state
    b.attribute_seen("rubric")
    b.refuse_if_problems()
    if p.items == state.rubric:
        b.refuse("the question's rubric is already exactly this; nothing to do")
    retired = state.retired_rubric_items()
    reused = [i for i in p.items if i.item_id in retired]
    if reused:
        old = retired[reused[0].item_id]
        b.refuse(
            f"rubric item id {old.item_id} was {old.description!r} in an earlier rubric; give a new item a new id "
            f"(the next free one is {state.next_rubric_item_id()})"
        )
    new_points = {i.item_id: i.points for i in p.items}
    used = _rubric_use(state)
    dropped = sorted(i for i in used if i not in new_points)
    if dropped:
        item = state.rubric_item(dropped[0])
        name = repr(item.description) if item is not None else str(dropped[0])
        # Named: a group emptied by moves, or whose members all have their own grades, still
        # holds its grade (an answer moved in would get it), though no answer shows it.
        holders = [f"group {gid}" for gid, g in sorted(state.groups.items()) if g.grade is not None and dropped[0] in g.grade.items]
        holders += [f"answer {a!r}" for a, g in state.overrides.items() if dropped[0] in g.items]
        shown = ", ".join(holders[:5]) + (" ..." if len(holders) > 5 else "")
        b.refuse(
            f"rubric item {name} is part of {_count(used[dropped[0]], 'grade')} ({shown}); "
            "give those groups or answers another grade before removing it"
        )
    old_points = {i.item_id: i.points for i in state.rubric}
    repriced = {i for i, pts in new_points.items() if i in old_points and old_points[i] != pts}
    names = ", ".join(repr(i.description) for i in p.items if i.item_id in repriced)
    what = f"regraded (rubric item {names} changed points)"
    for gid, g in state.groups.items():
        if g.grade is not None and repriced.intersection(g.grade.items):
            b.set_group(replace(g, grade=_rescored(g.grade, new_points)), what)
    for a, grade in state.overrides.items():
        if repriced.intersection(grade.items):
            b.set_override(a, _rescored(grade, new_points), what)
    if not p.items:
        change = "removed"
    elif not state.rubric:
        change = f"set ({_count(len(p.items), 'item')})"
    else:
        change = "changed" + (f" (item {names} now worth other points)" if repriced else "")
    b.set_attribute("rubric", p.items, change)


def _rubric_dependents(state: QuestionState, record: UndoRecord) -> list[tuple[str, int]]:
    """Grades given after ``record``'s edit with a rubric item whose points undoing it would
    change (or whose item it would remove): undoing it first would leave them wrong."""
    if "rubric" not in record.attributes_before:
        return []
    restored = {i.item_id: i.points for i in record.attributes_before["rubric"][0]}  # type: ignore[union-attr]
    affected = {i.item_id for i in state.rubric if restored.get(i.item_id) != i.points}
    found: list[tuple[str, int]] = []
    for gid, g in state.groups.items():
        if g.grade is not None and g.grade.version > record.edit_id and affected.intersection(g.grade.items):
            found.append((f"group {gid} was graded with the rubric by {_who(g.grade.by)} at version {g.grade.version}", g.grade.version))
    for a, grade in state.overrides.items():
        if grade.version > record.edit_id and affected.intersection(grade.items):
            found.append((f"answer {a!r} was graded with the rubric by {_who(grade.by)} at version {grade.version}", grade.version))
    return found


def _max_score_at(state: QuestionState, version: int) -> float | None:
    """The question's maximum score as it was at ``version``: the value before the first
    change of it made after that version (undos included), else the current one."""
    for edit_id in sorted(state.records):
        if edit_id > version and "max_score" in state.records[edit_id].attributes_before:
            return state.records[edit_id].attributes_before["max_score"][0]  # type: ignore[return-value]
    return state.max_score


def _max_score_dependents(state: QuestionState, record: UndoRecord) -> list[tuple[str, int]]:
    """What undoing ``record``'s edit would make mean another thing than its grader meant:
    grades it brings back that were given under another maximum than today's, and, when it
    changed the maximum, grades given since under the maximum it set."""
    found: list[tuple[str, int]] = []
    now = state.max_score
    if "max_score" in record.attributes_before and record.attributes_before["max_score"][0] != now:
        grades = [(f"group {gid}", g.grade) for gid, g in state.groups.items() if g.grade is not None]
        grades += [(f"answer {a!r}", grade) for a, grade in state.overrides.items()]
        for what, grade in grades:
            if grade.version > record.edit_id:
                said = f"{what} was graded {_score(grade.score)} out of {_maximum(now)} by {_who(grade.by)}"
                found.append((f"{said} at version {grade.version}", grade.version))
    mark = state.max_score_mark
    if mark is None:
        return found  # the maximum never changed: every grade was given under today's
    # Grades the undo gives back in place of today's (not those it leaves as they are, as
    # when undoing a rename of a graded group).
    brought_back = [
        (f"group {gid}", before.grade)
        for gid, before in record.groups_before.items()
        if isinstance(before, GroupState) and before.grade != getattr(state.groups.get(gid), "grade", None)
    ]
    brought_back += [
        (f"answer {a!r}", grade) for a, grade in record.overrides_before.items() if grade != state.overrides.get(a)
    ]
    changed = "removed" if now is None else f"changed to {_score(now)}"
    # A grade stood, just before the edit, under the maximum of that moment (a maximum changed
    # after it was given and before the edit kept it standing, out of the new maximum); the
    # undo gives it back under today's, or under the one it restores when it changed it.
    then = _max_score_at(state, record.edit_id - 1)
    after = record.attributes_before["max_score"][0] if "max_score" in record.attributes_before else now
    for what, grade in brought_back:
        if grade is None:
            continue
        if then != after:
            said = f"{what}'s earlier grade {_score(grade.score)} was given out of {_maximum(then)}"
            # The change of the maximum that stands (after an undo, an earlier one's).
            found.append((f"{said}, and the maximum was {changed} by {_who(mark.author)} at version {mark.version}", mark.set_by or mark.version))
    return found


def _maximum(value: float | None) -> str:
    return "no maximum" if value is None else _score(value)


def _rubric_use(state: QuestionState) -> dict[int, int]:
    """Per rubric item in use, how many grades (of groups, and answers' own) have it."""
    used: dict[int, int] = {}
    grades = [g.grade for g in state.groups.values() if g.grade is not None] + list(state.overrides.values())
    for grade in grades:
        for i in grade.items:
            used[i] = used.get(i, 0) + 1
    return used


def _rubric_total(items: tuple[int, ...], adjustment: float, points: Mapping[int, float]) -> float:
    """What a rubric grade is worth: its items' points and its adjustment, summed exactly once
    (fsum), so that the same grade always gets the same score, and rounded to 9 decimals: 0.1
    and 0.2 points are 0.3, as the grader reads them, not 0.30000000000000004 (which a maximum
    of 0.3 would refuse as above it)."""
    try:
        total = math.fsum([*(points[i] for i in items), adjustment])
    except OverflowError:
        total = math.inf
    if not math.isfinite(total):  # items of 1e308 points each: no score holds their sum
        raise _PointsOverflow(f"rubric items {', '.join(map(str, items))} sum to more points than any score can hold")
    return round(total, 9) + 0.0  # -0.0 is 0


def _rescored(grade: Grade, points: Mapping[int, float]) -> Grade:
    """The grade with the score its items (and adjustment) are worth by ``points`` (the same
    object when equal)."""
    total = _rubric_total(grade.items, grade.adjustment, points)
    return grade if total == grade.score else replace(grade, score=total)


def _lineage(before: GroupState | Mark | None) -> int:
    """The ``set_by`` of a before-image; 0 for what had never changed (or never existed)."""
    return 0 if before is None else before.set_by


_HANDLERS = {
    AddAnswers: _add_answers,
    Confirm: _confirm,
    Merge: _merge,
    Split: _split,
    Move: _move,
    Delete: _delete,
    Rename: _rename,
    GradeGroup: _grade_group,
    GradeAnswer: _grade_answer,
    SetMaxScore: _set_max_score,
    SetReferences: _set_references,
    SetRubric: _set_rubric,
    CheckGrades: _check_grades,
    Undo: _undo,
}


def _some(items: Iterable[str], limit: int = 5) -> str:
    items = sorted(items)
    shown = ", ".join(repr(a) for a in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _score(score: float) -> str:
    return f"{score:g}"


# --------------------------------------------------------------------------- automatic split


def auto_split_parts(
    state: QuestionState,
    group_id: int,
    k: int,
    vectors_by_answer_id: Mapping[str, np.ndarray],
    seed: int = 0,
) -> tuple[tuple[str, ...], ...]:
    """Sub-cluster one group into ``k`` parts with k-means, for an explicit ``Split``.

    The clustering happens before the edit is logged, so the log holds the parts and the fold
    stays pure and replayable whatever the model or library version.

    Parameters
    ----------
    state : QuestionState
    group_id : int
    k : int
        Number of parts, from 2 to the number of distinct answers in the group.
    vectors_by_answer_id : mapping of str to ndarray of shape (dim,)
        An embedding for every member.
    seed : int
        Seeds k-means; the same inputs and seed give the same parts.

    Returns
    -------
    tuple of tuple of str
        ``k`` non-empty parts, largest first, members in the group's order.
    """
    if group_id not in state.groups:
        raise ValueError(f"group {group_id} does not exist in question {state.question_id}")
    members = state.groups[group_id].members
    missing = [a for a in members if a not in vectors_by_answer_id]
    if missing:
        raise ValueError(f"no embedding for answer(s) {_some(missing)} of group {group_id}; embed them first")
    if isinstance(k, bool) or not isinstance(k, int) or k < 2:
        raise ValueError(f"k ({k!r}) must be an integer of at least 2")
    vectors = np.stack([np.asarray(vectors_by_answer_id[a], dtype=np.float64) for a in members])
    distinct = len(np.unique(np.round(vectors, 6), axis=0))
    if k > distinct:
        raise ValueError(
            f"k ({k}) must be at most the number of distinct answers in group {group_id} ({distinct}); "
            "identical answers cannot be told apart"
        )
    from sklearn.cluster import KMeans

    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(vectors)
    parts: dict[int, list[str]] = {}
    for a, label in zip(members, labels, strict=True):
        parts.setdefault(int(label), []).append(a)
    ordered = sorted(parts.values(), key=lambda part: (-len(part), members.index(part[0])))
    return tuple(tuple(part) for part in ordered)
