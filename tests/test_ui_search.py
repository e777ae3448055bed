"""The Search page through Streamlit's AppTest, against a real SQLite store in tmp_path.

As in tests/test_ui_app.py: a template store (the q1 sample question, a question of answers
written in HTML and Markdown, and a large question of few distinct answers), grouped with the
real packaged encoder once per session and copied for every test, so that each test checks
what the store logged: one ``Move`` of exactly the ticked answers, by the signed-in user.
"""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest
from test_ui_app import XSS, _oidc_app, errors, logged, new_app, rerun_fragments_only, select_rows, sign_in, state, successes, texts

from grouper.answer_search import search_answers
from grouper.answers import Answer, Question, load_answers, parse_answers
from grouper.edits import NEW, Confirm, Delete, Move, Undo
from grouper.intake import import_questions
from grouper.store import Store

REPO = Path(__file__).resolve().parents[1]
COLUMNS = ["Answer", "Answer id", "Group", "Status", "Grade"]
MARKUP = "<b>x</b> **y**"
SHOW_AT_MOST = 500  # ui/views/search.py


def _question(question_id: str, answers: list[str]) -> Question:
    out = io.StringIO()
    writer = csv.DictWriter(out, ["answer_id", "question_id", "answer"])
    writer.writeheader()
    writer.writerows(
        {"answer_id": f"{question_id}-{i:04d}", "question_id": question_id, "answer": text}
        for i, text in enumerate(answers)
    )
    return parse_answers(out.getvalue().encode(), f"{question_id}.csv")[0]


@pytest.fixture(scope="session")
def search_template_db(tmp_path_factory, encoder) -> Path:
    """q1 (185 sample answers), "markup" (HTML/Markdown answers) and "big" (600 answers,
    three distinct texts), grouped, no edits."""
    path = tmp_path_factory.mktemp("ui-search-template") / "template.sqlite"
    q1 = load_answers(REPO / "sample_data" / "q1_capital_australia.csv")[0]
    markup = _question("markup", [MARKUP, *XSS] * 3)
    big = _question("big", ["Canberra is the capital", "Sydney", "Perth, I think"] * 200)
    with Store.open(path) as store:
        import_questions(store, [q1, markup, big], encoder)
    return path


@pytest.fixture
def db(search_template_db, tmp_path, monkeypatch) -> Path:
    """This test's own copy of the template store, named to the app by GROUPER_DB."""
    path = tmp_path / "grouper.sqlite"
    for source in search_template_db.parent.glob(search_template_db.name + "*"):
        shutil.copy(source, tmp_path / source.name.replace(search_template_db.name, path.name))
    monkeypatch.setenv("GROUPER_DB", str(path))
    monkeypatch.delenv("GROUPER_STAFF_FILE", raising=False)
    monkeypatch.setenv("GROUPER_MODELS_DIR", str(tmp_path / "models"))
    return path


@pytest.fixture
def app(db) -> AppTest:
    """Ada (localhost: an instructor) signed in, on the Search page of q1."""
    at = sign_in(new_app())
    at.switch_page("views/search.py").run()
    assert not at.exception, at.exception
    return at


def answer_texts(db: Path, question_id: str = "q1") -> dict[str, str]:
    with Store.open(db) as store:
        return {a.answer_id: a.text for a in store.answers(question_id)}


def search(at: AppTest, query: str, question_id: str = "q1") -> AppTest:
    at.text_input(key=f"search-query-{question_id}").input(query)
    at.button(key=f"search-go-{question_id}").click().run()
    assert not at.exception, at.exception
    return at


def results_key(at: AppTest, question_id: str = "q1") -> str:
    (key,) = [d.key for d in at.dataframe if d.key and d.key.startswith(f"search-results-{question_id}-")]
    return key


def results(at: AppTest, question_id: str = "q1"):
    return at.dataframe(key=results_key(at, question_id)).value


def count_line(at: AppTest) -> str:
    return next(t for t in texts(at) if " match" in t)


def move(at: AppTest, to, question_id: str = "q1") -> AppTest:
    at.selectbox(key=f"search-move-to-{question_id}").set_value(to)
    at.button(key=f"search-move-{question_id}").click().run()
    assert not at.exception, at.exception
    return at


