"""Several graders interleave every edit and undo; a naive reference model says what must happen.

The reference model is written differently from ``grouper.edits`` on purpose: every group and
every answer is an item with a stack of ``(edit id, value)`` entries. An edit pushes its values;
undoing an edit pops them again, or pushes them back when what is undone is itself an undo; an
undo is allowed only when every item it affects still shows exactly what the undone edit left
there. Staleness is one number per item: the version at which it last changed.

After every step: the implementation agrees with the model on whether the edit was refused and
on the resulting groups, members, titles, statuses and grades; every answer is in exactly one
group or ungrouped; replaying the log from empty gives the same state; and an undo restores
what the undone edit had changed.

The question's maximum score is one more item: while it is set, every grade lies in [0, max],
and a grade made on a version from before the maximum last changed is refused. A grade means
its score out of the maximum it was given under, so an undo may neither change the maximum
under grades given since nor bring back a grade given under another maximum than today's (the
model's grades carry the version they were given at; graders see score and comment).

The graders' own placements (``grouper.review.grader_moves``) are read from the model too: an
answer whose latest change of group still in effect was a move.

A grade check is part of its answer's item (its group, own grade, and the grade checked): it
is stale like the answer, undone like it, and holds while the answer's grade is the one checked.
"""

from __future__ import annotations

import json

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edit_codec import state_from_dict, state_to_dict
from grouper.edits import (
    CONFIRMED,
    NEW,
    SUGGESTED,
    AddAnswers,
    CheckGrades,
    Confirm,
    Delete,
    EditRefused,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    Rename,
    SetMaxScore,
    SetReferences,
    Split,
    Undo,
    apply,
    initial_state,
    make_edit,
    replay,
)
from grouper.regroup import fixed_answers, plan_regroup, shaped_groups
from grouper.review import grader_moves

USERS = ("ta1", "ta2", "ta3")
TITLES = ("Canberra", "Sydney", "x", "y")
SCORES = (0.0, 0.5, 1.0, -1.0)
MAXIMA = (None, 0.5, 1.0, 2.0)
MAX = ("max",)  # the model's item for the question's maximum score
REFS = ("refs",)  # and for its reference answers (None: as imported)
REFERENCE_SETS = ((), ("Canberra",), ("Canberra", "It is Canberra"))
ABSENT = None


