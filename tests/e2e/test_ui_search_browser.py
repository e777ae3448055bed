"""The Search page in a real browser: the app served by ``grouper ui`` on a free localhost
port, Debian's Chromium driven by Playwright (see conftest.py).

A grader types a word, ticks rows in the canvas grid (and "Select all shown", which must tick
every row the browser shows), moves them into a new group in one edit; an answer written in
HTML and Markdown shows verbatim and renders nothing.
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import pytest
from conftest import click_table_row, go_to, message, serve, settle, sign_in

from grouper.answers import load_answers, parse_answers
from grouper.edits import NEW, Move
from grouper.intake import import_questions
from grouper.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
MARKUP = '<b>bold</b> **strong** <img src=x onerror="window.__xss = 3">'


def _markup_question():
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["answer_id", "question_id", "answer"])
    for i, text in enumerate([MARKUP, "plain words", "more plain words"] * 3):
        writer.writerow([f"m{i}", "markup", text])
    return parse_answers(out.getvalue().encode(), "markup.csv")[0]


@pytest.fixture(scope="module")
def server(tmp_path_factory, encoder):
    folder = tmp_path_factory.mktemp("browser-search")
    db = folder / "ui.sqlite"
    with Store.open(db) as store:
        q1 = load_answers(REPO / "sample_data" / "q1_capital_australia.csv")[0]
        import_questions(store, [q1, _markup_question()], encoder)
    with serve(db, folder) as running:
        yield running


def _search(page, query: str) -> None:
    page.get_by_label("Answers that mention", exact=True).fill(query)
    page.get_by_role("button", name="Search", exact=True).click()
    page.get_by_text(re.compile(r"answers? match")).first.wait_for()
    settle(page)


def _choose(page, label: str, option: str) -> None:
    """Pick ``option`` in the selectbox ``label``. Right after the table is redrawn (Select
    all shown) the first click on the picker may only take the focus off the grid."""
    picker = page.get_by_label(label, exact=True)
    choice = page.get_by_role("option", name=option, exact=True)
    for _ in range(3):
        picker.click()
        settle(page)
        if choice.count():
            break
    choice.click()
    settle(page)


def test_search_ticks_and_moves_in_one_edit(server, open_page, screenshots):
    page, guard = open_page()
    sign_in(page, server.url, "Ada")
    go_to(page, "Search")
    _search(page, "sydney")
    with Store.open(server.db) as store:
        before = store.state("q1")
        expected = [a.answer_id for a in store.answers("q1") if "sydney" in a.text.casefold()]
    page.get_by_text(f"{len(expected)} answers match.", exact=True).wait_for()

    click_table_row(page, 0, 0)
    click_table_row(page, 0, 2)
    page.get_by_text(f"2 of {len(expected)} shown selected.", exact=True).wait_for()
    settle(page)
    page.get_by_role("button", name="Select all shown").click()
    page.get_by_text(f"{len(expected)} of {len(expected)} shown selected.", exact=True).wait_for()
    settle(page)
    screenshots(page, "search-selected")

    _choose(page, "Move the selected answers to", "A new group")
    page.get_by_role("button", name="Move", exact=True).click()
    message(page, f"Moved {len(expected)} answer(s) to a new group.")
    page.get_by_text(f"0 of {len(expected)} shown selected.", exact=True).wait_for()
    settle(page)
    screenshots(page, "search-moved")

    with Store.open(server.db) as store:
        log = [(e.author, e.payload) for e in store.edits("q1")]
        after = store.state("q1")
    assert log == [("Ada", Move(tuple(expected), NEW))]
    assert {after.group_of(a) for a in expected} == {before.next_group_id}
    assert guard.outside == []


def test_markup_in_answers_is_shown_verbatim(server, open_page, screenshots):
    page, guard = open_page()
    sign_in(page, server.url, "Ben")
    go_to(page, "Search")
    # (conftest.pick_question waits for the Groups page's "Version" line: pick by hand)
    page.get_by_label("Question", exact=True).click()
    page.get_by_role("option", name="markup", exact=True).click()
    settle(page)
    _search(page, "**strong**")
    page.get_by_text("3 answers match.", exact=True).wait_for()
    screenshots(page, "search-markup")
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("b", has_text="bold").count() == 0
    assert page.locator("strong", has_text="strong").count() == 0
    assert guard.outside == []
