"""The rubric on the groups page, through Streamlit's AppTest on a real SQLite store.

An instructor writes the rubric, a group is graded by ticking items, the ticked members get
their own rubric grade, and repricing an item regrades everyone and says so on the page.
TAs grade by the rubric but do not change it.
"""

from __future__ import annotations

import numpy as np
from test_ui_app import (
    _oidc_app,
    errors,
    logged,
    members_key,
    select_rows,
    shown_members,
    table,
    state,
    successes,
    texts,
)

from grouper.answers import Answer
from grouper.edits import GradeAnswer, GradeGroup, Move, SetRubric
from grouper.review import grades_in_use, preset_key
from grouper.store import Store

pytest_plugins = ["test_ui_app"]  # its store fixtures (db, app) on a real SQLite copy


def write_rubric(app, lines: str):
    app.text_area(key=f"rubric-q1-v{state_version(app)}").input(lines)
    return app.button(key="rubric-save-q1").click().run()


def state_version(app) -> int:
    return app.session_state["seen-q1"]


def test_an_instructor_writes_the_rubric_and_grades_a_group_by_its_items(app, db):
    write_rubric(app, "names Canberra=1\nspelling mistake=-0.5")
    assert logged(db) == [("Ada", SetRubric(((1, "names Canberra", 1.0), (2, "spelling mistake", -0.5))))]
    assert successes(app) == ["The rubric now has 2 items."]
    picker = app.multiselect(key="rubric-items-q1-1-v1")
    assert picker.options == ["names Canberra (+1)", "spelling mistake (-0.5)"]
    picker.set_value([1]).run()
    assert app.button(key="rubric-grade-q1-1").label == "Grade 1 by the rubric"
    app.button(key="rubric-grade-q1-1").click().run()
    assert logged(db)[-1] == ("Ada", GradeGroup(1, None, "", items=(1,)))
    assert successes(app) == ["Group 1 graded by the rubric."]
    assert "Rubric: names Canberra (+1)" in texts(app)
    # Repricing the item regrades the group, and the page says whose grades changed.
    n = len(state(db).groups[1].members)
    write_rubric(app, "1: names Canberra=2\n2: spelling mistake=-0.5")
    assert state(db).grade_of(state(db).groups[1].members[0]).score == 2.0
    assert [i.value for i in app.info] == [f"{n} answers changed grade: from 1 to 2."]
    use = table(app, "Item", "Description", "Points", "Answers")
    assert list(use["Answers"]) == [n, 0] and list(use["Points"]) == [2.0, -0.5]


def test_the_ticked_members_get_their_own_rubric_grade(app, db):
    write_rubric(app, "names Canberra=1\nspelling mistake=-0.5")
    chosen = shown_members(app, 1)[:2]
    select_rows(app, members_key(app, 1), [0, 1])
    app.multiselect(key="own-items-q1-1").set_value([1, 2])
    app.button(key="own-grade-q1-1").click().run()
    assert logged(db)[1:] == [("Ada", GradeAnswer(a, None, "", items=(1, 2))) for a in chosen]
    assert successes(app) == ["2 answers given their own grade by the rubric."]
    assert [state(db).grade_of(a).score for a in chosen] == [0.5, 0.5]


def test_a_grade_given_as_items_is_offered_again_as_the_same_items(app, db):
    write_rubric(app, "names Canberra=1")
    app.multiselect(key="rubric-items-q1-1-v1").set_value([1]).run()
    app.button(key="rubric-grade-q1-1").click().run()
    from test_ui_app import open_group

    open_group(app, 2)
    choice = app.selectbox(key="grade-again-choice-q1-2")
    assert choice.options == ["1 · rubric: names Canberra (+1) (1×)"]
    choice.set_value(preset_key(grades_in_use(state(db))[0])).run()
    app.button(key="grade-again-q1-2").click().run()
    assert logged(db)[-1] == ("Ada", GradeGroup(2, None, "", items=(1,)))


