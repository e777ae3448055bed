"""JSON forms of edits, payloads and question states, for the store, snapshots and exports.

Every form is plain JSON (dicts, lists, strings, numbers) and round-trips exactly:
``edit_from_dict(edit_to_dict(e)) == e`` and ``state_from_dict(state_to_dict(s)) == s``.
Decoding checks what it reads and says which field is wrong, so that a damaged row is
reported rather than folded into a wrong state.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any, get_args

from grouper.edits import (
    Change,
    Edit,
    Grade,
    GradeAnswer,
    GradeChange,
    GradeCheck,
    GradeGroup,
    GroupState,
    Mark,
    Payload,
    QuestionState,
    RubricItem,
    UndoRecord,
)

__all__ = [
    "STATE_FORMAT",
    "edit_from_dict",
    "edit_to_dict",
    "payload_from_dict",
    "payload_to_dict",
    "state_from_dict",
    "state_to_dict",
]

#: Version of the state's JSON form; snapshots of another format are ignored (rebuilt).
#: 2: question attributes (maximum score, reference answers) and their undo records.
#: 3: the rubric attribute, and the rubric items of grades.
#: 4: the point adjustment of rubric grades.
#: 5: grade checks (``CheckGrades``) and their undo records.
#: 6: the fold changed (rubric totals rounded, a rubric change rescoring every rubric grade,
#:    trimmed move titles): snapshots of 5 may hold what a replay no longer gives.
STATE_FORMAT = 6

#: Every payload class by its kind: the members of the ``Payload`` union, so a new edit kind
#: needs no second list here.
PAYLOAD_TYPES: dict[str, type] = {cls.kind: cls for cls in get_args(Payload)}


# --------------------------------------------------------------------------- payloads and edits

#: Grading fields left out of a record when they hold their default, so that the records of
#: grades that do not use them are byte for byte what they were before those fields existed.
_OMITTED_WHEN_UNUSED: dict[str, object] = {"items": (), "adjustment": 0.0}


def payload_to_dict(payload: Payload) -> dict[str, Any]:
    """``{"kind": ..., field: value, ...}``; tuples become lists."""
    out: dict[str, Any] = {"kind": payload.kind}
    for f in fields(payload):
        value = getattr(payload, f.name)
        if f.name in _OMITTED_WHEN_UNUSED and value == _OMITTED_WHEN_UNUSED[f.name] and isinstance(payload, GradeGroup | GradeAnswer):
            continue  # a bare score (or items without adjustment): its record reads as before
        if isinstance(value, tuple):
            value = [list(v) if isinstance(v, tuple) else v for v in value]
        out[f.name] = value
    return out


def payload_from_dict(data: Mapping[str, Any]) -> Payload:
    """Inverse of :func:`payload_to_dict`.

    Raises
    ------
    ValueError
        Naming the unknown kind or the field that is missing or invalid.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"an edit payload must be a JSON object, found {type(data).__name__}")
    kind = data.get("kind")
    cls = PAYLOAD_TYPES.get(kind)  # type: ignore[arg-type]
    if cls is None:
        raise ValueError(f"unknown edit kind {kind!r}; known kinds: {', '.join(sorted(PAYLOAD_TYPES))}")
    names = {f.name for f in fields(cls)}
    extra = set(data) - names - {"kind"}
    if extra:
        raise ValueError(f"{kind} edit has unknown field(s) {sorted(extra)}")
    # Each payload checks its own fields (a part given as a string is refused there, not read
    # as its characters).
    values = {k: v for k, v in data.items() if k != "kind"}
    try:
        return cls(**values)
    except TypeError as exc:  # a missing required field
        raise ValueError(f"{kind} edit: {exc}") from None


def edit_to_dict(edit: Edit) -> dict[str, Any]:
    """The edit as one JSON object (the form of the JSONL export)."""
    return {
        "question_id": edit.question_id,
        "edit_id": edit.edit_id,
        "author": edit.author,
        "at": edit.at.isoformat(),
        "base_version": edit.base_version,
        "payload": payload_to_dict(edit.payload),
    }


