"""The Check grades page through Streamlit's AppTest, on a real SQLite copy of the UI template
store (the q1 sample question and the XSS question, grouped by the real packaged encoder)."""

from __future__ import annotations

import pytest
from test_ui_app import XSS, app, db, logged, new_app, sign_in, successes, template_db, texts  # noqa: F401

from grouper.edits import CheckGrades, GradeAnswer, GradeGroup, SetRubric, Undo
from grouper.grade_check import check_question, identical_answers
from grouper.store import Store


def _grade_every_group(db, question_id: str) -> None:
    """Grade each group by its majority gold label; with the sample's gold, some members of
    mixed groups carry a wrong grade, as after a hurried review."""
    with Store.open(db) as store:
        gold = {a.answer_id: a.gold or "" for a in store.answers(question_id)}
        state = store.state(question_id)
        version = state.version
        for gid, group in state.groups.items():
            labels = [gold[a] for a in group.members]
            label = max(sorted(set(labels)), key=labels.count)
            store.append(question_id, "grader", version, GradeGroup(gid, {"correct": 1.0}.get(label, 0.0), label))
            version += 1


def _expected(db, question_id: str, encoder):
    """What the page should list: the library's ranking of the same store."""
    with Store.open(db) as store:
        return check_question(store, question_id, encoder)


@pytest.fixture
def checked(app, db):
    _grade_every_group(db, "q1")
    app.switch_page("views/check.py").run()
    assert not app.exception, app.exception
    return app


def test_nothing_graded_says_so(app):
    app.switch_page("views/check.py").run()
    assert not app.exception, app.exception
    assert any("Nothing is graded yet" in i.value for i in app.info)


def test_graded_answers_are_listed_most_doubtful_first(checked, db, encoder):
    lines = texts(checked)
    assert any(line.startswith("185 graded answers, the most doubtful first") for line in lines)
    first = _expected(db, "q1", encoder)[0]
    # The first row is the most doubtful answer, with its grade and why.
    row = next(i for i, line in enumerate(lines) if line.startswith(f"{first.answer_id} · "))
    assert f"graded {first.grade.score:g} ({first.grade.comment})" in lines[row]
    assert lines[row] == next(line for line in lines if " · doubt " in line)


def test_giving_the_likely_grade_logs_the_answers_own_grade(checked, db, encoder):
    doubt = next(d for d in _expected(db, "q1", encoder) if d.likely is not None)
    before = len(logged(db))
    checked.button(key=f"check-give-q1-{doubt.answer_id}").click().run()
    assert not checked.exception, checked.exception
    edits = logged(db)
    assert len(edits) == before + 1
    author, payload = edits[-1]
    assert author == "Ada"
    assert payload == GradeAnswer(doubt.answer_id, doubt.likely.score, doubt.likely.comment)
    assert any(f"Answer {doubt.answer_id} graded" in s for s in successes(checked))
    # The ranking is kept, without the answer just graded on its own.
    lines = texts(checked)
    assert any(line.startswith("1 answer(s) graded on their own since this list was ranked") for line in lines)
    assert any(line.startswith("185 graded answers, the most doubtful first") for line in lines)  # still all of them
    assert not any(line.startswith(f"{doubt.answer_id} · ") for line in lines)
    # Ranking again weighs the new grade: the answer is back, graded on its own.
    checked.button(key="check-rerank-q1").click().run()
    assert not checked.exception, checked.exception
    lines = texts(checked)
    assert not any("since this list was ranked" in line for line in lines)
    again = next(d for d in _expected(db, "q1", encoder) if d.answer_id == doubt.answer_id)
    assert again.graded_alone and again.grade.score == doubt.likely.score


def _regraded_by_another(at, db, doubt) -> list[str]:
    """Another grader regrades the doubt's group 0.5 "half" in the store; the page's lines
    after its next run, which shows the answer so graded."""
    with Store.open(db) as store:
        state = store.state("q1")
        store.append("q1", "Ben", state.version, GradeGroup(doubt.group_id, 0.5, "half"))
    at.run()
    assert not at.exception, at.exception
    lines = texts(at)
    assert "graded 0.5 (half)" in next(line for line in lines if line.startswith(f"{doubt.answer_id} · "))
    return lines


def test_an_edit_other_than_an_answers_own_grade_ranks_afresh(checked, db, encoder):
    lines = _regraded_by_another(checked, db, _expected(db, "q1", encoder)[0])
    assert not any("since this list was ranked" in line for line in lines)


def test_looks_right_logs_a_check_and_the_answer_leaves_the_list_for_every_grader(checked, db, encoder):
    first = _expected(db, "q1", encoder)[0]
    before = len(logged(db))
    checked.button(key=f"check-keep-q1-{first.answer_id}").click().run()
    assert not checked.exception, checked.exception
    assert logged(db)[before:] == [("Ada", CheckGrades((first.answer_id,)))]
    assert any(f"Answer {first.answer_id}'s grade checked as right." in s for s in successes(checked))
    lines = texts(checked)
    assert any("1 checked as right by a grader, left out" in line for line in lines)
    assert not any(line.startswith(f"{first.answer_id} · ") for line in lines)
    assert not any("since this list was ranked" in line for line in lines)  # the ranking is kept
    # Another grader, in another session, does not see it either.
    other = sign_in(new_app(), "Ben")
    other.switch_page("views/check.py").run()
    assert not other.exception, other.exception
    assert any("1 checked as right by a grader, left out" in line for line in texts(other))
    assert not any(line.startswith(f"{first.answer_id} · ") for line in texts(other))