def test_a_bad_rubric_line_is_explained_and_nothing_is_logged(app, db):
    write_rubric(app, "names Canberra=1\nno points here")
    assert errors(app) == ["The rubric was not saved."]
    assert any("rubric line 2 'no points here' is not DESCRIPTION=POINTS" in t for t in texts(app))
    assert logged(db) == []


def test_an_item_in_use_cannot_be_dropped_from_the_page(app, db):
    write_rubric(app, "names Canberra=1\nspelling mistake=-0.5")
    app.multiselect(key="rubric-items-q1-1-v1").set_value([2]).run()
    app.button(key="rubric-grade-q1-1").click().run()
    write_rubric(app, "1: names Canberra=1")
    assert errors(app) == ["Your edit was not saved."]
    assert any("rubric item 'spelling mistake' is part of 1 grade" in t for t in texts(app))
    assert len(state(db).rubric) == 2


def test_tas_grade_by_the_rubric_but_cannot_change_it(db, monkeypatch, tmp_path):
    with Store.open(db) as store:
        store.append("q1", "Ada", 0, SetRubric(((1, "names Canberra", 1.0),)))
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ben@example.edu", "name": "Ben"})
    assert not at.exception, at.exception
    assert [b for b in at.button if b.key == "rubric-save-q1"] == []
    at.multiselect(key="rubric-items-q1-1-v1").set_value([1]).run()
    at.button(key="rubric-grade-q1-1").click().run()
    assert logged(db)[-1][1] == GradeGroup(1, None, "", items=(1,))


def test_the_queue_grades_a_waiting_answer_by_the_rubric(app, db):
    answer_id = state(db).groups[1].members[-1]
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Move((answer_id,), None))
        store.append("q1", "Ada", 1, SetRubric(((1, "names Canberra", 1.0), (2, "spelling mistake", -0.5))))
    app.switch_page("views/queue.py").run()
    picker = app.multiselect(key=f"answer-items-q1-{answer_id}")
    assert picker.options == ["names Canberra (+1)", "spelling mistake (-0.5)"]
    picker.set_value([1, 2])
    app.button(key=f"grade-answer-q1-{answer_id}").click().run()
    assert logged(db)[-1] == ("Ada", GradeAnswer(answer_id, None, "", items=(1, 2)))
    assert successes(app) == [f"Answer {answer_id} graded by the rubric."]
    assert state(db).grade_of(answer_id).score == 0.5


def test_the_queue_offers_a_rubric_grade_given_before_as_the_same_items(app, db):
    answer_id = state(db).groups[1].members[-1]
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Move((answer_id,), None))
        store.append("q1", "Ada", 1, SetRubric(((1, "names Canberra", 1.0), (2, "spelling mistake", -0.5))))
        store.append("q1", "Ada", 2, GradeGroup(4, None, "typo", items=(1, 2)))
    app.switch_page("views/queue.py").run()
    choice = app.selectbox(key=f"answer-again-q1-{answer_id}")
    assert choice.options == ["0.5 · rubric: names Canberra (+1); spelling mistake (-0.5) · typo (1×)"]
    choice.set_value(preset_key(grades_in_use(state(db))[0]))
    app.button(key=f"grade-answer-q1-{answer_id}").click().run()
    assert logged(db)[-1] == ("Ada", GradeAnswer(answer_id, None, "typo", items=(1, 2)))
    assert successes(app) == [f"Answer {answer_id} graded 0.5."]


def test_number_keys_tick_items_and_the_picker_follows(app, db):
    """Buttons 1-9 (keys 1-9) tick and untick the first items; the grade button's total follows."""
    write_rubric(app, "names Canberra=1\nspelling mistake=-0.5\nexplains why=0.5")
    assert any(t.startswith("Keys: 1 names Canberra (+1) · 2 spelling mistake (-0.5) · 3 explains why (+0.5)") for t in texts(app))
    app.button(key="rubric-toggle-q1-1-1").click().run()
    app.button(key="rubric-toggle-q1-1-3").click().run()
    assert app.multiselect(key="rubric-items-q1-1-v1").value == [1, 3]
    assert app.button(key="rubric-toggle-q1-1-1").label == "✓ Item 1"
    app.button(key="rubric-toggle-q1-1-3").click().run()  # untick
    assert app.button(key="rubric-grade-q1-1").label == "Grade 1 by the rubric"
    app.button(key="rubric-grade-q1-1").click().run()
    assert logged(db)[-1] == ("Ada", GradeGroup(1, None, "", items=(1,)))


