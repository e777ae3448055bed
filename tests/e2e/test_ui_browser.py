"""End to end in a real browser: the app served by ``grouper ui`` on a free localhost port,
Debian's Chromium driven by Playwright.

What an instructor does (import the sample data, open a group, move an answer, merge two
groups, grade, undo, export) must leave exactly those edits in the store; student answers
that are HTML, Markdown, LaTeX or icon directives must show verbatim, run no script and make
no request; and two users editing the same question must never silently lose an edit.
Screenshots of every page are saved under artifacts/screenshots/.
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import pytest
from conftest import click_table_row, go_to, message, pick_question, serve, settle, sign_in

from grouper.answers import load_answers
from grouper.edits import Confirm, GradeAnswer, GradeGroup, Merge, Move, Undo
from grouper.exports import write_pairs_jsonl
from grouper.feedback import PairFilter, training_pairs
from grouper.intake import import_questions
from grouper.review import listing_order
from grouper.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]

# The same payloads as tests/test_ui_app.py: each would act if rendered as HTML/Markdown.
XSS = (
    "<script>window.__xss = 1</script>",
    '<img src=x onerror="window.__xss = 2">',
    "[x](javascript:alert(1))",
    "![](http://example.invalid/pixel.png)",
    "$x$",
    ":material/home:",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One ``grouper ui`` for the module (the model loads once); each test works on its own
    question of the store."""
    folder = tmp_path_factory.mktemp("browser")
    with serve(folder / "ui.sqlite", folder) as running:
        yield running


def _xss_csv() -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["answer_id", "question_id", "answer"])
    for i, text in enumerate(XSS * 3):
        writer.writerow([f"x{i:02d}", "xss", text])
    return out.getvalue().encode()


def _edits(db: Path, question_id: str) -> list[tuple[str, object]]:
    with Store.open(db) as store:
        return [(e.author, e.payload) for e in store.edits(question_id)]