def edit_from_dict(data: Mapping[str, Any]) -> Edit:
    """Inverse of :func:`edit_to_dict`.

    Raises
    ------
    ValueError
        Naming the field that is missing or invalid: numbers are taken as they were written
        (3.9 is not edit 3), never coerced.
    """
    if not isinstance(data, Mapping):
        raise ValueError(f"an edit record must be a JSON object, found {type(data).__name__}")
    missing = [name for name in ("question_id", "edit_id", "author", "at", "base_version", "payload") if name not in data]
    if missing:
        raise ValueError(f"edit record lacks the field {missing[0]!r}")
    for name in ("edit_id", "base_version"):
        value = data[name]
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"edit record: {name} must be a whole number, found {value!r}")
    if data["edit_id"] < 1:
        raise ValueError(f"edit record: edit_id must be 1 or more, found {data['edit_id']!r}")
    if not isinstance(data["question_id"], str) or not data["question_id"]:
        raise ValueError(f"edit record: question_id must be a non-empty string, found {data['question_id']!r}")
    try:
        at = datetime.fromisoformat(data["at"])
    except (TypeError, ValueError):
        raise ValueError(f"edit record: at must be an ISO 8601 time, found {data['at']!r}") from None
    try:
        payload = payload_from_dict(data["payload"])
    except ValueError as exc:
        raise ValueError(f"edit record {data['edit_id']}: {exc}") from None
    return Edit(
        edit_id=data["edit_id"],
        question_id=data["question_id"],
        author=data["author"],
        at=at,
        base_version=data["base_version"],
        payload=payload,
    )


# --------------------------------------------------------------------------- states


def _grade(g: Grade | None) -> list | None:
    if g is None:
        return None
    out: list = [g.score, g.comment, g.by, g.version]
    if g.items:  # a bare score's form is as before rubrics existed
        out.append(list(g.items))
    if g.adjustment:  # only a rubric grade has one
        out.append(g.adjustment)
    return out


def _grade_back(d: list | None) -> Grade | None:
    if d is None:
        return None
    return Grade(d[0], d[1], d[2], d[3], tuple(d[4]) if len(d) > 4 else (), d[5] if len(d) > 5 else 0.0)


def _check(c: GradeCheck | None) -> list | None:
    return None if c is None else [_grade(c.grade), c.by, c.version]


def _check_back(d: list | None) -> GradeCheck | None:
    if d is None:
        return None
    grade = _grade_back(d[0])
    assert grade is not None
    return GradeCheck(grade, d[1], d[2])


def _group(g: GroupState | None) -> dict | None:
    if g is None:
        return None
    return {
        "id": g.group_id,
        "title": g.title,
        "members": list(g.members),
        "status": g.status,
        "grade": _grade(g.grade),
        "blank": g.blank,
        "v": g.changed_at_version,
        "by": g.changed_by,
        "change": g.change,
        "set_by": g.set_by,
    }


def _group_back(d: dict | None) -> GroupState | None:
    if d is None:
        return None
    return GroupState(
        d["id"], d["title"], tuple(d["members"]), d["status"], _grade_back(d["grade"]), d["blank"], d["v"], d["by"], d["change"], d["set_by"]
    )


def _mark(m: Mark | None) -> list | None:
    return None if m is None else [m.version, m.author, m.what, m.set_by]


def _mark_back(d: list | None) -> Mark | None:
    return None if d is None else Mark(d[0], d[1], d[2], d[3])


def _before(g: GroupState | Mark | None) -> dict | list | None:
    # A group before an edit: a state (object), the mark of its removal (list) or nothing.
    return _mark(g) if isinstance(g, Mark) else _group(g)


def _before_back(d: dict | list | None) -> GroupState | Mark | None:
    return _mark_back(d) if isinstance(d, list) else _group_back(d)


def _attribute(name: str, value: object) -> object:
    if name == "rubric":
        return [list(i) for i in value]  # type: ignore[attr-defined]
    return list(value) if name == "reference_answers" and value is not None else value  # type: ignore[call-overload]


def _attribute_back(name: str, value: object) -> object:
    if name == "rubric":
        return tuple(RubricItem(*i) for i in value)  # type: ignore[attr-defined]
    return tuple(value) if name == "reference_answers" and value is not None else value  # type: ignore[call-overload]


def _record(r: UndoRecord) -> dict:
    return {
        "edit_id": r.edit_id,
        "author": r.author,
        "kind": r.kind,
        "undoes": r.undoes,
        "groups_before": [[gid, _before(g)] for gid, g in r.groups_before.items()],
        "marks_before": [[a, _mark(m)] for a, m in r.marks_before.items()],
        "locations_before": [[a, loc] for a, loc in r.locations_before.items()],
        "overrides_before": [[a, _grade(g)] for a, g in r.overrides_before.items()],
        "attributes_before": [[name, _attribute(name, v), _mark(m)] for name, (v, m) in r.attributes_before.items()],
        "checks_before": [[a, _check(c)] for a, c in r.checks_before.items()],
    }


def _record_back(d: dict) -> UndoRecord:
    return UndoRecord(
        edit_id=d["edit_id"],
        author=d["author"],
        kind=d["kind"],
        undoes=d["undoes"],
        groups_before={gid: _before_back(g) for gid, g in d["groups_before"]},
        marks_before={a: _mark_back(m) for a, m in d["marks_before"]},
        locations_before={a: loc for a, loc in d["locations_before"]},
        overrides_before={a: _grade_back(g) for a, g in d["overrides_before"]},
        attributes_before={name: (_attribute_back(name, v), _mark_back(m)) for name, v, m in d["attributes_before"]},
        checks_before={a: _check_back(c) for a, c in d["checks_before"]},
    )