def test_undo_takes_a_looks_right_back_and_the_answer_is_listed_again(checked, db, encoder):
    first = _expected(db, "q1", encoder)[0]
    checked.button(key=f"check-keep-q1-{first.answer_id}").click().run()
    edit_id = len(logged(db))
    checked.button(key="check-undo-q1").click().run()
    assert not checked.exception, checked.exception
    assert logged(db)[-1] == ("Ada", Undo(edit_id))
    assert any(f"Undid your edit {edit_id}." in s for s in successes(checked))
    lines = texts(checked)
    assert next(line for line in lines if " · doubt " in line).startswith(f"{first.answer_id} · ")
    assert not any("since this list was ranked" in line for line in lines)  # nothing regraded


def test_undoing_an_own_grade_keeps_the_ranking_without_that_answer(checked, db, encoder):
    doubt = next(d for d in _expected(db, "q1", encoder) if d.likely is not None)
    checked.button(key=f"check-give-q1-{doubt.answer_id}").click().run()
    checked.button(key="check-undo-q1").click().run()
    assert not checked.exception, checked.exception
    lines = texts(checked)
    assert any(line.startswith("1 answer(s) graded on their own since this list was ranked") for line in lines)
    assert not any(line.startswith(f"{doubt.answer_id} · ") for line in lines)


def test_a_check_lapses_when_the_grade_changes_and_the_answer_is_back(checked, db, encoder):
    first = _expected(db, "q1", encoder)[0]
    checked.button(key=f"check-keep-q1-{first.answer_id}").click().run()
    lines = _regraded_by_another(checked, db, first)
    assert not any("checked as right" in line for line in lines)


def test_all_on_the_page_look_right_in_one_logged_check(checked, db, encoder):
    page = [d.answer_id for d in _expected(db, "q1", encoder)[:10]]
    before = len(logged(db))
    checked.button(key="check-keep-page-q1").click().run()
    assert not checked.exception, checked.exception
    assert logged(db)[before:] == [("Ada", CheckGrades(tuple(page)))]
    lines = texts(checked)
    assert any("10 checked as right by a grader, left out" in line for line in lines)
    assert not any(line.startswith(f"{a} · ") for a in page for line in lines)
    after = _expected(db, "q1", encoder)  # the library lists checked answers last
    assert [d.answer_id for d in after[-10:]] == page and after[0].checked_by is None
    assert next(line for line in lines if " · doubt " in line).startswith(f"{after[0].answer_id} · ")


def test_one_groups_answers_are_listed_alone_in_the_same_order(checked, db, encoder):
    ranking = _expected(db, "q1", encoder)
    group = ranking[0].group_id
    members = [d.answer_id for d in ranking if d.group_id == group]
    checked.selectbox(key="check-group-q1").set_value(group).run()
    assert not checked.exception, checked.exception
    rows = [line.split(" · ")[0] for line in texts(checked) if " · doubt " in line]
    assert rows == members[:10]
    assert all(f" · Group {group} (" in line for line in texts(checked) if " · doubt " in line)


def test_an_ungraded_group_has_no_grades_to_check(app):
    app.switch_page("views/groups.py").run()
    assert not app.exception, app.exception
    assert any(b.key and b.key.startswith("confirm-q1-") for b in app.button)  # a group is open
    assert not any(b.key and b.key.startswith("check-group-link-") for b in app.button)


def test_the_groups_page_opens_check_grades_on_a_graded_group(checked):
    checked.switch_page("views/groups.py").run()  # it opens a group; every group is graded
    opened = next(b for b in checked.button if b.key and b.key.startswith("check-group-link-q1-"))
    gid = int(opened.key.rsplit("-", 1)[1])
    opened.click().run()
    assert not checked.exception, checked.exception
    assert checked.selectbox(key="check-group-q1").value == gid
    rows = [line for line in texts(checked) if " · doubt " in line]
    assert rows and all(f" · Group {gid} (" in line for line in rows)


def test_a_rubric_grade_is_shown_with_its_items(checked, db, encoder):
    first = _expected(db, "q1", encoder)[0]
    with Store.open(db) as store:
        state = store.state("q1")
        store.append("q1", "prof", state.version, SetRubric(((1, "names Canberra", 1.0), (2, "says why", 1.0))))
        store.append("q1", "Ben", state.version + 1, GradeGroup(first.group_id, None, items=(2,)))
    checked.run()
    assert not checked.exception, checked.exception
    row = next(line for line in texts(checked) if line.startswith(f"{first.answer_id} · "))
    assert "graded 1 [says why (+1)]" in row