def test_instructor_imports_reviews_grades_undoes_and_exports(server, open_page, screenshots):
    db = server.db
    page, guard = open_page()
    sign_in(page, server.url, "Ada")

    # Import: the sample data, q1 only.
    go_to(page, "Import")
    page.get_by_text("Sample data", exact=True).click()
    settle(page)
    for name in ("q2_photosynthesis.csv", "q3_ball_drop.csv"):
        page.get_by_role("button", name=f"Remove {name}").click()
        settle(page)
    screenshots(page, "import")
    page.get_by_role("button", name="Import and group 1 question(s)").click()
    message(page, "Imported and grouped 1 question(s).", timeout_ms=240_000)
    settle(page)

    with Store.open(db) as store:
        initial = store.state("q1")
    order = listing_order(initial)

    # Open the second group of the list, tick its least typical member, move it out.
    go_to(page, "Groups")
    click_table_row(page, 0, 1)
    settle(page)
    opened = order[1]
    page.get_by_role("heading", name=f"Group {opened}", exact=True).wait_for()
    screenshots(page, "groups")
    click_table_row(page, 1, 0)
    settle(page)
    page.get_by_text("1 of ").wait_for()
    started = time.perf_counter()
    page.get_by_role("button", name="Move", exact=True).click()
    message(page, "Moved 1 answer(s) to the ungrouped answers.")
    move_seconds = time.perf_counter() - started
    settle(page)

    # Merge the third group of the list into the open one.
    page.locator(".st-key-action-q1").get_by_text("Merge", exact=True).click()
    settle(page)
    page.get_by_label("Merge these groups into this one").click()
    target = order[2]
    page.get_by_role("option", name=re.compile(rf"^Group {target} \(")).click()
    page.keyboard.press("Escape")
    settle(page)
    page.locator(f".st-key-merge-btn-q1-{opened} button").click()
    merged_message = message(page, f"into group {opened}.").inner_text()
    settle(page)

    # Grade the open group, then undo the grade with the keyboard shortcut.
    page.get_by_label("Score", exact=True).fill("1")
    # Typed key by key: the shortcut letters (y, n, u) in a text field must not fire.
    page.get_by_label("Comment", exact=True).press_sequentially("Right city, you know")
    page.get_by_label("Comment", exact=True).press("Tab")
    settle(page)
    page.get_by_role("button", name="Apply grade").click()
    message(page, f"Group {opened} graded 1.")
    settle(page)
    page.get_by_role("heading", name="Groups").click()  # focus off the inputs
    page.keyboard.press("u")
    message(page, "Undid your edit 3.")
    settle(page)
    # "n" opens the next group of the list (no edit).
    with Store.open(db) as store:
        now = listing_order(store.state("q1"))
    page.keyboard.press("n")
    page.get_by_role("heading", name=f"Group {now[now.index(opened) + 1]}", exact=True).wait_for()
    settle(page)

    go_to(page, "Ungrouped queue")
    screenshots(page, "queue")
    # The answer moved out waits in the queue: grade it there, on its own.
    with Store.open(db) as store:
        moved_out = store.edits("q1")[0].payload.answer_ids[0]
    # It is not suggested back into the group it was taken from (which the merge kept).
    accept = page.locator(f".st-key-accept-q1-{moved_out} button")
    if accept.count():
        assert accept.inner_text().strip() != f"Move to group {opened}"
    else:
        page.get_by_text(re.compile(rf"moved out of group {opened}\b")).first.wait_for()
    page.locator(f".st-key-answer-score-q1-{moved_out} input").fill("0")
    page.locator(f".st-key-answer-score-q1-{moved_out} input").press("Tab")
    settle(page)
    page.locator(f".st-key-grade-answer-q1-{moved_out} button").click()
    message(page, f"Answer {moved_out} graded 0.")
    settle(page)
    go_to(page, "Map")
    page.locator("canvas.marks, [data-testid='stVegaLiteChart']").first.wait_for()
    screenshots(page, "map")
    go_to(page, "Export")
    with page.expect_download() as download:
        page.get_by_role("button", name="Grades (CSV, one row per answer)").click()
    plain_bytes = Path(download.value.path()).read_bytes()
    grades = list(csv.DictReader(io.StringIO(plain_bytes.decode("utf-8"))))
    # "For Excel" puts a UTF-8 byte-order mark before the same file, so Excel reads it as UTF-8.
    page.locator(".st-key-export-excel label").click()
    settle(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Grades (CSV, one row per answer)").click()
    assert Path(download.value.path()).read_bytes() == b"\xef\xbb\xbf" + plain_bytes
    # The files are built on the click (deferred): the pairs file is the CLI's, byte for byte.
    with page.expect_download() as download:
        page.get_by_role("button", name="Training pairs (JSONL)").click()
    pairs_file = Path(download.value.path()).read_text(encoding="utf-8")
    screenshots(page, "export")
    assert guard.outside == []

    log = _edits(db, "q1")
    assert [(author, type(p).__name__) for author, p in log] == [
        ("Ada", "Move"),
        ("Ada", "Merge"),
        ("Ada", "GradeGroup"),
        ("Ada", "Undo"),
        ("Ada", "GradeAnswer"),
    ]
    move, merge, grade, undo, own = (p for _, p in log)
    assert move == Move(move.answer_ids, None) and len(move.answer_ids) == 1
    assert move.answer_ids[0] in initial.groups[opened].members
    assert (
        merge == Merge(opened, (target,))
        and f"Merged group(s) {target} into group {opened}." in merged_message
    )
    assert grade == GradeGroup(opened, 1.0, "Right city, you know")
    assert undo == Undo(3)
    assert own == GradeAnswer(move.answer_ids[0], 0.0)
    # The export agrees with the store: the group grade was undone, so only the answer graded
    # on its own has a score.
    assert len(grades) == len(initial.answer_ids)
    assert [(r["answer_id"], r["score"]) for r in grades if r["score"]] == [(move.answer_ids[0], "0")]
    expected = io.StringIO(newline="")
    with Store.open(db) as store:
        write_pairs_jsonl(training_pairs(store, select=PairFilter(question_ids=frozenset({"q1"}))), expected)
    assert pairs_file == expected.getvalue() and pairs_file.count("\n") > 0
    print(f"\nmove click -> page updated: {move_seconds:.2f} s ({len(initial.answer_ids)} answers)")


def test_student_markup_is_shown_verbatim_runs_nothing_and_fetches_nothing(
    server, open_page, screenshots, tmp_path
):
    db = server.db
    upload = tmp_path / "xss.csv"
    upload.write_bytes(_xss_csv())
    page, guard = open_page()
    sign_in(page, server.url, "Ada")
    go_to(page, "Import")
    page.locator("input[type='file']").set_input_files(str(upload))
    settle(page)
    page.get_by_role("button", name="Import and group 1 question(s)").click()
    message(page, "Imported and grouped 1 question(s).", timeout_ms=240_000)
    go_to(page, "Groups")
    with Store.open(db) as store:
        state = store.state("xss")
    order = listing_order(state)
    seen = []
    for row, gid in enumerate(order):
        click_table_row(page, 0, row)
        settle(page)
        title = state.groups[gid].title
        # The open group's title is drawn with st.text: the DOM holds it as text. Wait for it:
        # on a loaded machine the rerun can still be drawing after the page went quiet.
        shown = page.get_by_test_id("stText").filter(has_text=title)
        shown.first.wait_for(state="attached")
        assert shown.count() >= 1, title
        seen.append(title)
    screenshots(page, "xss-groups")
    # Titles also appear as options of the "move to" and "merge" pickers: plain text too.
    page.get_by_label("Move the selected answers to").click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    assert sum(any(o.endswith(": " + payload) for o in options) for payload in XSS) == len(XSS) - 1
    go_to(page, "Ungrouped queue")
    go_to(page, "Map")
    screenshots(page, "xss-map")
    assert sorted(seen) == sorted(XSS)
    assert page.evaluate("() => window.__xss") is None
    assert page.locator("img[src='x'], img[src*='example.invalid'], a[href^='javascript:']").count() == 0
    assert guard.outside == []


def test_two_users_on_one_question_never_lose_an_edit(server, open_page, screenshots, encoder):
    """On q3, imported beside the other tests' questions (each test has its own question)."""
    db = server.db
    with Store.open(db) as store:
        import_questions(store, load_answers(REPO / "sample_data" / "q3_ball_drop.csv"), encoder)
        initial = store.state("q3")
    first, second = listing_order(initial)[:2]
    ada, ada_guard = open_page()
    ben, ben_guard = open_page()
    for page, name in ((ada, "Ada"), (ben, "Ben")):
        sign_in(page, server.url, name)
        pick_question(page, "q3")  # both pages show version 0, the first group open

    # Ben starts renaming the first group: picks the action and types the title.
    ben.locator(".st-key-action-q3").get_by_text("Rename", exact=True).click()
    settle(ben)
    ben.get_by_label("New title").fill("Ben's title")
    ben.get_by_label("New title").press("Tab")
    settle(ben)

    # Meanwhile Ada moves an answer out of that group (version 1).
    click_table_row(ada, 1, 0)
    settle(ada)
    ada.get_by_role("button", name="Move", exact=True).click()
    message(ada, "Moved 1 answer(s)")
    settle(ada)

    # Ben's page still shows version 0: his rename is refused, with what changed and by whom.
    ben.locator(f".st-key-rename-btn-q3-{first} button").click()
    message(ben, "Your edit was not saved")
    reason = ben.get_by_test_id("stText").filter(has_text="edit refused").first.inner_text()
    settle(ben)
    screenshots(ben, "two-users-refused")

    # Now both act on different groups from pages that are each one edit behind the
    # other's: both edits are kept.
    click_table_row(ben, 0, 1)  # Ben opens the second group (his page: version 1)
    settle(ben)
    ada.get_by_role("button", name="Confirm group").click()  # Ada: the first group
    message(ada, f"Group {first} confirmed.")
    ben.get_by_role("button", name="Confirm group").click()  # base version 1, now 2
    message(ben, f"Group {second} confirmed.")
    settle(ada)
    settle(ben)
    screenshots(ada, "two-users-ada")
    assert ada_guard.outside == [] and ben_guard.outside == []

    assert f"group {first}" in reason and "Ada" in reason
    log = _edits(db, "q3")
    assert [(author, type(p).__name__) for author, p in log] == [
        ("Ada", "Move"),
        ("Ada", "Confirm"),
        ("Ben", "Confirm"),
    ]
    assert log[0][1].answer_ids[0] in initial.groups[first].members
    assert (log[1][1], log[2][1]) == (Confirm(first), Confirm(second))
    with Store.open(db) as store:
        assert (
            store.state("q3").groups[first].title == initial.groups[first].title
        )  # Ben's rename never landed


def test_a_refused_undo_is_made_in_one_click_with_the_undos_it_waits_on(server, open_page, screenshots, encoder):
    """On q2: Ben graded a group three times; Ada undoes his first grade from the history
    page, is told which undos it waits on, and makes them all with one click."""
    db = server.db
    with Store.open(db) as store:
        import_questions(store, load_answers(REPO / "sample_data" / "q2_photosynthesis.csv"), encoder)
        group = listing_order(store.state("q2"))[0]
        for version, score in enumerate((2.0, 1.0, 0.5)):
            store.append("q2", "Ben", version, GradeGroup(group, score))
    page, guard = open_page()
    sign_in(page, server.url, "Ada")
    pick_question(page, "q2")
    go_to(page, "History")
    click_table_row(page, 0, 2)  # newest first: edit 1 is the third row
    settle(page)
    page.get_by_role("button", name="Undo edit 1", exact=True).click()
    message(page, "Your edit was not saved")
    page.get_by_text("undo edits 3 and 2 first, in that order").first.wait_for()
    settle(page)
    page.get_by_role("button", name="Undo edits 3 and 2, then edit 1").click()
    message(page, "Undid edit 1.")
    settle(page)
    screenshots(page, "history-undo-chain")
    assert guard.outside == []
    assert _edits(db, "q2")[-3:] == [("Ada", Undo(3)), ("Ada", Undo(2)), ("Ada", Undo(1))]
    with Store.open(db) as store:
        assert store.state("q2").groups[group].grade is None