def _change(c: Change | None) -> dict | None:
    if c is None:
        return None
    return {
        "edit_id": c.edit_id,
        "author": c.author,
        "kind": c.kind,
        "groups_changed": list(c.groups_changed),
        "groups_created": list(c.groups_created),
        "groups_removed": list(c.groups_removed),
        "answers_moved": list(c.answers_moved),
        "answers_added": list(c.answers_added),
        "grade_changes": [[g.answer_id, _grade(g.before), _grade(g.after)] for g in c.grade_changes],
        "grades_checked": list(c.grades_checked),
    }


def _change_back(d: dict | None) -> Change | None:
    if d is None:
        return None
    return Change(
        edit_id=d["edit_id"],
        author=d["author"],
        kind=d["kind"],
        groups_changed=tuple(d["groups_changed"]),
        groups_created=tuple(d["groups_created"]),
        groups_removed=tuple(d["groups_removed"]),
        answers_moved=tuple(d["answers_moved"]),
        answers_added=tuple(d.get("answers_added", ())),  # snapshots from before late answers lack it
        grade_changes=tuple(GradeChange(a, _grade_back(b), _grade_back(c)) for a, b, c in d["grade_changes"]),
        grades_checked=tuple(d["grades_checked"]),
    )


def state_to_dict(state: QuestionState) -> dict[str, Any]:
    """The whole state as JSON (what a snapshot stores). Locations are derived, not stored."""
    return {
        "format": STATE_FORMAT,
        "question_id": state.question_id,
        "version": state.version,
        "answer_ids": list(state.positions),
        "groups": [_group(g) for g in state.groups.values()],
        "overrides": [[a, _grade(g)] for a, g in state.overrides.items()],
        "next_group_id": state.next_group_id,
        "answer_marks": [[a, _mark(m)] for a, m in state.answer_marks.items()],
        "removed": [[gid, _mark(m)] for gid, m in state.removed.items()],
        "records": [_record(r) for r in state.records.values()],
        "undone": [[e, u] for e, u in state.undone.items()],
        "last_change": _change(state.last_change),
        "max_score": state.max_score,
        "max_score_mark": _mark(state.max_score_mark),
        "reference_answers": _attribute("reference_answers", state.reference_answers),
        "references_mark": _mark(state.references_mark),
        "rubric": _attribute("rubric", state.rubric),
        "rubric_mark": _mark(state.rubric_mark),
        "grade_checks": [[a, _check(c)] for a, c in state.grade_checks.items()],
    }


def state_from_dict(data: Mapping[str, Any]) -> QuestionState:
    """Inverse of :func:`state_to_dict`.

    Raises
    ------
    ValueError
        When the format is not :data:`STATE_FORMAT` or the data does not make a valid state.
    """
    if data.get("format") != STATE_FORMAT:
        raise ValueError(f"state format {data.get('format')!r} is not the supported format {STATE_FORMAT}")
    answer_ids = data["answer_ids"]
    positions = {a: i for i, a in enumerate(answer_ids)}
    groups = {}
    location: dict[str, int | None] = dict.fromkeys(answer_ids)
    for d in data["groups"]:
        g = _group_back(d)
        assert g is not None
        groups[g.group_id] = g
        for a in g.members:
            if a not in positions or location[a] is not None:
                raise ValueError(f"state of question {data['question_id']}: answer {a!r} is unknown or in two groups")
            location[a] = g.group_id
    return QuestionState(
        question_id=data["question_id"],
        version=data["version"],
        groups=groups,
        ungrouped=tuple(a for a in answer_ids if location[a] is None),
        overrides={a: _grade_back(g) for a, g in data["overrides"]},
        next_group_id=data["next_group_id"],
        location=location,
        positions=positions,
        answer_marks={a: _mark_back(m) for a, m in data["answer_marks"]},
        removed={gid: _mark_back(m) for gid, m in data["removed"]},
        records={r["edit_id"]: _record_back(r) for r in data["records"]},
        undone={e: u for e, u in data["undone"]},
        last_change=_change_back(data["last_change"]),
        max_score=data["max_score"],
        max_score_mark=_mark_back(data["max_score_mark"]),
        reference_answers=_attribute_back("reference_answers", data["reference_answers"]),
        references_mark=_mark_back(data["references_mark"]),
        rubric=_attribute_back("rubric", data["rubric"]),
        rubric_mark=_mark_back(data["rubric_mark"]),
        grade_checks={a: _check_back(c) for a, c in data["grade_checks"]},
    )