class Model:
    """The naive reference: stacks of values per item, one staleness version per item."""

    def __init__(self, answer_ids: list[str], groups: dict[int, tuple[str, tuple[str, ...], bool]]):
        self.answer_ids = answer_ids
        self.version = 0
        self.stacks: dict[tuple, list[tuple[int, object]]] = {}
        self.changed: dict[tuple, int] = {}
        loc = {a: None for a in answer_ids}
        for gid, (title, members, blank) in groups.items():
            self.stacks[("g", gid)] = [(0, (title, members, SUGGESTED, None, blank))]
            for a in members:
                loc[a] = gid
        for a in answer_ids:
            self.stacks[("a", a)] = [(0, (loc[a], None, None))]  # (group, own grade, grade checked)
        self.stacks[MAX] = [(0, None)]
        self.stacks[REFS] = [(0, None)]
        self.next_gid = max(groups, default=0) + 1
        self.writes: dict[int, dict[tuple, object]] = {}  # edit -> values it pushed
        self.effect: dict[int, tuple[str, int]] = {}  # edit -> ("push" | "pop", normal edit)
        self.after_tops: dict[int, dict[tuple, int]] = {}
        self.history = [self.content()]
        self.max_history = [None]  # the maximum after each version
        self.adds: set[int] = set()  # edits that added late answers

    # ----- reading

    def value(self, item: tuple):
        stack = self.stacks.get(item)
        return ABSENT if not stack else stack[-1][1]

    def top(self, item: tuple) -> int:
        stack = self.stacks.get(item)
        return 0 if not stack else stack[-1][0]

    def group(self, gid: int):
        return self.value(("g", gid))

    def loc(self, a: str):
        return self.value(("a", a))[0]

    def grades(self) -> list[tuple]:
        """Every grade in effect: groups' and answers' own, as (score, comment, given at)."""
        found = []
        for item, stack in self.stacks.items():
            v = stack[-1][1] if stack else ABSENT
            if item[0] == "g" and v is not ABSENT and v[3] is not None:
                found.append(v[3])
            elif item[0] == "a" and v is not ABSENT and v[1] is not None:
                found.append(v[1])
        return found

    def stale(self, item: tuple, base: int) -> bool:
        return self.changed.get(item, 0) > base

    def grade_fits(self, score, base: int) -> bool:
        """A new score fits: no maximum, or one the grader saw and the score lies under."""
        limit = self.value(MAX)
        if score is None:
            return True
        return not self.stale(MAX, base) and (limit is None or 0 <= score <= limit)

    def all_grades_fit(self, values: dict[tuple, object]) -> bool:
        """Every grade lies in [0, max] once ``values`` are the items' tops."""
        def val(item):
            return values[item] if item in values else self.value(item)

        limit = val(MAX)
        if limit is None:
            return True
        scores = []
        for item in set(self.stacks) | set(values):
            v = val(item)
            if item[0] == "g" and v is not ABSENT and v[3] is not None:
                scores.append(v[3][0])
            elif item[0] == "a" and v is not ABSENT and v[1] is not None:
                scores.append(v[1][0])
        return all(0 <= x <= limit for x in scores)

    def content(self):
        groups = []
        for item, stack in self.stacks.items():
            if item[0] == "g" and stack and stack[-1][1] is not ABSENT:
                title, members, status, grade, blank = stack[-1][1]
                groups.append((item[1], title, members, status, _shown(grade), blank))
        groups.sort()
        ungrouped = tuple(a for a in self.answer_ids if self.loc(a) is None)
        overrides = tuple(
            sorted((a, _shown(self.value(("a", a))[1])) for a in self.answer_ids if self.value(("a", a))[1])
        )
        return tuple(groups), ungrouped, overrides

    # ----- writing

    def commit(self, values: dict[tuple, object]) -> None:
        self.version += 1
        e = self.version
        for item, value in values.items():
            self.stacks.setdefault(item, [(0, ABSENT)]).append((e, value))
            self.changed[item] = e
        self.writes[e] = dict(values)
        self.effect[e] = ("push", e)
        self.after_tops[e] = {item: e for item in values}
        self.history.append(self.content())
        self.max_history.append(self.value(MAX))

    def undo(self, target: int, base: int) -> bool:
        """Undo ``target``; False (nothing changed) when it must be refused."""
        if target not in self.effect or target in self.adds:  # late answers stay once added
            return False
        tops = self.after_tops[target]
        if any(self.top(item) != t for item, t in tops.items()):
            return False
        if any(self.stale(item, base) for item in tops):
            return False
        how, normal = self.effect[target]
        after = {
            item: (self.stacks[item][-2][1] if how == "push" else self.writes[normal][item]) for item in tops
        }
        if not self.all_grades_fit(after):
            return False
        # A grade means its score out of the maximum it stood under: an undo that would
        # change the maximum under grades given since, or bring back a grade that stood (just
        # before the undone edit) under another maximum than the one it comes back to, is refused.
        now = self.value(MAX)
        if MAX in tops and after[MAX] != now and any(g[2] > target for g in self.grades()):
            return False
        then, back_under = self.max_history[target - 1], after[MAX] if MAX in tops else now
        for item in tops:
            current = self.value(item)
            if item[0] == "g" and after[item] is not ABSENT:
                restored, today = after[item][3], None if current is ABSENT else current[3]
            elif item[0] == "a":
                restored, today = after[item][1], current[1]
            else:
                continue
            if restored is not None and restored != today and then != back_under:
                return False
        self.version += 1
        u = self.version
        for item in tops:
            if how == "push":
                self.stacks[item].pop()
            else:
                self.stacks[item].append((normal, self.writes[normal][item]))
            self.changed[item] = u
        self.effect[u] = ("pop" if how == "push" else "push", normal)
        self.after_tops[u] = {item: self.top(item) for item in tops}
        self.history.append(self.content())
        self.max_history.append(self.value(MAX))
        return True


def _grouping(n: int, labels: list[int], blank_id: int | None) -> tuple[Grouping, dict]:
    groups = {}
    for gid in sorted({label for label in labels if label != UNGROUPED}):
        members = tuple(i for i, label in enumerate(labels) if label == gid)
        groups[gid] = Group(gid, f"group {gid}", members, blank=(gid == blank_id))
    return Grouping(np.array(labels), np.ones(n), tuple(groups.values())), groups