def test_a_group_and_the_ticked_members_get_a_point_adjustment(app, db):
    write_rubric(app, "names Canberra=1\nspelling mistake=-0.5")
    app.multiselect(key="rubric-items-q1-1-v1").set_value([1]).run()
    app.number_input(key="rubric-adjust-q1-1-v1").set_value(0.25)
    app.button(key="rubric-grade-q1-1").click().run()
    assert logged(db)[-1] == ("Ada", GradeGroup(1, None, "", items=(1,), adjustment=0.25))
    assert successes(app) == ["Group 1 graded by the rubric with an adjustment of +0.25."]
    assert "Rubric: names Canberra (+1); adjustment (+0.25)" in texts(app)
    # the form shows the grade's adjustment, ready to change
    assert app.number_input(key="rubric-adjust-q1-1-v2").value == 0.25
    chosen = shown_members(app, 1)[:1]
    select_rows(app, members_key(app, 1), [0])
    app.multiselect(key="own-items-q1-1").set_value([1, 2])
    app.number_input(key="own-items-q1-1-adjust").set_value(-0.5)
    app.button(key="own-grade-q1-1").click().run()
    assert logged(db)[-1] == ("Ada", GradeAnswer(chosen[0], None, "", items=(1, 2), adjustment=-0.5))
    assert state(db).grade_of(chosen[0]).score == 0.0


def test_an_adjustment_without_items_is_explained_and_nothing_is_logged(app, db):
    write_rubric(app, "names Canberra=1")
    select_rows(app, members_key(app, 1), [0])
    app.number_input(key="own-score-q1-1").set_value(1.0)
    app.number_input(key="own-items-q1-1-adjust").set_value(0.5)
    app.button(key="own-grade-q1-1").click().run()
    assert errors(app) == ["A point adjustment goes with rubric items; without items, enter the score itself."]
    assert len(logged(db)) == 1  # the rubric only


def test_apply_grade_on_a_rubric_grade_with_a_new_comment_keeps_its_items(app, db):
    from test_ui_app import comment_field, version

    write_rubric(app, "names Canberra=1\nspelling mistake=-0.5")
    with Store.open(db) as store:
        store.append("q1", "Ben", None, GradeGroup(1, None, "", items=(1,), adjustment=0.5))
    app.run()
    # The button says what the click gives: the item and the adjustment shown.
    assert app.button(key="rubric-grade-q1-1").label == "Grade 1.5 by the rubric"
    comment_field(app).input("good")
    app.button(key="grade-q1-1").click().run()
    assert logged(db)[-1] == ("Ada", GradeGroup(1, None, "good", items=(1,), adjustment=0.5))
    write_rubric(app, "1: names Canberra=2\n2: spelling mistake=-0.5")
    assert state(db).groups[1].grade.score == 2.5  # it follows its item's new points
    assert version(app) == len(logged(db))


def test_the_export_page_offers_no_by_student_table_when_a_student_answered_twice(app, db):
    app.switch_page("views/export.py").run()
    by_student = [b for b in app.get("download_button") if b.proto.label.startswith("Grades by student")]
    assert not by_student[0].proto.disabled
    with Store.open(db) as store:
        first = next(a for a in store.answers("q1") if a.student_id)
        late = Answer("resubmitted", "q1", "Canberra, I think", first.student_id)
        store.add_answers("q1", [late], [None], "Ada")
    app.run()
    by_student = [b for b in app.get("download_button") if b.proto.label.startswith("Grades by student")]
    assert by_student[0].proto.disabled  # either cell kept would lose the other answer's grade
    assert any("several answers to one question" in w.value for w in app.warning)
    assert f"{first.student_id} (q1): {first.answer_id}, resubmitted" in texts(app)