def test_another_grade_typed_is_logged(checked, db, encoder):
    first = _expected(db, "q1", encoder)[0]
    checked.number_input(key=f"check-score-q1-{first.answer_id}").set_value(0.5)
    checked.text_input(key=f"check-comment-q1-{first.answer_id}").input("half right")
    checked.button(key=f"grade-check-q1-{first.answer_id}").click().run()
    assert not checked.exception, checked.exception
    assert logged(db)[-1] == ("Ada", GradeAnswer(first.answer_id, 0.5, "half right"))


def test_student_text_is_shown_as_plain_text(app, db):
    with Store.open(db) as store:
        state = store.state("xss")
        for done, gid in enumerate(sorted(state.groups)):
            store.append("xss", "grader", state.version + done, GradeGroup(gid, float(done % 2), ""))
    app.switch_page("views/check.py").run()
    app.selectbox(key="question-picker").set_value("xss").run()
    assert not app.exception, app.exception
    shown = texts(app)
    assert set(XSS) <= set(shown)
    assert not any(p in m.value for m in app.markdown for p in XSS)


def test_the_export_page_warns_of_identical_answers_graded_differently(app, db):
    with Store.open(db) as store:
        answers = store.answers("q1")
        state = store.state("q1")
        twin = next(a for a in answers if a.text.strip().casefold() == "canberra" and state.location[a.answer_id] is not None)
        version = state.version
        store.append("q1", "grader", version, GradeGroup(state.location[twin.answer_id], 1.0, "right"))
        others = [a for a in answers if a.normalized.casefold() == twin.normalized.casefold() and a.answer_id != twin.answer_id]
    assert len(others) >= 2  # so the one graded 0 below is the odd one out
    app.switch_page("views/export.py").run()
    assert not app.exception, app.exception
    assert not any("graded unlike" in w.value for w in app.warning)
    with Store.open(db) as store:
        store.append("q1", "grader", version + 1, GradeAnswer(twin.answer_id, 0.0, "wrong"))
    app.run()
    assert any("graded unlike most of their identical answers" in w.value for w in app.warning)
    assert f"Question q1: 1 answer(s): {twin.answer_id}" in texts(app)


def test_a_grade_that_leaves_identical_answers_graded_differently_is_said(app, db):
    _grade_every_group(db, "q1")
    with Store.open(db) as store:
        answers = store.answers("q1")
        state = store.state("q1")
        identical = identical_answers(answers)
        canberras = identical[next(a.answer_id for a in answers if a.normalized == "Canberra")]
        assert len(canberras) >= 5
        version = state.version
        for a in canberras:  # every "Canberra" graded 1 first, whatever its group got
            if state.grade_of(a).score != 1.0:
                store.append("q1", "grader", version, GradeAnswer(a, 1.0, ""))
                version += 1
        first, second = canberras[:2]  # both graded 0 by hand: the odd ones out among the Canberras
        store.append("q1", "grader", version, GradeAnswer(first, 0.0, ""))
        store.append("q1", "grader", version + 1, GradeAnswer(second, 0.0, ""))
    app.switch_page("views/check.py").run()
    assert not app.exception, app.exception
    app.button(key=f"check-give-q1-{first}").click().run()  # its twins' grade: 1
    assert not app.exception, app.exception
    assert logged(db)[-1][1].answer_id == first and logged(db)[-1][1].score == 1.0
    said = [i.value for i in app.info if "graded unlike most of their identical answers" in i.value]
    assert said == ["After this edit, 1 answer(s) are graded unlike most of their identical answers; "
                    "the Check grades page lists them first."]
    assert second in texts(app)
    app.button(key=f"check-give-q1-{second}").click().run()
    assert not any("graded unlike most" in i.value for i in app.info)  # all alike again: nothing to say


def test_late_answers_are_listed_without_leaving_the_page(checked, db, monkeypatch):
    from test_ui_app import rerun_fragments_only

    from grouper.answers import Answer

    with Store.open(db) as store:
        store.add_answers("q1", [Answer("late-1", "q1", "Sydney")], [None], "Ben")
        store.append("q1", "Ben", None, GradeAnswer("late-1", 1.0, "ok"))
    rerun_fragments_only(checked, monkeypatch)
    checked.run()
    assert not checked.exception, checked.exception  # the late answer is ranked with its text


def test_a_doubt_resting_on_identical_answers_is_weighed_again_when_they_are_regraded(checked, db):
    reason = next((t for t in texts(checked) if "graded otherwise" in t), None)
    assert reason is not None, "the sample's hurried grading leaves identical answers graded apart"
    twins = reason.split("identical to ", 1)[1].split(", graded otherwise")[0].rstrip(" …").split(", ")
    with Store.open(db) as store:
        grades = {store.state("q1").grade_of(t).score for t in twins}
        for twin in twins:  # Ben gives the twins the other grade: the evidence changed
            store.append("q1", "Ben", None, GradeAnswer(twin, 1.0 - min(grades), "regraded"))
    checked.run()
    assert reason not in texts(checked)  # not the old evidence, with its old likely grade