class GradingSession(RuleBasedStateMachine):
    """Graders with possibly stale views edit one question."""

    @initialize(data=st.data())
    def start(self, data):
        n = data.draw(st.integers(4, 10), label="answers")
        k = data.draw(st.integers(1, 3), label="groups")
        labels = data.draw(st.lists(st.sampled_from([UNGROUPED, *range(1, k + 1)]), min_size=n, max_size=n))
        present = sorted({label for label in labels if label != UNGROUPED})
        # renumber 1..m as the clustering does
        renumber = {old: new for new, old in enumerate(present, start=1)}
        labels = [renumber.get(label, UNGROUPED) for label in labels]
        blank_id = len(present) if present and data.draw(st.booleans(), label="blank") else None
        self.answer_ids = [f"a{i}" for i in range(n)]
        grouping, groups = _grouping(n, labels, blank_id)
        self.initial = initial_state("q", self.answer_ids, grouping)
        self.state = self.initial
        self.log = []
        self.model = Model(
            self.answer_ids,
            {gid: (g.title, tuple(self.answer_ids[i] for i in g.members), g.blank) for gid, g in groups.items()},
        )
        self.seen = {u: 0 for u in USERS}

    # ----- helpers

    def view(self, user: str):
        groups, ungrouped, _ = self.model.history[self.seen[user]]
        return {g[0]: g for g in groups}, ungrouped

    def submit(self, user: str, payload, accepted_by_model: bool) -> None:
        edit = make_edit(self.state, user, payload, base_version=self.seen[user])
        try:
            new = apply(self.state, edit)
        except EditRefused as refused:
            assert not accepted_by_model, f"{user}: {payload} was refused but the model accepts it"
            if refused.undo_plan:
                self.follow_the_advice(user, payload, refused.undo_plan)
            self.seen[user] = self.state.version  # a refused grader reloads, as the message says
            return
        assert accepted_by_model, f"{user}: {payload} was applied but the model refuses it"
        self.state = new
        self.log.append(edit)
        self.seen[user] = new.version

    def follow_the_advice(self, user: str, payload: Undo, plan: tuple[int, ...]) -> None:
        """A refused undo's plan, followed on a copy of the state (apply is pure), lets it through."""
        state = self.state
        for step in (*plan, payload.edit_id):
            state = apply(state, make_edit(state, user, Undo(step)))  # refused: the advice was wrong

    def pick_group(self, data, user: str):
        groups, _ = self.view(user)
        # mostly groups the user sees; sometimes any id ever handed out (stale or never existed)
        ids = sorted(groups) or [1]
        return data.draw(st.one_of(st.sampled_from(ids), st.integers(1, self.model.next_gid)), label="group")

    def group_checks(self, gids, base) -> bool:
        return all(self.model.group(g) is not ABSENT and not self.model.stale(("g", g), base) for g in gids)

    # ----- rules: one per edit kind

    @rule(user=st.sampled_from(USERS))
    def reload(self, user):
        self.seen[user] = self.state.version

    @rule(user=st.sampled_from(USERS), data=st.data())
    def confirm(self, user, data):
        gid = self.pick_group(data, user)
        base = self.seen[user]
        ok = self.group_checks([gid], base) and self.model.group(gid)[2] != CONFIRMED
        if ok:
            title, members, _, grade, blank = self.model.group(gid)
            self.model.commit({("g", gid): (title, members, CONFIRMED, grade, blank)})
        self.submit(user, Confirm(gid), ok)

    @rule(user=st.sampled_from(USERS), data=st.data(), title=st.sampled_from(TITLES))
    def rename(self, user, data, title):
        gid = self.pick_group(data, user)
        ok = self.group_checks([gid], self.seen[user]) and self.model.group(gid)[0] != title
        if ok:
            _, members, status, grade, blank = self.model.group(gid)
            self.model.commit({("g", gid): (title, members, status, grade, blank)})
        self.submit(user, Rename(gid, title), ok)

    @rule(
        user=st.sampled_from(USERS),
        data=st.data(),
        score=st.one_of(st.none(), st.sampled_from(SCORES)),
        comment=st.sampled_from(["", "ok"]),
    )
    def grade(self, user, data, score, comment):
        gid = self.pick_group(data, user)
        comment = comment if score is not None else ""
        ok = self.group_checks([gid], self.seen[user])
        if ok:
            title, members, status, grade, blank = self.model.group(gid)
            new = None if score is None else (score, comment, self.model.version + 1)
            ok = _shown(new) != _shown(grade) and self.model.grade_fits(score, self.seen[user])
            if ok:
                self.model.commit({("g", gid): (title, members, status, new, blank)})
        self.submit(user, GradeGroup(gid, score, comment), ok)

    @rule(user=st.sampled_from(USERS), data=st.data())
    def delete(self, user, data):
        gid = self.pick_group(data, user)
        ok = self.group_checks([gid], self.seen[user])
        if ok:
            values = {("g", gid): ABSENT}
            for a in self.model.group(gid)[1]:
                values[("a", a)] = (None, *self.model.value(("a", a))[1:])
            self.model.commit(values)
        self.submit(user, Delete(gid), ok)

    @rule(user=st.sampled_from(USERS), data=st.data())
    def merge(self, user, data):
        into = self.pick_group(data, user)
        seen_ids = sorted(self.view(user)[0]) + [self.model.next_gid]
        others = data.draw(st.lists(st.sampled_from(seen_ids), min_size=1, max_size=2, unique=True), label="others")
        if into in others:
            return
        ok = self.group_checks([into, *others], self.seen[user])
        if ok:
            title, members, status, grade, blank = self.model.group(into)
            values = {}
            for g in others:
                for a in self.model.group(g)[1]:
                    values[("a", a)] = (into, *self.model.value(("a", a))[1:])
                members = members + self.model.group(g)[1]
                values[("g", g)] = ABSENT
            values[("g", into)] = (title, members, status, grade, blank)
            self.model.commit(values)
        self.submit(user, Merge(into, tuple(others)), ok)

    @rule(user=st.sampled_from(USERS), data=st.data())
    def split(self, user, data):
        groups, _ = self.view(user)
        candidates = sorted(g for g, info in groups.items() if len(info[2]) >= 2)
        if not candidates:
            return
        gid = data.draw(st.sampled_from(candidates), label="split group")
        seen_members = groups[gid][2]
        cut = data.draw(st.lists(st.integers(0, 2), min_size=len(seen_members), max_size=len(seen_members)), label="parts")
        parts = [tuple(a for a, c in zip(seen_members, cut) if c == i) for i in range(3)]
        parts = [p for p in parts if p]
        if len(parts) < 2:
            return
        titles = tuple(f"part {i}" for i in range(len(parts)))
        ok = self.group_checks([gid], self.seen[user]) and set(self.model.group(gid)[1]) == set(seen_members)
        if ok:
            _, members, status, grade, blank = self.model.group(gid)
            part_of = {a: i for i, p in enumerate(parts) for a in p}
            ordered = [tuple(a for a in members if part_of[a] == i) for i in range(len(parts))]
            values = {("g", gid): (titles[0], ordered[0], status, grade, blank)}
            for i, part in enumerate(ordered[1:], start=1):
                new_id = self.model.next_gid
                self.model.next_gid += 1
                values[("g", new_id)] = (titles[i], part, SUGGESTED, None, blank)
                for a in part:
                    values[("a", a)] = (new_id, *self.model.value(("a", a))[1:])
            self.model.commit(values)
        self.submit(user, Split(gid, tuple(parts), titles), ok)

    @rule(user=st.sampled_from(USERS), data=st.data())
    def move(self, user, data):
        answers = data.draw(st.lists(st.sampled_from(self.answer_ids), min_size=1, max_size=3, unique=True), label="answers")
        kind = data.draw(st.sampled_from(["group", "ungrouped", "new"]), label="to")
        to = self.pick_group(data, user) if kind == "group" else (None if kind == "ungrouped" else NEW)
        base = self.seen[user]
        ok = not any(self.model.stale(("a", a), base) for a in answers)
        if isinstance(to, int):
            ok = ok and self.group_checks([to], base)
        # the groups the answers would leave must be as the user saw them, like the target
        leaving = {self.model.loc(a) for a in answers} - {None, to}
        ok = ok and self.group_checks(sorted(leaving), base)
        if ok:
            values = {}
            if to == NEW:
                dest = self.model.next_gid
                moving = list(answers)
            else:
                dest = to
                moving = [a for a in answers if self.model.loc(a) != dest]
                ok = bool(moving)
            if ok:
                sources: dict[int, set] = {}
                for a in moving:
                    src = self.model.loc(a)
                    if src is not None:
                        sources.setdefault(src, set()).add(a)
                    values[("a", a)] = (dest, *self.model.value(("a", a))[1:])
                for src, out in sources.items():
                    title, members, status, grade, blank = self.model.group(src)
                    values[("g", src)] = (title, tuple(m for m in members if m not in out), status, grade, blank)
                if to == NEW:
                    self.model.next_gid += 1
                    values[("g", dest)] = (f"Group {dest}", tuple(moving), SUGGESTED, None, False)
                elif dest is not None:
                    title, members, status, grade, blank = self.model.group(dest)
                    values[("g", dest)] = (title, members + tuple(moving), status, grade, blank)
                self.model.commit(values)
        self.submit(user, Move(tuple(answers), to), ok)

    @rule(
        user=st.sampled_from(USERS),
        answer=st.integers(0, 9),
        score=st.one_of(st.none(), st.sampled_from(SCORES)),
    )
    def grade_answer(self, user, answer, score):
        a = self.answer_ids[answer % len(self.answer_ids)]
        loc, current, check = self.model.value(("a", a))
        new = None if score is None else (score, "", self.model.version + 1)
        ok = not self.model.stale(("a", a), self.seen[user]) and _shown(new) != _shown(current)
        ok = ok and self.model.grade_fits(score, self.seen[user])
        if ok:
            self.model.commit({("a", a): (loc, new, check)})
        self.submit(user, GradeAnswer(a, score), ok)

    @rule(user=st.sampled_from(USERS), texts=st.sampled_from(REFERENCE_SETS))
    def set_references(self, user, texts):
        ok = not self.model.stale(REFS, self.seen[user]) and texts != self.model.value(REFS)
        if ok:
            self.model.commit({REFS: texts})
        self.submit(user, SetReferences(texts), ok)

    @rule(user=st.sampled_from(USERS), limit=st.sampled_from(MAXIMA))
    def set_max_score(self, user, limit):
        ok = (
            not self.model.stale(MAX, self.seen[user])
            and limit != self.model.value(MAX)
            and self.model.all_grades_fit({MAX: limit})
        )
        if ok:
            self.model.commit({MAX: limit})
        self.submit(user, SetMaxScore(limit), ok)

    @rule(user=st.sampled_from(USERS), data=st.data())
    def add_late_answer(self, user, data):
        new = f"late{len(self.answer_ids)}"
        to = data.draw(st.one_of(st.none(), st.just(0)), label="ungrouped?")
        gid = None if to is None else self.pick_group(data, user)
        ok = True
        if gid is not None:
            ok = self.group_checks([gid], self.seen[user])
            if ok:
                title, members, status, grade, blank = self.model.group(gid)
                ok = status != CONFIRMED and grade is None  # never into a reviewed group
        if ok:
            values = {("a", new): (gid, None, None)}
            if gid is not None:
                values[("g", gid)] = (title, members + (new,), status, grade, blank)
            self.answer_ids.append(new)  # the model shares this list
            self.model.commit(values)
            self.model.adds.add(self.model.version)
        self.submit(user, AddAnswers((new,), (gid,)), ok)

    @rule(user=st.sampled_from(USERS), data=st.data())
    def check_grades(self, user, data):
        answers = data.draw(st.lists(st.sampled_from(self.answer_ids), min_size=1, max_size=3, unique=True), label="answers")
        base = self.seen[user]
        ok = True
        values = {}
        for a in answers:
            loc, own, check = self.model.value(("a", a))
            grade = own if own is not None else (None if loc is None else self.model.group(loc)[3])
            # the answer, and the group whose grade it has, must be as the grader saw them
            ok = ok and grade is not None and not self.model.stale(("a", a), base)
            ok = ok and (own is not None or not self.model.stale(("g", loc), base))
            if _shown(check) != _shown(grade):  # a check holds for the grade's value, not its event
                values[("a", a)] = (loc, own, grade)
        # and so must the maximum: "4" checked out of 10 is not "4" out of 5
        ok = ok and bool(values) and not self.model.stale(MAX, base)
        if ok:
            self.model.commit(values)
        self.submit(user, CheckGrades(tuple(answers)), ok)

    @precondition(lambda self: self.state.version > 0)
    @rule(user=st.sampled_from(USERS), data=st.data())
    def undo(self, user, data):
        latest = self.state.version
        target = data.draw(st.one_of(st.just(latest), st.integers(1, latest + 1)), label="undo edit")
        before_target = self.model.history[target - 1] if target <= latest else None
        undone_content_before = self._everything()
        ok = self.model.undo(target, self.seen[user])
        self.submit(user, Undo(target), ok)
        if ok and target == latest and self.model.effect[target][0] == "push":
            # undoing the latest (ordinary) edit puts everything back as it was before it
            assert self.state.content() == _impl_shape(before_target), "undo did not restore the prior state"
            assert self._everything() != undone_content_before

    def _everything(self):
        """What graders see: groups and grades, the question's attributes, the grade checks."""
        checks = {a: _grade_key(c.grade) for a, c in self.state.grade_checks.items()}
        return self.state.content(), self.state.max_score, self.state.reference_answers, checks

    # ----- invariants

    @invariant()
    def agrees_with_the_model(self):
        assert self.state.version == self.model.version
        assert self.state.content() == _impl_shape(self.model.content())
        assert self.state.max_score == self.model.value(MAX)
        assert self.state.reference_answers == self.model.value(REFS)
        checks = {a: self.model.value(("a", a))[2] for a in self.answer_ids}
        assert {a: _grade_key(c.grade) for a, c in self.state.grade_checks.items()} == {
            a: (*_shown(c), (), 0.0) for a, c in checks.items() if c is not None
        }
        for a in self.answer_ids:  # a check holds while the answer has the grade checked
            loc, own, check = self.model.value(("a", a))
            grade = own if own is not None else (None if loc is None else self.model.group(loc)[3])
            # (by value: cleared and given again alike, a grade is the one checked)
            assert (self.state.grade_check(a) is not None) == (check is not None and _shown(check) == _shown(grade))

    @invariant()
    def every_answer_is_in_exactly_one_place(self):
        placed = [a for g in self.state.groups.values() for a in g.members] + list(self.state.ungrouped)
        assert sorted(placed) == sorted(self.answer_ids)
        for g in self.state.groups.values():
            assert all(self.state.location[a] == g.group_id for a in g.members)
        assert all(self.state.location[a] is None for a in self.state.ungrouped)

    @invariant()
    def the_graders_moves_are_read_from_the_live_log(self):
        """``grader_moves``: an answer's place is a grader's choice when the latest entry of its
        stack that changed its group was pushed by a move (every user here is a person); the
        groups it must not be suggested into exist."""
        placed = set()
        for a in self.answer_ids:
            stack = self.model.stacks[("a", a)]
            for i in range(len(stack) - 1, 0, -1):
                edit_id, value = stack[i]
                below = stack[i - 1][1]
                if below is ABSENT or value[0] != below[0]:
                    if self.log[edit_id - 1].kind == Move.kind:
                        placed.add(a)
                    break
        moves = grader_moves(self.state)
        assert moves.placed == placed
        for a, groups in moves.moved_away_from.items():
            assert groups <= moves.avoid[a] and moves.avoid[a] <= set(self.state.groups)

    @invariant()
    def a_regrouping_keeps_what_people_did(self):
        """The most disruptive regrouping a model can plan (every free answer in one new
        group) moves no fixed answer and leaves every group a person reviewed or shaped as it
        was: merged, split, renamed or made by a person, confirmed or graded."""
        fixed = fixed_answers(self.state)
        kept = shaped_groups(self.state) | {
            gid for gid, g in self.state.groups.items() if g.status == CONFIRMED or g.grade is not None
        }
        free = [a for a in self.answer_ids if a not in fixed]  # blank groups are kept: their answers are fixed
        after = self.state
        for payload in plan_regroup(self.state, [free[::-1]] if free else []):
            after = apply(after, make_edit(after, "model:v0002", payload))
        assert all(after.location[a] == self.state.location[a] for a in fixed)
        assert all(after.groups[gid] == self.state.groups[gid] for gid in kept)
        assert after.overrides == self.state.overrides

    @invariant()
    def replay_from_empty_equals_the_state(self):
        assert replay(self.initial, self.log) == self.state

    @invariant()
    def the_state_survives_a_snapshot(self):
        if self.state.version % 4 == 0:
            assert state_from_dict(json.loads(json.dumps(state_to_dict(self.state)))) == self.state


def _shown(grade):
    """A model grade as graders see it: score and comment, without when it was given."""
    return None if grade is None else grade[:2]


def _grade_key(grade):
    return (grade.score, grade.comment, grade.items, grade.adjustment)


def _impl_shape(model_content):
    """Model content in the shape of ``QuestionState.content()`` (grades here are bare scores:
    no rubric items, no point adjustment; ``test_rubric_properties`` covers those)."""
    groups, ungrouped, overrides = model_content

    def grade(g):
        return None if g is None else (*g, (), 0.0)

    return (
        tuple((gid, title, members, status, grade(g), blank) for gid, title, members, status, g, blank in groups),
        ungrouped,
        tuple((a, grade(g)) for a, g in overrides),
    )


GradingSession.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestGradingSession = GradingSession.TestCase