def test_a_move_to_a_group_deleted_meanwhile_goes_nowhere(app, db):
    search(app, "sydney")
    target = max(state(db).groups)
    app.selectbox(key="search-move-to-q1").set_value(target).run()
    with Store.open(db) as store:
        store.append("q1", "Ben", None, Delete(target))
    select_rows(app, results_key(app), [0, 1])  # a rerun: the choice is gone from the box
    app.button(key="search-move-q1").click().run()
    # Streamlit puts the box back to its first option ("Ungrouped"): the move goes nowhere.
    assert errors(app) == [f"Group {target}, where you chose to move them, is gone (deleted or merged): choose again."]
    assert logged(db)[-1] == ("Ben", Delete(target))


def test_late_answers_are_found_without_leaving_the_page(app, db, monkeypatch):
    search(app, "canberra")
    with Store.open(db) as store:
        store.add_answers("q1", [Answer("late-1", "q1", "Canberra, definitely (late)")], [None], "Ben")
    rerun_fragments_only(app, monkeypatch)
    search(app, "definitely")
    assert count_line(app) == "1 answer matches."


# --------------------------------------------------------------------------- searching


def test_the_page_asks_for_a_query_first(app):
    assert [t.value for t in app.title] == ["Search"]
    assert "Type words or a quoted phrase and press Search." in texts(app)
    assert not [d for d in app.dataframe if d.key and d.key.startswith("search-results-")]
    search(app, "   ")
    assert "Type words or a quoted phrase and press Search." in texts(app)


def test_a_word_lists_every_matching_answer_with_its_group(app, db):
    search(app, "SYDNEY")
    expected = search_answers(answer_texts(db), "sydney")
    assert len(expected) > 3
    assert count_line(app) == f"{len(expected)} answers match."
    shown = results(app)
    assert list(shown.columns) == COLUMNS
    assert list(shown["Answer id"]) == expected
    assert all("sydney" in text.casefold() for text in shown["Answer"])
    now = state(db)
    first = shown.iloc[0]
    gid = now.group_of(first["Answer id"])
    assert first["Group"] == (f"{gid}: {now.groups[gid].title}" if gid is not None else "ungrouped")
    assert set(shown["Status"]) <= {"suggested", ""}
    assert set(shown["Grade"]) == {""}


def test_a_quoted_phrase_and_no_match(app, db):
    search(app, '"capital of australia"')
    expected = search_answers(answer_texts(db), '"capital of australia"')
    assert expected and list(results(app)["Answer id"]) == expected
    search(app, "canberra zanzibar")
    assert count_line(app) == "0 answers match."
    assert not [d for d in app.dataframe if d.key and d.key.startswith("search-results-")]


def test_many_matches_are_counted_and_the_first_ones_shown(app):
    app.selectbox(key="question-picker").set_value("big").run()
    search(app, "canberra", "big")
    assert count_line(app) == "200 answers match."
    search(app, "th", "big")  # "... the capital" and "Perth, I think"
    assert count_line(app) == "400 answers match."
    search(app, "e", "big")  # every answer has an e
    assert count_line(app) == f"600 answers match (showing first {SHOW_AT_MOST})."
    assert len(results(app, "big")) == SHOW_AT_MOST


# --------------------------------------------------------------------------- moving


def test_the_ticked_answers_move_to_a_new_group_in_one_edit(app, db):
    before = state(db)
    search(app, "sydney")
    shown = list(results(app)["Answer id"])
    select_rows(app, results_key(app), [0, 2, 3])
    chosen = (shown[0], shown[2], shown[3])
    assert "3 of" in next(t for t in texts(app) if "selected" in t)
    move(app, NEW)
    assert successes(app) == ["Moved 3 answer(s) to a new group."]
    assert logged(db) == [("Ada", Move(chosen, NEW))]
    now = state(db)
    new_gid = now.next_group_id - 1
    assert {now.group_of(a) for a in chosen} == {new_gid}
    assert set(now.groups[new_gid].members) == set(chosen)
    # The table shows the move, with nothing ticked any more.
    after = results(app).set_index("Answer id")
    assert {after.loc[a, "Group"] for a in chosen} == {f"{new_gid}: {now.groups[new_gid].title}"}
    assert "0 of" in next(t for t in texts(app) if "selected" in t)
    # Taken back on the same page: the answers are where they were.
    app.button(key="search-undo-q1").click().run()
    assert logged(db)[1] == ("Ada", Undo(1))
    assert [state(db).group_of(a) for a in chosen] == [before.group_of(a) for a in chosen]