def test_the_export_page_offers_the_rubric_grading_of_one_question(app, db):
    app.switch_page("views/export.py").run()
    labels = [b.proto.label for b in app.get("download_button")]
    assert not [x for x in labels if x.startswith("Rubric grading")]  # no rubric yet
    with Store.open(db) as store:
        store.append("q1", "Ada", 0, SetRubric(((1, "names Canberra", 1.0), (2, "spelling mistake", -0.5))))
    app.run()
    labels = [b.proto.label for b in app.get("download_button")]
    assert "Rubric grading (CSV, a column per item: 2 items)" in labels
    # each question has its own rubric, so the file is offered for one question at a time
    one = [b.proto.label for b in app.get("download_button") if b.proto.label.startswith("Grades by student")]
    app.button_group(key="export-scope").set_value("All questions").run()
    assert [b.proto.label for b in app.get("download_button") if b.proto.label.startswith("Grades by student")] != one
    assert not [b for b in app.get("download_button") if b.proto.label.startswith("Rubric grading")]


def test_an_instructor_copies_another_questions_rubric(app, db):
    app.button(key="rubric-copy-q1").click().run()
    assert errors(app) == ["Choose the question whose rubric to copy."]
    app.selectbox(key="rubric-source-q1").set_value("xss")
    app.button(key="rubric-copy-q1").click().run()
    assert errors(app) == ["Nothing was copied."] and any("question xss has no rubric to copy" in t for t in texts(app))
    with Store.open(db) as store:
        store.append("xss", "Ada", 0, SetRubric(((1, "names Canberra", 2.0), (2, "=spelling mistake", -0.5))))
    write_rubric(app, "names canberra=1")
    app.selectbox(key="rubric-source-q1").set_value("xss")
    app.button(key="rubric-copy-q1").click().run()
    assert successes(app) == ["Added 1 item of question xss's rubric."]
    assert logged(db)[-1] == ("Ada", SetRubric(((1, "names canberra", 1.0), (2, "=spelling mistake", -0.5))))


def test_t_ticks_the_items_of_the_most_similar_rubric_graded_group(app, db):
    from test_ui_app import open_group

    from grouper.review import rubric_suggestion

    write_rubric(app, "names Canberra=1\nspelling mistake=-0.5")
    app.multiselect(key="rubric-items-q1-1-v1").set_value([1, 2]).run()
    app.button(key="rubric-grade-q1-1").click().run()
    now, vectors = state(db), _stored_vectors(db)
    near = [g for g in now.groups if g != 1 and rubric_suggestion(now, vectors, g) is not None]
    far = [g for g in now.groups if g != 1 and rubric_suggestion(now, vectors, g) is None]
    assert near, "no group of the sample question is close to group 1"
    open_group(app, near[0])
    button = app.button(key=f"rubric-suggested-q1-{near[0]}")
    assert button.label == "Tick group 1's items"
    assert f"Group 1, the most like this one, has: names Canberra (+1); spelling mistake (-0.5)" in texts(app)
    button.click().run()
    assert app.multiselect(key=f"rubric-items-q1-{near[0]}-v2").value == [1, 2]
    assert len(logged(db)) == 2  # ticking grades nothing: G does, once the grader has checked
    if far:
        open_group(app, far[0])
        assert f"rubric-suggested-q1-{far[0]}" not in [b.key for b in app.button]


def _stored_vectors(db) -> dict[str, np.ndarray]:
    """The answers' embeddings as the page has them: the store's cache (blank: zeros)."""
    with Store.open(db) as store:
        texts = {a.answer_id: a.normalized for a in store.answers("q1")}
        found = store.embeddings.get_many(store.model_version("q1"), [t for t in texts.values() if t])
    dim = len(next(iter(found.values())))
    return {a: found[t] if t else np.zeros(dim) for a, t in texts.items()}
