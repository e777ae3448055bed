"""The rubric in a real browser: the app served by ``grouper ui`` on a free localhost port,
Debian's Chromium driven by Playwright (see conftest.py).

An instructor writes a rubric, grades a group with two keys (1 ticks the first item, G
grades), then gives the item other points: the group is regraded in the same edit, and the
page says whose grades changed; last, the group gets a point adjustment typed in its form.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import go_to, message, serve, settle, sign_in

from grouper.answers import load_answers
from grouper.edits import GradeGroup, SetRubric
from grouper.intake import import_questions
from grouper.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def server(tmp_path_factory, encoder):
    folder = tmp_path_factory.mktemp("browser-rubric")
    db = folder / "ui.sqlite"
    with Store.open(db) as store:
        import_questions(store, [load_answers(REPO / "sample_data" / "q1_capital_australia.csv")[0]], encoder)
    with serve(db, folder) as running:
        yield running


def _save_rubric(page, lines: str) -> None:
    box = page.get_by_label("One item per line: DESCRIPTION=POINTS (negative points deduct)", exact=True)
    if not box.is_visible():
        page.get_by_text("Rubric (", exact=False).first.click()
        settle(page)
    box.fill(lines)
    page.get_by_role("button", name="Save rubric", exact=True).click()
    settle(page)


def test_an_item_repriced_regrades_the_group_graded_with_it(server, open_page, screenshots):
    page, guard = open_page()
    sign_in(page, server.url, "Ada")
    go_to(page, "Groups")
    _save_rubric(page, "names Canberra=1\nspelling mistake=-0.5")
    message(page, "The rubric now has 2 items.")

    # Keys, as a grader works: 1 ticks the first item, G grades.
    page.get_by_text("Grade this group", exact=True).click()  # focus off the rubric editor
    page.keyboard.press("1")
    page.get_by_role("button", name=re.compile(r"^✓ Item 1")).wait_for()
    settle(page)
    page.get_by_role("button", name=re.compile(r"^Grade 1 by the rubric")).wait_for()
    page.keyboard.press("g")
    message(page, "by the rubric.")
    page.get_by_text("Rubric: names Canberra (+1)", exact=True).wait_for()
    screenshots(page, "rubric-graded")

    with Store.open(server.db) as store:
        state = store.state("q1")
        graded = [g for g in state.groups.values() if g.grade is not None]
    assert len(graded) == 1 and graded[0].grade.items == (1,) and graded[0].grade.score == 1.0
    n = len(graded[0].members)

    _save_rubric(page, "1: names Canberra=2\n2: spelling mistake=-0.5")
    message(page, f"{n} answers changed grade: from 1 to 2.")
    screenshots(page, "rubric-repriced")
    with Store.open(server.db) as store:
        log = [(e.author, e.payload) for e in store.edits("q1")]
        after = store.state("q1")
    assert log == [
        ("Ada", SetRubric(((1, "names Canberra", 1.0), (2, "spelling mistake", -0.5)))),
        ("Ada", GradeGroup(graded[0].group_id, None, "", items=(1,))),
        ("Ada", SetRubric(((1, "names Canberra", 2.0), (2, "spelling mistake", -0.5)))),
    ]
    assert {after.grade_of(a).score for a in graded[0].members} == {2.0}

    # A point adjustment for what no item names, typed in the grading form.
    # (the group's own form: keyed widgets carry their key as a class, st-key-<key>)
    form = page.locator(f"[class*='st-key-rubric-adjust-q1-{graded[0].group_id}-']")
    adjust = form.get_by_label("Point adjustment", exact=True)
    adjust.fill("0.5")
    page.get_by_role("button", name=re.compile(r"^Grade 2 by the rubric")).click()
    message(page, "by the rubric with an adjustment of +0.5.")
    page.get_by_text("Rubric: names Canberra (+2); adjustment (+0.5)", exact=True).wait_for()
    with Store.open(server.db) as store:
        adjusted = store.state("q1").groups[graded[0].group_id].grade
    assert (adjusted.items, adjusted.adjustment, adjusted.score) == ((1,), 0.5, 2.5)
    assert guard.outside == []