def test_select_all_shown_then_move_to_an_existing_group(app, db):
    search(app, "canberra")
    shown = tuple(results(app)["Answer id"])
    target = max(state(db).groups.values(), key=lambda g: len(g.members)).group_id
    app.button(key="search-all-q1").click().run()
    assert f"{len(shown)} of {len(shown)} shown selected." in texts(app)
    move(app, target)
    assert logged(db) == [("Ada", Move(shown, target))]
    assert {state(db).group_of(a) for a in shown} == {target}


def test_move_to_ungrouped_and_clear_selection(app, db):
    search(app, "perth")
    shown = list(results(app)["Answer id"])
    select_rows(app, results_key(app), [0])
    app.button(key="search-none-q1").click().run()
    assert "0 of" in next(t for t in texts(app) if "selected" in t)
    select_rows(app, results_key(app), [0])
    move(app, "ungrouped")
    assert successes(app) == ["Moved 1 answer(s) to the ungrouped answers."]
    assert logged(db) == [("Ada", Move((shown[0],), None))]
    assert shown[0] in state(db).ungrouped
    assert results(app).set_index("Answer id").loc[shown[0], "Group"] == "ungrouped"


def test_a_move_without_ticks_is_explained_not_logged(app, db):
    search(app, "sydney")
    move(app, NEW)
    assert errors(app) == ["Tick the answers to move first (or use Select all shown)."]
    assert logged(db) == []


def test_a_stale_move_is_refused_with_what_changed(app, db):
    """Ben confirms the group of an answer Ada sees; her move out of it is refused."""
    search(app, "sydney")
    first = results(app).iloc[0]["Answer id"]
    gid = state(db).group_of(first)
    assert gid is not None
    select_rows(app, results_key(app), [0])
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Confirm(gid))
    move(app, NEW)
    assert errors(app) == ["Your edit was not saved."]
    reason = next(t for t in texts(app) if t.startswith("edit refused"))
    assert f"group {gid}" in reason and "Ben" in reason
    assert logged(db) == [("Ben", Confirm(gid))]
    assert state(db).group_of(first) == gid


def test_a_ta_searches_and_moves_as_their_address(db, tmp_path, monkeypatch):
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ben@example.edu"})
    at.switch_page("views/search.py").run()
    assert [t.value for t in at.title] == ["Search"]
    search(at, "sydney")
    first = results(at).iloc[0]["Answer id"]
    select_rows(at, results_key(at), [0])
    move(at, NEW)
    assert logged(db) == [("ben@example.edu", Move((first,), NEW))]


# --------------------------------------------------------------------------- plain text


def test_markup_in_answers_is_shown_verbatim_never_rendered(app, db):
    app.selectbox(key="question-picker").set_value("markup").run()
    search(app, "**y**", "markup")
    shown = results(app, "markup")
    assert set(shown["Answer"]) == {MARKUP}
    assert count_line(app) == "3 answers match."
    search(app, "<b>x</b>", "markup")
    assert set(results(app, "markup")["Answer"]) == {MARKUP}
    gid = state(db, "markup").group_of(shown.iloc[0]["Answer id"])
    title = state(db, "markup").groups[gid].title
    assert set(results(app, "markup")["Group"]) == {f"{gid}: {title}"}
    app.button(key="search-all-markup").click().run()
    rendered = [
        m.value
        for m in (
            *app.markdown,
            *app.caption,
            *app.subheader,
            *app.title,
            *app.error,
            *app.success,
            *app.info,
        )
    ]
    for payload in (MARKUP, "x</b>", "**y**", *XSS):
        assert all(payload not in r for r in rendered)
    move(app, NEW, "markup")
    assert [p.answer_ids for _, p in logged(db, "markup")] == [tuple(shown["Answer id"])]
