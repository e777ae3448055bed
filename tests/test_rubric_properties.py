"""Graders interleave rubric changes, rubric grades, bare grades, moves and undos at random.

Whatever happens, no grade is ever wrong: every grade given as rubric items names only items
of the current rubric and is worth exactly the sum of their current points, within the
maximum score; replaying the log gives the same state; the state survives a snapshot; and an
edit the fold refuses changes nothing.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edit_codec import state_from_dict, state_to_dict
from grouper.edits import (
    EditRefused,
    GradeAnswer,
    GradeGroup,
    Merge,
    Move,
    SetMaxScore,
    SetRubric,
    Undo,
    apply,
    initial_state,
    make_edit,
    replay,
)

IDS = [f"a{i}" for i in range(6)]
USERS = ("ta1", "ta2")
POINTS = (-1.0, 0.0, 0.5, 1.0, 2.0)
NAMES = {1: "closed path", 2: "bulb lights", 3: "units", 4: "diagram"}


class RubricSession(RuleBasedStateMachine):
    @initialize()
    def start(self):
        labels = np.array([1, 1, 2, 2, 3, UNGROUPED])
        grouping = Grouping(labels, np.ones(6), (Group(1, "one", (0, 1)), Group(2, "two", (2, 3)), Group(3, "three", (4,))))
        self.initial = self.state = initial_state("q", IDS, grouping)
        self.log = []
        self.seen = {u: 0 for u in USERS}

    def submit(self, user, payload):
        # Graders mostly work on the current version; staleness has its own tests, and here
        # it would refuse most of the undos and regrades whose results the invariants check.
        base = self.seen[user] if user == USERS[1] else self.state.version
        edit = make_edit(self.state, user, payload, base_version=base)
        try:
            new = apply(self.state, edit)
        except EditRefused:
            self.seen[user] = self.state.version  # the grader reloads
            return
        self.state = new
        self.log.append(edit)
        self.seen[user] = new.version

    @rule(user=st.sampled_from(USERS), data=st.data())
    def set_rubric(self, user, data):
        ids = data.draw(st.sets(st.sampled_from(sorted(NAMES)), min_size=1, max_size=4) | st.just(set()))
        items = tuple((i, NAMES[i], data.draw(st.sampled_from(POINTS))) for i in sorted(ids))
        self.submit(user, SetRubric(items))

    @rule(user=st.sampled_from(USERS), data=st.data())
    def reprice_an_item(self, user, data):
        if self.state.rubric:
            changed = data.draw(st.sampled_from([i.item_id for i in self.state.rubric]))
            points = data.draw(st.sampled_from(POINTS))
            items = tuple((i.item_id, i.description, points if i.item_id == changed else i.points) for i in self.state.rubric)
            self.submit(user, SetRubric(items))

    def draw_items(self, data, min_size=0):
        """Mostly items of the current rubric, sometimes one it does not have."""
        ids = [i.item_id for i in self.state.rubric] or [1]
        pool = st.sampled_from(ids) if data.draw(st.integers(0, 9)) else st.integers(1, 4)
        return tuple(data.draw(st.sets(pool, min_size=min_size, max_size=3)))

    @rule(user=st.sampled_from(USERS), gid=st.integers(1, 4), data=st.data())
    def grade_group_by_items(self, user, gid, data):
        items = self.draw_items(data)
        self.submit(user, GradeGroup(gid, None, items=items) if items else GradeGroup(gid, 1.0))

    @rule(user=st.sampled_from(USERS), answer=st.sampled_from(IDS), data=st.data())
    def grade_answer_by_items(self, user, answer, data):
        adjustment = data.draw(st.sampled_from((0.0, 0.5, -1.0)))
        self.submit(user, GradeAnswer(answer, None, items=self.draw_items(data, min_size=1), adjustment=adjustment))

    @rule(user=st.sampled_from(USERS), gid=st.integers(1, 4), score=st.sampled_from((None, 0.0, 2.0)))
    def grade_group_bare(self, user, gid, score):
        self.submit(user, GradeGroup(gid, score))

    @rule(user=st.sampled_from(USERS), answer=st.sampled_from(IDS), to=st.sampled_from((None, 1, 2, 3)))
    def move(self, user, answer, to):
        self.submit(user, Move((answer,), to))

    @rule(user=st.sampled_from(USERS), into=st.integers(1, 3), other=st.integers(1, 3))
    def merge(self, user, into, other):
        if into != other:
            self.submit(user, Merge(into, (other,)))

    @rule(user=st.sampled_from(USERS), limit=st.sampled_from((None, 1.0, 3.0)))
    def set_max_score(self, user, limit):
        self.submit(user, SetMaxScore(limit))

    @rule(user=st.sampled_from(USERS), data=st.data())
    def undo(self, user, data):
        if self.state.version:
            recent = st.integers(max(1, self.state.version - 3), self.state.version)
            self.submit(user, Undo(data.draw(recent | st.integers(1, self.state.version))))

    @invariant()
    def every_rubric_grade_is_worth_its_items_now(self):
        points = {i.item_id: i.points for i in self.state.rubric}
        grades = [g.grade for g in self.state.groups.values() if g.grade is not None]
        grades += list(self.state.overrides.values())
        limit = self.state.max_score
        for grade in grades:
            assert set(grade.items) <= set(points), f"{grade} names an item not in the rubric {self.state.rubric}"
            if grade.items:
                assert grade.score == math.fsum([*(points[i] for i in grade.items), grade.adjustment])
            else:
                assert grade.adjustment == 0.0
            assert limit is None or 0 <= grade.score <= limit

    @invariant()
    def replay_and_snapshot_agree(self):
        assert replay(self.initial, self.log) == self.state
        assert state_from_dict(state_to_dict(self.state)) == self.state

RubricSession.TestCase.settings = settings(
    max_examples=100, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestRubricSession = RubricSession.TestCase

