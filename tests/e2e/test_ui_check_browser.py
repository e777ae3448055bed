"""The Check grades page in a real browser: the app served by ``grouper ui`` on a free
localhost port, Debian's Chromium driven by Playwright (see conftest.py).

After a hurried review (every group of the q1 sample graded by its majority gold label), a
grader opens Check grades, sees the most doubtful answer first, gives it the likely grade in
one click (one ``GradeAnswer`` edit by them), and marks the next one as looking right (one
``CheckGrades`` edit: it leaves the list for every grader), then the next with the key L.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import go_to, message, serve, settle, sign_in

from grouper.answers import load_answers
from grouper.edits import CheckGrades, GradeAnswer, GradeGroup
from grouper.grade_check import check_question
from grouper.intake import import_questions
from grouper.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory, encoder):
    folder = tmp_path_factory.mktemp("browser-check")
    db = folder / "ui.sqlite"
    with Store.open(db) as store:
        q1 = load_answers(REPO / "sample_data" / "q1_capital_australia.csv")[0]
        import_questions(store, [q1], encoder)
        gold = {a.answer_id: a.gold or "" for a in q1.answers}
        state = store.state("q1")
        for done, (gid, group) in enumerate(state.groups.items()):
            labels = [gold[a] for a in group.members]
            label = max(sorted(set(labels)), key=labels.count)
            store.append("q1", "grader", state.version + done, GradeGroup(gid, {"correct": 1.0}.get(label, 0.0), label))
    with serve(db, folder) as running:
        yield running


def test_the_likely_grade_in_one_click_and_looks_right(server, open_page, screenshots, encoder):
    with Store.open(server.db) as store:
        doubts = check_question(store, "q1", encoder)
        before = len(store.edits("q1"))
    fix = next(d for d in doubts if d.likely is not None)
    page, guard = open_page()
    sign_in(page, server.url, "Ada")
    go_to(page, "Check grades")
    page.get_by_text("185 graded answers, the most doubtful first", exact=False).first.wait_for()
    settle(page)
    screenshots(page, "check-listed")

    likely = f"{fix.likely.score:g} ({fix.likely.comment})"
    page.get_by_role("button", name=f"Give it {fix.likely.score:g}", exact=False).first.click()
    message(page, f"Answer {fix.answer_id} graded {likely}.")
    settle(page)
    with Store.open(server.db) as store:
        keep = check_question(store, "q1", encoder)[0]  # the list after the fix
    page.get_by_text(f"{keep.answer_id} · ", exact=False).first.wait_for()
    page.get_by_role("button", name="Looks right").first.click()
    message(page, f"Answer {keep.answer_id}'s grade checked as right.")
    page.get_by_text("1 checked as right by a grader, left out", exact=False).first.wait_for()
    settle(page)
    assert page.get_by_text(f"{keep.answer_id} · ", exact=False).count() == 0
    screenshots(page, "check-kept")

    # The keyboard: L says the first answer listed looks right.
    with Store.open(server.db) as store:
        following = next(
            d for d in check_question(store, "q1", encoder) if d.checked_by is None and d.answer_id != fix.answer_id
        )
    page.get_by_role("heading", name="Check grades").click()  # focus off the inputs
    page.keyboard.press("l")
    message(page, f"Answer {following.answer_id}'s grade checked as right.")
    page.get_by_text("2 checked as right by a grader, left out", exact=False).first.wait_for()

    with Store.open(server.db) as store:
        log = [(e.author, e.payload) for e in store.edits("q1")][before:]
    assert log == [
        ("Ada", GradeAnswer(fix.answer_id, fix.likely.score, fix.likely.comment)),
        ("Ada", CheckGrades((keep.answer_id,))),
        ("Ada", CheckGrades((following.answer_id,))),
    ]
    assert guard.outside == []
