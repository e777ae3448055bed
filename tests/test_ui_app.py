"""The grading UI through Streamlit's AppTest, against a real SQLite store in tmp_path.

A template store (the q1 sample question, grouped with the real encoder, and a question of
XSS payloads) is built once per session and copied for every test, so each test edits its
own database and checks what the store logged: the UI must call the same store and edit
functions as the command line, attributed to the signed-in user.
"""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from streamlit import dataframe_util
from streamlit.testing.v1 import AppTest

from grouper.answers import Answer, Question, load_answers, parse_answers
from grouper.edits import (
    NEW,
    Confirm,
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
)
from grouper.intake import import_questions
from grouper.review import grades_in_use, preset_key
from grouper.store import Store

REPO = Path(__file__).resolve().parents[1]
APP = REPO / "ui" / "app.py"

# Student answers that would do something if any of them were interpreted as HTML,
# Markdown, LaTeX or an icon directive. Each is written by three students, so each forms
# its own group titled with the payload. (tests/e2e/test_ui_browser.py has the same list.)
XSS = (
    "<script>window.__xss = 1</script>",
    '<img src=x onerror="window.__xss = 2">',
    "[x](javascript:alert(1))",
    "![](http://example.invalid/pixel.png)",
    "$x$",
    ":material/home:",
)


def xss_question() -> Question:
    rows = [
        {"answer_id": f"x{i:02d}", "question_id": "xss", "answer": text} for i, text in enumerate(XSS * 3)
    ]
    out = io.StringIO()
    writer = csv.DictWriter(out, ["answer_id", "question_id", "answer"])
    writer.writeheader()
    writer.writerows(rows)
    return parse_answers(out.getvalue().encode(), "xss.csv")[0]


@pytest.fixture(scope="session")
def template_db(tmp_path_factory, encoder) -> Path:
    """A store with q1 (185 sample answers) and the XSS question, grouped, no edits."""
    path = tmp_path_factory.mktemp("ui-template") / "template.sqlite"
    q1 = load_answers(REPO / "sample_data" / "q1_capital_australia.csv")[0]
    with Store.open(path) as store:
        # As `grouper import` does it; the embeddings land in the store's cache, where the
        # app finds them instead of embedding again.
        import_questions(store, [q1, xss_question()], encoder)
    return path


@pytest.fixture
def db(template_db, tmp_path, monkeypatch) -> Path:
    """This test's own copy of the template store, named to the app by GROUPER_DB."""
    path = tmp_path / "grouper.sqlite"
    for source in template_db.parent.glob(template_db.name + "*"):
        shutil.copy(source, tmp_path / source.name.replace(template_db.name, path.name))
    monkeypatch.setenv("GROUPER_DB", str(path))
    monkeypatch.delenv("GROUPER_STAFF_FILE", raising=False)
    monkeypatch.setenv("GROUPER_MODELS_DIR", str(tmp_path / "models"))  # a registry of its own
    return path


PREVIEW = ("Question", "Text", "Answers", "Blank", "Reference answers", "Maximum score", "Already in the store")


def new_app() -> AppTest:
    # As `grouper ui` serves it: on this machine only (unset, the app takes it as reachable).
    from streamlit import config

    config.set_option("server.address", "127.0.0.1")
    return AppTest.from_file(str(APP), default_timeout=120)


def sign_in(at: AppTest, name: str = "Ada") -> AppTest:
    at.run()
    at.text_input(key="sign-in-name").input(name)
    at.button[0].click().run()
    assert not at.exception, at.exception
    return at


@pytest.fixture
def app(db) -> AppTest:
    """The app with Ada signed in (localhost mode: an instructor), on the Groups page."""
    return sign_in(new_app())


def texts(at: AppTest) -> list[str]:
    return [t.value for t in at.text]


def successes(at: AppTest) -> list[str]:
    return [s.value for s in at.success]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def logged(db: Path, question_id: str = "q1") -> list[tuple[str, object]]:
    with Store.open(db) as store:
        return [(e.author, e.payload) for e in store.edits(question_id)]


def table(at: AppTest, *columns: str):
    """The first dataframe (as pandas) with exactly these columns: AppTest keeps the key of
    selectable dataframes only."""
    for frame in at.dataframe:
        value = frame.value
        if list(value.columns) == list(columns):
            return value
    raise AssertionError(f"no table with columns {columns}")


def select_rows(at: AppTest, key: str, rows: list[int]) -> AppTest:
    """Tick rows of a dataframe, as a click on their checkboxes does."""
    at.session_state[key] = {"selection": {"rows": rows, "columns": [], "cells": []}}
    return at.run()


def open_group(at: AppTest, gid: int) -> AppTest:
    order = list(at.dataframe(key="groups-q1-v" + str(version(at))).value["Group"])
    return select_rows(at, f"groups-q1-v{version(at)}", [order.index(gid)])


def choose_action(at: AppTest, action: str) -> AppTest:
    """Pick Move / Split / Merge / Rename / Delete above the open group."""
    at.segmented_control(key=f"action-{at.session_state['question_id']}").set_value(action)
    return at.run()


def version(at: AppTest) -> int:
    line = next(t for t in texts(at) if t.startswith(tuple("0123456789")) and "Version" in t)
    return int(line.rsplit("Version", 1)[1].strip(" ."))


def members_key(at: AppTest, gid: int) -> str:
    return f"members-q1-{gid}-v{version(at)}"


def score_field(at: AppTest, gid: int = 1):
    """The group grade's score field, keyed by the version it was drawn at."""
    return at.number_input(key=f"score-q1-{gid}-v{version(at)}")


def comment_field(at: AppTest, gid: int = 1):
    return at.text_input(key=f"comment-q1-{gid}-v{version(at)}")


def rerun_fragments_only(at: AppTest, monkeypatch) -> None:
    """From now on every run of ``at`` reruns only the page's fragments, as a click inside one
    does in a browser (AppTest reruns the whole script). Streamlit internals: the fake is only
    of how the rerun is asked for."""
    import streamlit.testing.v1.local_script_runner as runner
    from streamlit.runtime.scriptrunner_utils.script_requests import RerunData

    fragments = list(at._fragment_storage._fragments)
    assert fragments, "the page has no fragment"
    monkeypatch.setattr(runner, "RerunData", lambda **kw: RerunData(**kw, fragment_id_queue=fragments))


def max_score_field(at: AppTest):
    """The maximum score's field, keyed by the maximum's version."""
    (key,) = [w.key for w in at.number_input if w.key and w.key.startswith("max-score-q1-v")]
    return at.number_input(key=key)


def references_box(at: AppTest):
    """The reference answers' box, keyed by the references it shows."""
    (key,) = [w.key for w in at.text_area if w.key and w.key.startswith("references-q1-")]
    return at.text_area(key=key)


def shown_members(at: AppTest, gid: int) -> list[str]:
    return list(at.dataframe(key=members_key(at, gid)).value["Answer id"])


def state(db: Path, question_id: str = "q1"):
    with Store.open(db) as store:
        return store.state(question_id)


# --------------------------------------------------------------------------- sign-in and access


def test_nothing_is_shown_before_signing_in(db):
    at = new_app().run()
    assert [t.value for t in at.title] == ["grouper"]
    assert len(at.dataframe) == 0
    at.text_input(key="sign-in-name").input("   ")
    at.button[0].click().run()
    assert errors(at) == ["That name cannot be used."]
    assert "type your name: every edit is recorded with it" in texts(at)
    assert len(at.dataframe) == 0


def test_signed_in_name_is_shown_and_recorded_on_edits(app, db):
    assert "Signed in as Ada (instructor)" in texts(app)
    app.button(key="confirm-q1-1").click().run()
    assert logged(db) == [("Ada", Confirm(1))]


def _oidc_app(tmp_path: Path, monkeypatch, user: dict) -> AppTest:
    staff = tmp_path / "staff.toml"
    staff.write_text('[staff]\n"ada@example.edu" = "instructor"\n"ben@example.edu" = "ta"\n')
    monkeypatch.setenv("GROUPER_STAFF_FILE", str(staff))
    at = new_app()
    at.secrets["auth"] = {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a-test-cookie-secret-of-some-length",
        "client_id": "grouper",
        "client_secret": "secret",
        "server_metadata_url": "http://127.0.0.1:9/.well-known/openid-configuration",
    }
    at.user = user
    return at.run()


def test_oidc_asks_to_sign_in(db, tmp_path, monkeypatch):
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": False})
    assert [b.label for b in at.button] == ["Sign in"]
    assert len(at.dataframe) == 0


def test_oidc_user_not_on_the_staff_list_is_refused(db, tmp_path, monkeypatch):
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "eve@example.edu"})
    assert errors(at) == ["You cannot use this app."]
    assert "eve@example.edu is not on the staff list of this course" in texts(at)
    assert len(at.dataframe) == 0


def test_someone_removed_from_the_staff_list_cannot_act_on_the_page_still_open(db, tmp_path, monkeypatch):
    import ui_common

    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ada@example.edu", "name": "Ada"})
    (tmp_path / "staff.toml").write_text('[staff]\n"ben@example.edu" = "ta"\n')
    ui_common._staff_list.clear()  # as after the list's minute in the cache
    # A click inside the Groups workspace reruns only it: no sign-in check of the entry script.
    rerun_fragments_only(at, monkeypatch)
    at.button(key="confirm-q1-1").click().run()
    assert errors(at)[0] == "Nothing was saved: you are not signed in (any more). Reload the page."
    assert logged(db) == []


def test_someone_removed_from_the_staff_list_no_longer_reads_the_question(db, tmp_path, monkeypatch):
    import ui_common

    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ben@example.edu", "name": "Ben"})
    (tmp_path / "staff.toml").write_text('[staff]\n"ada@example.edu" = "instructor"\n')
    ui_common._staff_list.clear()
    with Store.open(db) as store:
        store.append("q1", "Ada", None, Rename(2, "SECRET TITLE"))
    rerun_fragments_only(at, monkeypatch)  # "Next group": a rerun of the workspace alone
    at.button(key="next-group").click().run()
    assert errors(at) == ["You are not signed in (any more), or your role no longer allows this page. Reload the page."]
    assert "SECRET TITLE" not in texts(at) and len(at.dataframe) == 0


def test_someone_removed_from_the_staff_list_downloads_nothing_from_the_export_page_still_open(db, tmp_path, monkeypatch):
    """A download is built when the browser asks for it, with no page run: the deferred data
    Streamlit keeps (captured here where the button hands it over; Streamlit internals) must
    check the staff list again."""
    import streamlit.elements.widgets.button as button

    from grouper.access import AccessDenied

    built = {}
    real = button.marshall_file

    def keep(coordinates, data, proto, mimetype, file_name=None, **kwargs):
        if callable(data):
            built[file_name] = data
        return real(coordinates, data, proto, mimetype, file_name, **kwargs)

    monkeypatch.setattr(button, "marshall_file", keep)
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ada@example.edu", "name": "Ada"})
    at.switch_page("views/export.py").run()
    assert not at.exception and "grades-q1.csv" in built
    assert built["grades-q1.csv"]().startswith(b"question_id,answer_id")  # while she may
    (tmp_path / "staff.toml").write_text('[staff]\n"ada@example.edu" = "ta"\n')
    for name, make in built.items():
        with pytest.raises(AccessDenied, match="cannot export any more"):
            make()
    (tmp_path / "staff.toml").write_text('[staff]\n"ben@example.edu" = "ta"\n')
    with pytest.raises(AccessDenied):
        built["grades-q1.csv"]()


def test_an_instructor_made_a_ta_cannot_set_the_maximum_from_the_page_still_open(db, tmp_path, monkeypatch):
    import ui_common

    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ada@example.edu", "name": "Ada"})
    (tmp_path / "staff.toml").write_text('[staff]\n"ada@example.edu" = "ta"\n')
    ui_common._staff_list.clear()
    max_score_field(at).set_value(5.0)
    at.button(key="max-score-set-q1").click().run()  # the callback runs before the page's checks
    assert errors(at) == ["Nothing was saved: your role (ta) cannot set max score; ask an instructor."]
    assert logged(db) == []


def test_oidc_ta_edits_as_their_address_but_cannot_import_or_export(db, tmp_path, monkeypatch):
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ben@example.edu", "name": "Ben"})
    assert "Signed in as Ben (ta)" in texts(at)
    at.button(key="confirm-q1-1").click().run()
    assert logged(db) == [("ben@example.edu", Confirm(1))]
    for page in ("views/import_answers.py", "views/export.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)


def test_oidc_instructor_reaches_import(db, tmp_path, monkeypatch):
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "Ada@Example.edu"})
    at.switch_page("views/import_answers.py").run()
    assert [t.value for t in at.title] == ["Import answers"]


# --------------------------------------------------------------------------- import


def _upload(at: AppTest, name: str, content: bytes) -> AppTest:
    at.switch_page("views/import_answers.py").run()
    at.file_uploader(key="import-file").set_value((name, content, "text/csv"))
    return at.run()


def test_import_shows_problems_with_file_row_and_column_and_imports_nothing(app, db):
    bad = b"answer_id,answer,score\na1,Canberra,1\na1,Sydney,0\na3,Perth,lots\n"
    _upload(app, "exam.csv", bad)
    problems = table(app, "File", "Row", "Column", "Problem")
    assert problems.to_dict("records") == [
        {
            "File": "exam.csv",
            "Row": 3,
            "Column": "answer_id",
            "Problem": "duplicate answer id 'a1' (first seen in row 2)",
        },
        {"File": "exam.csv", "Row": 4, "Column": "score", "Problem": "score 'lots' is not a number"},
    ]
    assert errors(app) == ["Nothing was imported: fix these problems in the file and upload it again."]
    assert [b.key for b in app.button if b.key == "import-go"] == []
    with Store.open(db) as store:
        assert store.question_ids() == ["q1", "xss"]


def test_import_of_a_file_with_a_header_and_no_answers_says_so(app, db):
    _upload(app, "empty.csv", b"answer_id,answer\n")
    assert not app.exception, app.exception
    problems = table(app, "File", "Row", "Column", "Problem")
    assert list(problems["File"]) == ["empty.csv"]
    assert "holds no answers" in problems["Problem"][0]
    assert errors(app) == ["Nothing was imported: fix these problems in the file and upload it again."]


def test_import_previews_then_groups(app, db):
    answers = ["Canberra"] * 3 + ["Sydney"] * 3 + [""]
    rows = "".join(f"s{i},{text}\n" for i, text in enumerate(answers))
    _upload(app, "geo.csv", ("student_id,answer\n" + rows).encode())
    preview = table(app, *PREVIEW)
    assert preview.to_dict("records") == [
        {
            "Question": "geo", "Text": "", "Answers": 7, "Blank": 1, "Reference answers": 0,
            "Maximum score": "", "Already in the store": "",
        }
    ]
    assert [i.value for i in app.info][0].startswith("1 question(s) have no reference answer")
    assert list(table(app, "Answer id", "Student", "Answer")["Answer"]) == answers
    app.button(key="import-go").click().run()
    assert successes(app) == ["Imported and grouped 1 question(s)."]
    with Store.open(db) as store:
        assert store.question_ids() == ["q1", "xss", "geo"]
        groups = store.state("geo").groups
    assert sorted(sorted(g.members) for g in groups.values()) == [
        ["s0", "s1", "s2"],
        ["s3", "s4", "s5"],
        ["s6"],
    ]
    # The page moves on to the imported question.
    assert app.session_state["question_id"] == "geo"


def test_import_gives_the_maximum_typed_to_questions_whose_file_gives_none(app, db):
    data = b"question_id,answer_id,answer,max_score,score\np,1,x,3,\np,2,y,,\nr,3,z,,2\n"
    _upload(app, "two.csv", data)
    assert list(table(app, *PREVIEW)["Maximum score"]) == ["3", ""]
    app.number_input(key="import-max-score").set_value(1.0)
    app.button(key="import-go").click().run()
    assert errors(app) == ["Nothing was imported."]
    assert any("question r, answer 3: score 2 is outside 0 to the maximum score typed 1" in t for t in texts(app)), texts(app)
    assert "r" not in ui_question_ids(db)
    app.number_input(key="import-max-score").set_value(2.0)  # p keeps its file's 3
    app.button(key="import-go").click().run()
    assert successes(app) == ["Imported and grouped 2 question(s)."]
    assert (state(db, "p").max_score, state(db, "r").max_score) == (3.0, 2.0)
    assert logged(db, "r") == [("Ada", SetMaxScore(2.0))]


def test_import_takes_several_files_at_once(app, db):
    app.switch_page("views/import_answers.py").run()
    app.file_uploader(key="import-file").set_value(
        [("geo.csv", b"student_id,answer\ns1,Canberra\ns2,Sydney\n", "text/csv"),
         ("phys.csv", b"student_id,answer\ns1,9.8 m/s2\ns2,10\ns3,9.8\n", "text/csv")]
    )
    app.run()
    assert list(table(app, *PREVIEW)["Question"]) == ["geo", "phys"]
    app.button(key="import-go").click().run()
    assert successes(app) == ["Imported and grouped 2 question(s)."]
    assert ui_question_ids(db) == ["q1", "xss", "geo", "phys"]


def test_a_question_in_two_uploaded_files_is_refused(app, db):
    app.switch_page("views/import_answers.py").run()
    app.file_uploader(key="import-file").set_value(
        [("a.csv", b"question_id,answer_id,answer\ngeo,1,Canberra\n", "text/csv"),
         ("b.csv", b"question_id,answer_id,answer\ngeo,2,Sydney\n", "text/csv")]
    )
    app.run()
    assert errors(app) == ["Nothing was imported: fix these problems in the file and upload it again."]
    problems = table(app, "File", "Row", "Column", "Problem")
    assert problems.to_dict("records") == [
        {"File": "b.csv", "Row": "", "Column": "question_id", "Problem": "question 'geo' is also in a.csv; give each question one file"}
    ]
    assert [b.key for b in app.button if b.key == "import-go"] == []


def test_import_files_the_questions_under_a_course_and_exam(app, db):
    _upload(app, "geo.csv", b"student_id,answer\ns1,Canberra\ns2,Sydney\ns3,Canberra\n")
    app.text_input(key="import-exam").input("Midterm")
    app.button(key="import-go").click().run()
    assert errors(app) == ["Nothing was imported."]
    assert any("an exam is filed under a course" in t for t in texts(app)), texts(app)
    assert "geo" not in ui_question_ids(db)
    app.text_input(key="import-course").input("Geography  ")
    app.button(key="import-go").click().run()
    assert successes(app) == ["Imported and grouped 1 question(s)."]
    with Store.open(db) as store:
        filed = {i.question_id: (i.course, i.exam) for i in store.questions()}
    assert filed == {"q1": (None, None), "xss": (None, None), "geo": ("Geography", "Midterm")}
    # The picker says where each question is filed; the export page offers the course's grades.
    app.switch_page("views/groups.py").run()
    picker = app.selectbox(key="question-picker")
    assert picker.options == ["q1", "xss", "geo (Geography, Midterm)"] and picker.value == "geo"
    _upload(app, "geo2.csv", b"student_id,answer\ns1,Perth\ns2,Canberra\n")
    assert "Courses in the store: Geography" in texts(app)
    app.text_input(key="import-course").input("geography")
    app.button(key="import-go").click().run()
    with Store.open(db) as store:
        assert {i.question_id: i.course for i in store.questions()}["geo2"] == "Geography"
    app.switch_page("views/export.py").run()
    scope = app.button_group(key="export-scope")
    assert scope.options == ["This question", "This course", "All questions"]
    scope.set_value("This course").run()
    assert "5 answers, 0 graded, 5 not graded yet (empty score cells; a by-student total counts them as 0)." in texts(app)
    labels = [b.proto.label for b in app.get("download_button")]
    assert "Grades by student (CSV, 3 students)" in labels


def test_the_export_page_offers_no_course_scope_for_a_question_without_one(app, db):
    app.switch_page("views/export.py").run()
    assert app.button_group(key="export-scope").options == ["This question", "All questions"]


def ui_question_ids(db: Path) -> list[str]:
    with Store.open(db) as store:
        return store.question_ids()


def test_import_reports_progress_per_question_then_saves(app, db):
    """The function behind the page's progress bar: every question, then the save."""
    import ui_common  # importable once the app has run: it puts ui/ on sys.path

    seen: list[tuple[float, str]] = []
    questions = parse_answers(b"answer_id,question_id,answer\na,p,x\nb,p,x\nc,r,y\n", "two.csv")
    assert ui_common.import_and_group(questions, lambda f, what: seen.append((f, what))) == ["p", "r"]
    assert seen == [
        (0.0, "Embedding question p: answer 1 of 2"),
        (0.6, "Embedding question r: answer 1 of 1"),
        (0.9, "Grouping and saving 2 question(s)"),
        (1.0, "Done"),
    ]
    with Store.open(db) as store:
        assert store.question_ids() == ["q1", "xss", "p", "r"]


def test_questions_already_in_the_store_are_not_imported_twice(app, db):
    _upload(app, "q1.csv", (REPO / "sample_data" / "q1_capital_australia.csv").read_bytes())
    assert table(app, *PREVIEW)["Already in the store"].tolist() == ["yes"]
    assert app.button(key="import-go").disabled


def test_late_answers_to_a_stored_question_are_added_from_the_import_page(app, db):
    import csv as csv_module

    rows = list(csv_module.DictReader(io.StringIO((REPO / "sample_data" / "q1_capital_australia.csv").read_text())))
    extra = [{**rows[0], "answer_id": "q1-late-1", "answer": "Canberra"}, {**rows[0], "answer_id": "q1-late-2", "answer": "<b>Perth</b>"}]
    out = io.StringIO()
    writer = csv_module.DictWriter(out, list(rows[0]))
    writer.writeheader()
    writer.writerows(rows + extra)
    _upload(app, "q1.csv", out.getvalue().encode())
    assert app.button(key="import-go").disabled  # the question itself is not imported again
    app.button(key="import-late").click().run()
    assert not app.exception, app.exception
    (message,) = successes(app)
    assert message.startswith("Added 2 late answer(s):")
    assert logged(db)[-1][0] == "Ada"
    with Store.open(db) as store:
        now = store.state("q1")
        canberra = {now.location[a.answer_id] for a in store.answers("q1") if a.text == "Canberra" and a.answer_id != "q1-late-1"}
    assert {"q1-late-1", "q1-late-2"} <= set(now.positions)
    assert {now.location["q1-late-1"]} == canberra  # an exact repeat joins its copies' group
    placed = sum(now.location[a] is not None for a in ("q1-late-1", "q1-late-2"))
    assert message.startswith(f"Added 2 late answer(s): {placed} in groups nobody has reviewed")
    # the pages pick them up at once (answer caches are keyed by the answer count)
    import ui_common

    assert {"q1-late-1", "q1-late-2"} <= set(ui_common.answer_texts("q1"))
    assert ui_common.answer_texts("q1")["q1-late-2"] == "<b>Perth</b>"


def test_the_import_page_says_which_late_answers_are_from_students_who_already_answered(app, db):
    with Store.open(db) as store:
        first = next(a for a in store.answers("q1") if a.student_id)
    content = f"question_id,answer_id,student_id,answer\nq1,late-1,{first.student_id},Canberra again\nq1,late-2,new-student,Perth\n"
    _upload(app, "q1-late.csv", content.encode())
    assert any("1 of these students already have an answer to the question" in w.value for w in app.warning)
    assert f"Question q1: {first.student_id}: {first.answer_id}, late-1" in texts(app)


def test_the_import_page_says_answers_were_longer_than_the_model_reads(app, db):
    long = "The current flows because the circuit is closed. " * 40  # far past 256 tokens
    rows = "".join(f"s{i},{long if i < 2 else 'Canberra'}\n" for i in range(6))
    _upload(app, "longq.csv", ("student_id,answer\n" + rows).encode())
    app.button(key="import-go").click().run()
    assert any(w.value.startswith("Question longq: 2 answer(s) are longer than the model reads") for w in app.warning)
    assert "s0, s1" in texts(app)


def test_the_import_page_reads_a_named_encoding_and_says_when_problems_were_cut_short(app, db):
    _upload(app, "win.csv", "answer_id,answer\na1,Caf\u00e9\n".encode("cp1252"))
    (problem,) = table(app, "File", "Row", "Column", "Problem")["Problem"]
    assert "not valid UTF-8" in problem and "'File encoding' on the import page" in problem
    app.selectbox(key="import-encoding").set_value("cp1252").run()
    assert table(app, *PREVIEW)["Answers"].tolist() == [1]
    bad = "answer_id,answer,score\n" + "".join(f"a{i},x,lots\n" for i in range(30))
    _upload(app, "bad.csv", bad.encode())
    assert "Reading stopped after these: the file may have more problems of the same kind." in texts(app)


def test_sample_data_can_be_picked(app):
    app.switch_page("views/import_answers.py").run()
    app.segmented_control(key="import-source").set_value("Sample data").run()
    assert [p.name for p in app.multiselect(key="import-samples").value] == [
        "q1_capital_australia.csv",
        "q2_photosynthesis.csv",
        "q3_ball_drop.csv",
    ]
    assert table(app, *PREVIEW)["Question"].tolist() == ["q1", "q2", "q3"]


# --------------------------------------------------------------------------- groups page


def test_groups_are_listed_with_title_size_status_grade_and_confidence(app, db):
    table = app.dataframe(key="groups-q1-v0").value
    assert list(table.columns) == ["Group", "Title", "Size", "Status", "Grade", "Confidence"]
    current = state(db)
    assert sorted(table["Group"]) == sorted(current.groups)
    first = table.iloc[0]
    assert (first["Title"], first["Size"]) == (
        current.groups[first["Group"]].title,
        len(current.groups[first["Group"]].members),
    )
    assert set(table["Confidence"]) <= {"●●●", "●●○", "●○○"}
    assert set(table["Status"]) == {""} and set(table["Grade"]) == {""}


def test_members_are_listed_least_typical_first(app, db):
    shown = app.dataframe(key=members_key(app, 1)).value
    assert sorted(shown["Answer id"]) == sorted(state(db).groups[1].members)
    assert list(shown["Typicality"]) == sorted(shown["Typicality"])


def test_next_and_previous_group(app):
    order = list(app.dataframe(key="groups-q1-v0").value["Group"])
    app.button(key="next-group").click().run()
    assert app.session_state["open-q1"] == order[1]
    app.button(key="prev-group").click().run()
    app.button(key="prev-group").click().run()
    assert app.session_state["open-q1"] == order[-1]


def test_opening_a_group_from_the_list(app):
    open_group(app, 3)
    assert app.session_state["open-q1"] == 3
    assert [s.value for s in app.subheader][0] == "Group 3"


def test_move_selected_members_to_ungrouped(app, db):
    chosen = shown_members(app, 1)[:2]
    select_rows(app, members_key(app, 1), [0, 1])
    assert "2 of" in next(t for t in texts(app) if "selected" in t)
    app.button(key="move-q1-1").click().run()
    assert successes(app) == ["Moved 2 answer(s) to the ungrouped answers."]
    assert logged(db) == [("Ada", Move(tuple(chosen), None))]
    assert set(chosen) <= set(state(db).ungrouped)


def test_move_selected_members_to_another_group(app, db):
    chosen = shown_members(app, 1)[:1]
    select_rows(app, members_key(app, 1), [0])
    app.selectbox(key="move-to-q1-1").set_value(2)
    app.button(key="move-q1-1").click().run()
    assert logged(db) == [("Ada", Move(tuple(chosen), 2))]
    assert state(db).group_of(chosen[0]) == 2


def test_a_move_to_a_group_merged_away_meanwhile_goes_nowhere(app, db):
    target = max(state(db).groups)
    app.selectbox(key="move-to-q1-1").set_value(target).run()
    with Store.open(db) as store:  # Ben merges the chosen group into another
        store.append("q1", "Ben", 0, Merge(2, (target,)))
    app.run()  # any click: the box is back at "Ungrouped"
    select_rows(app, members_key(app, 1), [0, 1])
    app.button(key="move-q1-1").click().run()
    assert errors(app) == [f"Group {target}, where you chose to move them, is gone (deleted or merged): choose again."]
    assert logged(db) == [("Ben", Merge(2, (target,)))]


def test_a_grade_as_before_is_the_grade_chosen_when_the_list_is_re_sorted(app, db):
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, GradeGroup(2, 0.0, "wrong city"))
        store.append("q1", "Ben", 1, GradeGroup(4, 1.0, "right"))
    app.run()
    right = next(g for g in grades_in_use(state(db)) if g.comment == "right")
    app.selectbox(key="grade-again-choice-q1-1").set_value(preset_key(right)).run()
    with Store.open(db) as store:  # "wrong city" is now the most used: the list re-sorts
        store.append("q1", "Ben", 2, GradeGroup(5, 0.0, "wrong city"))
        store.append("q1", "Ben", 3, GradeGroup(7, 0.0, "wrong city"))
    select_rows(app, members_key(app, 1), [0])
    app.button(key="grade-again-q1-1").click().run()
    assert logged(db)[-1] == ("Ada", GradeGroup(1, 1.0, "right"))  # not the list's new first


def test_the_maximum_and_the_references_show_another_instructors_change_and_never_put_the_old_back(app, db):
    from grouper.edits import SetReferences

    max_score_field(app).set_value(10.0)
    app.button(key="max-score-set-q1").click().run()
    with Store.open(db) as store:
        store.append("q1", "Ben", 1, SetMaxScore(20.0))
        store.append("q1", "Ben", 2, SetReferences(("Canberra", "The capital is Canberra")))
    app.run()
    assert max_score_field(app).value == 20.0
    assert references_box(app).value == "Canberra\nThe capital is Canberra"
    references_box(app).input("Canberra\nThe capital is Canberra\nCanberra, ACT")
    app.button(key="references-save-q1").click().run()
    with Store.open(db) as store:
        assert store.reference_answers("q1") == ("Canberra", "The capital is Canberra", "Canberra, ACT")
    assert state(db).max_score == 20.0


def test_late_answers_in_the_open_group_are_listed_without_leaving_the_page(app, db, monkeypatch):
    with Store.open(db) as store:
        store.add_answers("q1", [Answer("late-1", "q1", "Canberra (late)")], [1], "Ben")
    rerun_fragments_only(app, monkeypatch)
    app.run()
    assert not app.exception, app.exception
    assert "late-1" in shown_members(app, 1)


def test_a_move_into_a_graded_group_says_which_grades_it_changed(app, db):
    """The moved answer takes the target group's grade: the grader is told, never silently."""
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, GradeGroup(1, 1.0))
        store.append("q1", "Ben", 1, GradeGroup(2, 0.0))
    app.run()  # the page now shows Ben's grades
    moved = shown_members(app, 1)[0]
    select_rows(app, members_key(app, 1), [0])
    app.selectbox(key="move-to-q1-1").set_value(2)
    app.button(key="move-q1-1").click().run()
    assert successes(app) == ["Moved 1 answer(s) to group 2."]
    said = [i.value for i in app.info]
    assert said[0] == "1 answer changed grade: from 1 to 0."
    # A Canberra among the Sydneys is graded unlike the Canberras left in group 1: said too.
    assert said[1:] == ["After this edit, 1 answer(s) are graded unlike most of their identical answers; "
                        "the Check grades page lists them first."]
    assert moved in texts(app)
    assert state(db).grade_of(moved).score == 0.0


def test_move_without_a_selection_is_explained_not_logged(app, db):
    app.button(key="move-q1-1").click().run()
    assert errors(app) == ["Select the answers to move first (tick their rows)."]
    assert logged(db) == []


def test_merge(app, db):
    choose_action(app, "Merge")
    app.multiselect(key="merge-q1-1").set_value([2, 3])
    app.button(key="merge-btn-q1-1").click().run()
    assert successes(app) == ["Merged group(s) 2, 3 into group 1."]
    assert logged(db) == [("Ada", Merge(1, (2, 3)))]
    assert 2 not in state(db).groups


def test_split_automatically(app, db):
    members = state(db).groups[1].members
    choose_action(app, "Split")
    app.number_input(key="split-k-q1-1").set_value(2)
    app.button(key="split-auto-q1-1").click().run()
    ((author, payload),) = logged(db)
    assert (
        author == "Ada" and isinstance(payload, Split) and payload.group_id == 1 and len(payload.parts) == 2
    )
    assert sorted(a for part in payload.parts for a in part) == sorted(members)
    assert successes(app) == ["Group 1 split into 2 groups."]


def test_split_selected_members_out(app, db):
    chosen = shown_members(app, 1)[:3]
    select_rows(app, members_key(app, 1), [0, 1, 2])
    choose_action(app, "Split")
    app.button(key="split-selected-q1-1").click().run()
    assert logged(db) == [("Ada", Move(tuple(chosen), NEW))]
    new = state(db)
    assert {new.group_of(a) for a in chosen} == {new.next_group_id - 1}


def test_rename_keeps_the_title_as_typed(app, db):
    choose_action(app, "Rename")
    app.text_input(key="rename-q1-1").input("Canberra **and** <b>friends</b>")
    app.button(key="rename-btn-q1-1").click().run()
    assert logged(db) == [("Ada", Rename(1, "Canberra **and** <b>friends</b>"))]
    assert "Canberra **and** <b>friends</b>" in texts(app)
    assert all("friends" not in m.value for m in app.markdown)


def test_delete_needs_the_box_ticked(app, db):
    choose_action(app, "Delete")
    app.button(key="delete-q1-1").click().run()
    assert logged(db) == []
    app.checkbox(key="delete-sure-q1-1").check()
    app.button(key="delete-q1-1").click().run()
    assert [p.kind for _, p in logged(db)] == ["delete"]
    assert 1 not in state(db).groups


def test_grade_previews_exactly_the_receiving_answers(app, db):
    members = state(db).groups[1].members
    score_field(app).set_value(1.0)
    comment_field(app).input("Canberra is right")
    preview = table(app, "Answer id", "Answer")
    assert list(preview["Answer id"]) == list(members)
    app.button(key="grade-q1-1").click().run()
    assert logged(db) == [("Ada", GradeGroup(1, 1.0, "Canberra is right"))]
    assert app.dataframe(key="groups-q1-v1").value.set_index("Group").loc[1, "Grade"] == "1"


def test_selected_members_get_their_own_grade_and_lose_it_again(app, db):
    """Partial credit for two members without moving them out: one override each, shown in
    the member table and kept out of the group grade's preview."""
    chosen = shown_members(app, 1)[:2]
    select_rows(app, members_key(app, 1), [0, 1])
    app.number_input(key="own-score-q1-1").set_value(0.5)
    app.text_input(key="own-comment-q1-1").input("half right")
    app.button(key="own-grade-q1-1").click().run()
    assert logged(db) == [("Ada", GradeAnswer(a, 0.5, "half right")) for a in chosen]
    assert successes(app) == ["2 answers given their own grade 0.5."]
    members = app.dataframe(key=members_key(app, 1)).value.set_index("Answer id")
    assert [members.loc[a, "Own grade"] for a in chosen] == ["0.5", "0.5"]
    score_field(app).set_value(1.0)
    preview = table(app, "Answer id", "Answer")
    assert not set(chosen) & set(preview["Answer id"])
    select_rows(app, members_key(app, 1), [list(members.index).index(a) for a in chosen])
    app.button(key="own-clear-q1-1").click().run()
    assert logged(db)[2:] == [("Ada", GradeAnswer(a, None)) for a in chosen]
    assert not set(chosen) & set(state(db).overrides)


def test_own_grade_needs_a_selection_and_a_score(app, db):
    app.number_input(key="own-score-q1-1").set_value(1.0)
    app.button(key="own-grade-q1-1").click().run()
    assert errors(app) == ["Select the answers to grade first (tick their rows)."]
    select_rows(app, members_key(app, 1), [0])
    app.button(key="own-clear-q1-1").click().run()
    assert errors(app) == ["None of the selected answers has its own grade."]
    assert logged(db) == []


def test_an_instructor_sets_the_maximum_score_and_grades_above_it_are_refused(app, db):
    max_score_field(app).set_value(2.0)
    app.button(key="max-score-set-q1").click().run()
    assert logged(db) == [("Ada", SetMaxScore(2.0))]
    assert successes(app) == ["Question q1 is now out of 2 points."]
    assert any(t.startswith("Out of 2 points") for t in texts(app))
    assert score_field(app).max == 2.0 and score_field(app).min == 0.0
    # The widget bounds what a browser can type; the store refuses what gets past it.
    with Store.open(db) as store:
        with pytest.raises(EditRefused, match="above the question's maximum score 2"):
            store.append("q1", "Ben", 1, GradeGroup(1, 3.0))
    score_field(app).set_value(2.0)
    app.button(key="grade-q1-1").click().run()
    assert logged(db)[-1] == ("Ada", GradeGroup(1, 2.0))
    max_score_field(app).set_value(1.0)
    app.button(key="max-score-set-q1").click().run()
    assert errors(app) == ["Your edit was not saved."]
    assert any("group 1 is graded 2, above the new maximum score 1" in t for t in texts(app))
    assert state(db).max_score == 2.0


def test_tas_grade_within_the_maximum_but_cannot_change_it(db, monkeypatch, tmp_path):
    with Store.open(db) as store:
        store.append("q1", "Ada", 0, SetMaxScore(4.0))
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ben@example.edu", "name": "Ben"})
    assert not at.exception, at.exception
    assert [b for b in at.button if b.key == "max-score-set-q1"] == []
    assert any(t.startswith("Out of 4 points") for t in texts(at))
    assert score_field(at).max == 4.0


def test_a_grade_given_before_is_given_again_in_one_click(app, db):
    score_field(app).set_value(1.0)
    comment_field(app).input("Canberra is right")
    app.button(key="grade-q1-1").click().run()
    open_group(app, 2)
    choice = app.selectbox(key="grade-again-choice-q1-2")
    assert choice.options == ["1 · Canberra is right (1×)"]
    choice.set_value(preset_key(grades_in_use(state(db))[0])).run()
    app.button(key="grade-again-q1-2").click().run()
    assert logged(db) == [("Ada", GradeGroup(1, 1.0, "Canberra is right")), ("Ada", GradeGroup(2, 1.0, "Canberra is right"))]
    assert successes(app) == ["Group 2 graded 1."]


def test_the_grade_form_shows_another_graders_new_grade_and_never_puts_the_old_one_back(app, db):
    score_field(app).set_value(2.0)
    comment_field(app).input("first grade")
    app.button(key="grade-q1-1").click().run()
    with Store.open(db) as store:  # Ben, in another browser, regrades the group
        store.append("q1", "Ben", 1, GradeGroup(1, 0.0, "by ben"))
    app.run()
    assert score_field(app).value == 0.0 and comment_field(app).value == "by ben"
    comment_field(app).input("by ben, checked by ada")  # Ada edits the comment only
    app.button(key="grade-q1-1").click().run()
    assert state(db).groups[1].grade.score == 0.0
    assert state(db).groups[1].grade.comment == "by ben, checked by ada"


def test_two_grades_given_before_that_read_alike_are_told_apart(app, db):
    shared = "Says Canberra, but the reason given about Parliament House is "
    with Store.open(db) as store:
        store.append("q1", "Ada", 0, GradeGroup(1, 1.0, shared + "see part (a)"))
        store.append("q1", "Ada", 1, GradeGroup(2, 1.0, shared + "see part (b)"))
    app.run()
    open_group(app, 3)
    choice = app.selectbox(key="grade-again-choice-q1-3")
    assert len(set(choice.options)) == 2 and choice.options[1].endswith("· #2")
    first = next(g for g in grades_in_use(state(db)) if g.comment.endswith("(a)"))
    choice.set_value(preset_key(first)).run()
    app.button(key="grade-again-q1-3").click().run()
    assert state(db).groups[3].grade.comment == shared + "see part (a)"


def test_the_busy_parts_of_the_pages_rerun_alone_as_fragments():
    """A click in the groups workspace, the queue, the check list or the history reruns only
    that part (``st.fragment``), not the whole page: a helper once slipped in between the
    decorator and the groups workspace, and the workspace silently stopped being one."""
    import ast

    expected = {"groups.py": "workspace", "queue.py": "queue", "check.py": "check", "history.py": "page"}
    for name, function in expected.items():
        tree = ast.parse((REPO / "ui" / "views" / name).read_text(encoding="utf-8"))
        fragments = {
            node.name
            for node in tree.body
            if isinstance(node, ast.FunctionDef) and any(ast.unparse(d) == "st.fragment" for d in node.decorator_list)
        }
        assert fragments == {function}, (name, fragments)


def test_the_groups_page_says_how_many_answers_are_graded_and_how_many_to_go(app, db):
    def progress() -> tuple[float, str]:
        (bar,) = app.get("progress")
        return bar.proto.value, bar.proto.text

    n = len(state(db).answer_ids)
    assert progress() == (0, f"0 of {n} answers graded, {n} to go.")
    with Store.open(db) as store:
        store.append("q1", "Ben", None, GradeGroup(1, 1.0))
    app.run()
    size = len(state(db).groups[1].members)
    value, text = progress()
    assert text == f"{size} of {n} answers graded, {n - size} to go."
    assert value == pytest.approx(100 * size / n, abs=1), value
    with Store.open(db) as store:
        for gid in [g for g in state(db).groups if g != 1]:
            store.append("q1", "Ben", None, GradeGroup(gid, 0.0))
        for answer_id in state(db).ungrouped:
            store.append("q1", "Ben", None, GradeAnswer(answer_id, 0.0))
    app.run()
    assert progress() == (100, f"All {n} answers graded.")


def test_a_confirm_pressed_on_the_group_just_left_does_nothing(app, db):
    """Y right after N: the key reaches the Confirm button drawn for group 1 while group 2 is
    already the open one (the page had not redrawn). Nothing may be confirmed."""
    app.session_state["open-q1"] = 2  # what N's callback did
    app.button(key="confirm-q1-1").click().run()
    assert logged(db) == []
    assert errors(app) == ["Group 1 is no longer the open one (group 2 is): nothing done; press again."]
    app.button(key="confirm-q1-2").click().run()
    assert logged(db) == [("Ada", Confirm(2))]


def test_a_grade_pressed_on_the_group_just_left_does_nothing(app, db):
    score_field(app).set_value(1.0)
    app.session_state["open-q1"] = 2  # "Next group" was pressed; the page has not redrawn
    app.button(key="grade-q1-1").click().run()
    assert logged(db) == []
    assert errors(app) == ["Group 1 is no longer the open one (group 2 is): nothing done; press again."]


def test_a_grade_from_a_form_drawn_before_another_graders_move_is_refused(app, db):
    """The form shows group 1 at version 0; Ben then moves answers into it. A rerun still in
    progress when Ada presses "Apply grade" has already recorded version 1 as the one she
    sees: the grade must be checked against the version its form showed, not against that."""
    score_field(app).set_value(1.0)
    incoming = state(db).groups[2].members[:2]
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Move(incoming, 1))
    app.session_state["seen-q1"] = 1  # what the rerun in progress recorded
    app.button(key="grade-q1-1").click().run()
    assert [author for author, _ in logged(db)] == ["Ben"]
    assert errors(app) == ["Your edit was not saved."]
    assert state(db).groups[1].grade is None


def test_an_edit_the_busy_database_could_not_take_is_said_not_a_traceback(app, db, monkeypatch):
    # A fake only of the wait: the store gives up after 120 s of other writers' locks.
    from grouper.store import StoreBusy

    real, waits = Store.append, [1]

    def busy(self, *args, **kwargs):
        if waits and waits.pop():
            raise StoreBusy("appending an edit: other graders kept the database busy for 120 s; nothing was written")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Store, "append", busy)
    app.button(key="confirm-q1-1").click().run()
    assert not app.exception
    assert errors(app) == ["Your edit was not saved: the database stayed busy. Press again."]
    assert logged(db) == []
    app.button(key="confirm-q1-1").click().run()
    assert logged(db) == [("Ada", Confirm(1))]


def test_a_score_typed_into_a_form_drawn_again_is_asked_for_again_not_lost_silently(app, db):
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Rename(2, "sydney and co"))  # the page redraws at version 1
    app.run()
    app.session_state["score-q1-1-v0"] = 1.0  # what the version-0 form still held (a click mid-rerun)
    app.button(key="grade-q1-1").click().run()
    assert errors(app) == ["The question changed (now version 1) and the form was drawn again: type the score again."]
    assert [author for author, _ in logged(db)] == ["Ben"]


def test_confirm_then_undo(app, db):
    app.button(key="confirm-q1-1").click().run()
    assert app.dataframe(key="groups-q1-v1").value.set_index("Group").loc[1, "Status"] == "✓"
    app.button(key="undo").click().run()
    assert successes(app) == ["Undid your edit 1."]
    assert logged(db) == [("Ada", Confirm(1)), ("Ada", Undo(1))]
    assert state(db).groups[1].status == "suggested"


def test_undo_with_nothing_to_undo(app, db):
    app.button(key="undo").click().run()
    assert [i.value for i in app.info] == ["You have no edit of this question to undo."]
    assert logged(db) == []


def test_undo_takes_back_only_my_own_edits(app, db):
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Confirm(2))
    app.button(key="confirm-q1-1").click().run()
    app.button(key="undo").click().run()
    app.button(key="undo").click().run()  # nothing of Ada's left: Ben's confirm stays
    assert logged(db) == [("Ben", Confirm(2)), ("Ada", Confirm(1)), ("Ada", Undo(2))]
    assert state(db).groups[2].status == "confirmed"


def test_stale_edit_is_refused_with_what_changed(app, db):
    """Ada's page shows version 0; Ben merges group 2 into group 1 meanwhile; Ada's rename
    of group 1, made on the page she still sees, is refused with Ben's change, not applied."""
    choose_action(app, "Rename")
    app.text_input(key="rename-q1-1").input("Mine")
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Merge(1, (2,)))
    app.button(key="rename-btn-q1-1").click().run()
    assert errors(app) == ["Your edit was not saved."]
    reason = next(t for t in texts(app) if t.startswith("edit refused"))
    assert "group 1" in reason and "Ben" in reason and "version 1" in reason
    assert logged(db) == [("Ben", Merge(1, (2,)))]
    # The page now shows Ben's merge, so Ada can decide again.
    assert app.session_state["seen-q1"] == 1
    assert 2 not in list(app.dataframe(key="groups-q1-v1").value["Group"])


def test_concurrent_edits_of_different_groups_are_both_kept(db):
    ada, ben = sign_in(new_app(), "Ada"), sign_in(new_app(), "Ben")
    ada.button(key="confirm-q1-1").click().run()
    ben.button(key="next-group").click().run()
    ben.button(key="confirm-q1-" + str(ben.session_state["open-q1"])).click().run()
    assert [(a, p.kind) for a, p in logged(db)] == [("Ada", "confirm"), ("Ben", "confirm")]
    assert ben.session_state["seen-q1"] == 2  # Ben's page now shows Ada's edit too


# --------------------------------------------------------------------------- queue, map, export


def test_queue_suggests_the_nearest_group_and_accepts_in_one_click(app, db):
    app.switch_page("views/queue.py").run()
    first = next(b for b in app.button if b.key and b.key.startswith("accept-q1-"))
    answer_id = first.key.removeprefix("accept-q1-")
    assert first.label.startswith("Move to group ")
    target = int(first.label.rsplit(" ", 1)[1])
    assert state(db).group_of(answer_id) != target
    first.click().run()
    assert logged(db) == [("Ada", Move((answer_id,), target))]
    assert successes(app) == [f"Answer {answer_id} moved to group {target}."]
    assert state(db).group_of(answer_id) == target
    app.button(key="queue-undo-q1").click().run()  # a wrong accept is taken back where it was made
    assert logged(db)[1] == ("Ada", Undo(1)) and successes(app) == ["Undid your edit 1."]
    assert state(db).group_of(answer_id) != target


def test_queue_shows_a_doubtful_members_similarity_to_its_own_group_beside_the_suggestion(app, db):
    app.switch_page("views/queue.py").run()
    shown = [t for t in texts(app) if re.fullmatch(r"similarity \d\.\d\d; \d\.\d\d to group \d+, where it is", t)]
    assert shown, texts(app)


def test_queue_does_not_suggest_an_answer_back_into_the_group_a_grader_moved_it_out_of(app, db):
    answer_id = state(db).groups[1].members[0]  # the group's most typical answer: its centre is the nearest
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Move((answer_id,), None))
    app.switch_page("views/queue.py").run()
    label = app.button(key=f"accept-q1-{answer_id}").label
    assert label.startswith("Move to group ") and label != "Move to group 1"


def test_queue_says_which_grade_accepting_a_suggestion_gives(app, db):
    """Before the click: moving an answer into a graded group gives it that group's grade."""
    answer_id = state(db).groups[1].members[0]
    with Store.open(db) as store:
        store.append("q1", "Ben", None, Move((answer_id,), None))
    app.switch_page("views/queue.py").run()
    target = int(app.button(key=f"accept-q1-{answer_id}").label.rsplit(" ", 1)[1])
    assert "not graded yet" in texts(app)
    with Store.open(db) as store:
        store.append("q1", "Ben", None, GradeGroup(target, 1.0, "right city"))
    app.run()
    assert "gives it grade 1 (right city)" in texts(app)


def test_queue_says_a_doubtful_member_with_its_own_grade_keeps_it_in_the_suggested_group(app, db):
    """A member given its own grade keeps it wherever it goes: the row says so, not the group's grade."""
    app.switch_page("views/queue.py").run()
    first = next(b for b in app.button if b.key and b.key.startswith("accept-q1-"))
    answer_id = first.key.removeprefix("accept-q1-")
    target = int(first.label.rsplit(" ", 1)[1])
    assert state(db).group_of(answer_id) is not None  # a doubtful member, not an ungrouped answer
    with Store.open(db) as store:
        store.append("q1", "Ben", None, GradeAnswer(answer_id, 0.5, "half"))
        store.append("q1", "Ben", None, GradeGroup(target, 1.0, "right city"))
    app.run()
    assert app.button(key=f"accept-q1-{answer_id}").label == f"Move to group {target}"
    assert "keeps its own grade there" in texts(app)


def test_queue_says_why_an_answer_moved_out_has_no_suggestion(app, db):
    """Every group graded as the one the answer was taken from: none is suggested, and the
    row says why rather than "no group is close"."""
    before = state(db)
    answer_id = before.groups[1].members[0]
    with Store.open(db) as store:
        store.append("q1", "Ben", None, Move((answer_id,), None))
        for gid in sorted(before.groups):
            store.append("q1", "Ben", None, GradeGroup(gid, 1.0))
    app.switch_page("views/queue.py").run()
    assert f"accept-q1-{answer_id}" not in [b.key for b in app.button]
    assert "no group suggested: moved out of group 1; groups graded as it is are left out" in texts(app)


def test_queue_grades_an_ungrouped_answer_on_its_own_and_then_leaves_it_out(app, db):
    """An answer that fits no group is graded where it waits, in one action, not by making a
    group of one; once graded it no longer waits."""
    answer_id = state(db).groups[1].members[-1]
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Move((answer_id,), None))
    app.switch_page("views/queue.py").run()
    waiting = [b.key.removeprefix("grade-answer-q1-") for b in app.button if b.key and b.key.startswith("grade-answer-q1-")]
    assert answer_id in waiting
    app.number_input(key=f"answer-score-q1-{answer_id}").set_value(0.0)
    app.text_input(key=f"answer-comment-q1-{answer_id}").input("Sydney is not the capital")
    app.button(key=f"grade-answer-q1-{answer_id}").click().run()
    assert logged(db)[1:] == [("Ada", GradeAnswer(answer_id, 0.0, "Sydney is not the capital"))]
    assert successes(app) == [f"Answer {answer_id} graded 0."]
    assert state(db).grade_of(answer_id).score == 0.0
    assert f"grade-answer-q1-{answer_id}" not in [b.key for b in app.button]
    assert any("1 ungrouped answer graded on its own" in t for t in texts(app))


def test_queue_gives_an_answer_a_grade_given_before_in_one_choice(app, db):
    """The grades already given in the question (score and comment, most given first) are one
    choice away on each row, as on the groups page."""
    answer_id = state(db).groups[1].members[-1]
    with Store.open(db) as store:
        store.append("q1", "Ben", None, Move((answer_id,), None))
        store.append("q1", "Ben", None, GradeGroup(2, 0.0, "Sydney is not the capital"))
        store.append("q1", "Ben", None, GradeGroup(3, 0.5, "half right"))
    app.switch_page("views/queue.py").run()
    choice = app.selectbox(key=f"answer-again-q1-{answer_id}")
    assert choice.options == ["0.5 · half right (1×)", "0 · Sydney is not the capital (1×)"]
    choice.set_value(preset_key(grades_in_use(state(db))[0]))
    app.button(key=f"grade-answer-q1-{answer_id}").click().run()
    assert logged(db)[-1] == ("Ada", GradeAnswer(answer_id, 0.5, "half right"))
    assert successes(app) == [f"Answer {answer_id} graded 0.5."]
    # A comment typed beside the choice is this answer's own.
    other = state(db).groups[1].members[-1]
    with Store.open(db) as store:
        store.append("q1", "Ben", None, Move((other,), None))
    app.run()
    app.selectbox(key=f"answer-again-q1-{other}").set_value(preset_key(grades_in_use(state(db))[1]))
    app.text_input(key=f"answer-comment-q1-{other}").input("wrote Sydney, then crossed it out")
    app.button(key=f"grade-answer-q1-{other}").click().run()
    assert logged(db)[-1] == ("Ada", GradeAnswer(other, 0.0, "wrote Sydney, then crossed it out"))


def test_queue_lists_late_answers_without_leaving_the_page(app, db, monkeypatch):
    app.switch_page("views/queue.py").run()
    with Store.open(db) as store:
        store.add_answers("q1", [Answer("late-1", "q1", "Canberra (late)")], [None], "Ben")
    rerun_fragments_only(app, monkeypatch)
    app.run()
    assert not app.exception, app.exception
    assert "late-1 · ungrouped" in texts(app)


def test_queue_refuses_a_typed_score_and_a_grade_given_before_together(app, db):
    answer_id = state(db).groups[1].members[-1]
    with Store.open(db) as store:
        store.append("q1", "Ben", None, Move((answer_id,), None))
        store.append("q1", "Ben", None, GradeGroup(2, 0.0, "Sydney is not the capital"))
    app.switch_page("views/queue.py").run()
    app.selectbox(key=f"answer-again-q1-{answer_id}").set_value(preset_key(grades_in_use(state(db))[0]))
    app.number_input(key=f"answer-score-q1-{answer_id}").set_value(1.0)
    app.button(key=f"grade-answer-q1-{answer_id}").click().run()
    assert errors(app) == ["Enter a score (or tick rubric items), or choose a grade given before: not both."]
    assert len(logged(db)) == 2


def test_queue_grade_without_a_score_is_explained_not_logged(app, db):
    answer_id = state(db).groups[1].members[-1]
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Move((answer_id,), None))
    app.switch_page("views/queue.py").run()
    app.button(key=f"grade-answer-q1-{answer_id}").click().run()
    assert errors(app) == ["Enter a score or tick rubric items first."]
    assert len(logged(db)) == 1


def test_map_draws_every_answer_coloured_by_group_with_its_text_as_tooltip(app, db):
    app.selectbox(key="question-picker").set_value("xss").run()
    app.switch_page("views/map.py").run()
    assert not app.exception
    (chart,) = app.get("vega_lite_chart")
    spec = json.loads(chart.proto.spec)
    assert [t["field"] for t in spec["encoding"]["tooltip"]] == ["answer", "group", "answer_id"]
    assert spec["encoding"]["color"]["field"] == "group"
    points = dataframe_util.convert_arrow_bytes_to_pandas_df(chart.proto.datasets[0].data.data)
    current = state(db, "xss")
    assert sorted(points["answer_id"]) == sorted(current.answer_ids)
    assert set(points["answer"]) == set(XSS)  # verbatim; Vega's tooltip escapes HTML
    assert all(points["group"] == [f"group {current.group_of(a)}" for a in points["answer_id"]])


def test_models_page_lists_versions_and_refuses_to_retrain_without_edits(app, db, tmp_path):
    app.switch_page("views/models.py").run()
    versions = table(app, "Version", "Active", "Parent", "Created", "APA of parent", "APA", "Decision")
    assert versions[["Version", "Active"]].to_dict("records") == [{"Version": "base", "Active": "✓"}]
    app.button(key="models-retrain").click().run()
    assert errors(app) == ["Nothing was retrained."]
    assert any("pair" in t or "held-out" in t for t in texts(app))
    assert sorted(p.name for p in (tmp_path / "models").iterdir() if not p.name.startswith(".")) == ["base"]


def test_an_activated_version_groups_the_next_import(app, db, tmp_path):
    from grouper.model_versions import ModelRegistry
    from test_model_versions import publish_tiny

    card = publish_tiny(ModelRegistry(tmp_path / "models"), tmp_path)  # activated: it "won"
    app.switch_page("views/models.py").run()
    assert "New questions are grouped with the active version, v0001." in texts(app)
    rows = "".join(f"s{i},{text}\n" for i, text in enumerate(["Canberra"] * 3 + ["Sydney"] * 3))
    _upload(app, "geo.csv", ("student_id,answer\n" + rows).encode())
    app.button(key="import-go").click().run()
    with Store.open(db) as store:
        assert store.model_version("geo").startswith(card.weights_sha256)
        assert not store.model_version("q1").startswith(card.weights_sha256)


def test_instructors_regroup_waiting_answers_with_the_active_version(app, db, tmp_path):
    from grouper.model_versions import ModelRegistry
    from test_model_versions import publish_tiny

    with Store.open(db) as store:
        before = store.state("q1")
        kept = max(before.groups.values(), key=lambda g: len(g.members))
        store.append("q1", "Ada", before.version, Confirm(kept.group_id))
    publish_tiny(ModelRegistry(tmp_path / "models"), tmp_path)
    app.switch_page("views/models.py").run()
    app.button(key="models-regroup").click().run()
    assert not app.exception, app.exception
    (message,) = successes(app)
    assert message.startswith("Regrouped with v0001:") and " of 2 question(s)" in message
    authors = {author for author, _ in logged(db)}
    assert authors == {"Ada", "model:v0001"}  # the model's moves are its own, not Ada's
    with Store.open(db) as store:
        after = store.state("q1").groups[kept.group_id]
    assert after.members == kept.members and after.status == "confirmed"


def test_a_tampered_active_version_stops_embedding_with_a_message(app, db, tmp_path):
    from grouper.model_versions import ModelRegistry
    from test_model_versions import publish_tiny

    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path)
    weights = registry.model_dir(card.version) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    # q1 was grouped with the base model: its pages keep working in that model's space
    app.switch_page("views/map.py").run()
    assert not app.exception and errors(app) == []
    # new answers would be embedded with the tampered version: refused, nothing stored
    _upload(app, "geo.csv", b"student_id,answer\ns1,Canberra\ns2,Sydney\ns3,Perth\n")
    app.button(key="import-go").click().run()
    assert not app.exception
    assert errors(app) == ["A model version failed its integrity check. Activate another version on the Models page."]
    assert any("changed: model.safetensors" in t for t in texts(app))
    with Store.open(db) as store:
        assert store.question_ids() == ["q1", "xss"]
    app.switch_page("views/models.py").run()  # and the way out still works
    app.selectbox(key="models-activate").set_value("base")
    app.button(key="models-activate-btn").click().run()
    assert registry.active() == "base"


def test_a_version_that_lost_to_its_parent_is_activated_only_when_asked_twice(app, db, tmp_path):
    from grouper.model_versions import ModelRegistry
    from test_model_versions import publish_tiny

    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path, beats=False)
    app.switch_page("views/models.py").run()
    app.selectbox(key="models-activate").set_value(card.version)
    app.button(key="models-activate-btn").click().run()
    assert registry.active() == "base"
    assert errors(app) == [
        f"Version {card.version} did not beat its parent; tick 'Even though it lost' to activate it anyway."
    ]
    app.checkbox(key="models-activate-anyway").check()
    app.button(key="models-activate-btn").click().run()
    assert registry.active() == card.version


def test_a_version_whose_files_changed_is_not_activated_from_the_page(app, db, tmp_path):
    from grouper.model_versions import ModelRegistry
    from test_model_versions import publish_tiny

    registry = ModelRegistry(tmp_path / "models")
    card = publish_tiny(registry, tmp_path)
    registry.set_active("base")
    (registry.model_dir(card.version) / "vocab.txt").write_text("[PAD]\n")
    app.switch_page("views/models.py").run()
    app.selectbox(key="models-activate").set_value(card.version)
    app.button(key="models-activate-btn").click().run()
    assert registry.active() == "base"
    assert errors(app) == [f"Version {card.version} was not activated."]
    assert any("changed: vocab.txt" in t for t in texts(app))


def test_a_damaged_card_of_one_version_leaves_the_models_page_and_the_rollback_working(app, db, tmp_path):
    from grouper.model_versions import ModelRegistry
    from test_model_versions import publish_tiny

    registry = ModelRegistry(tmp_path / "models")
    broken = publish_tiny(registry, tmp_path)
    (registry.model_dir(broken.version) / "card.json").write_text("{not json")
    app.switch_page("views/models.py").run()
    assert not app.exception, app.exception
    table = app.dataframe[0].value.set_index("Version")
    assert table.loc[broken.version, "Decision"].startswith("card unreadable: ")
    app.selectbox(key="models-activate").set_value("base")
    app.button(key="models-activate-btn").click().run()
    assert registry.active() == "base"


def test_the_models_page_refuses_what_changed_or_broke_since_it_was_drawn(app, db, tmp_path):
    import shutil

    from grouper.model_versions import ModelRegistry
    from test_model_versions import publish_tiny

    registry = ModelRegistry(tmp_path / "models")
    first, second = publish_tiny(registry, tmp_path), publish_tiny(registry, tmp_path)
    registry.set_active(first.version)
    app.switch_page("views/models.py").run()
    # Another instructor activates the second version: Regroup does not use it unseen.
    registry.set_active(second.version)
    app.button(key="models-regroup").click().run()
    assert errors(app) == [f"Nothing was regrouped: the active version is now {second.version}, not {first.version}; look again."]
    assert not [e for e in logged(db) if e[0].startswith("model:")]
    # The version picked to roll back to is removed meanwhile: refused, said, no traceback.
    app.selectbox(key="models-activate").set_value(first.version)
    shutil.rmtree(registry.model_dir(first.version))
    app.button(key="models-activate-btn").click().run()
    assert not app.exception, app.exception
    assert errors(app) == [f"Version {first.version} was not activated."]
    # The active version's weights fail their check: Regroup says so.
    weights = registry.model_dir(second.version) / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    app.run()
    app.button(key="models-regroup").click().run()
    assert not app.exception, app.exception
    assert errors(app) == ["Nothing was regrouped."]


def test_question_pages_use_the_vectors_of_the_model_that_grouped_them(app, db, tmp_path):
    import ui_common
    from grouper.model_versions import ModelRegistry
    from test_model_versions import publish_tiny

    publish_tiny(ModelRegistry(tmp_path / "models"), tmp_path)  # activated after q1's import
    app.switch_page("views/map.py").run()
    assert not app.exception
    with Store.open(db) as store:
        key = store.model_version("q1")
        texts_ = [a.normalized for a in store.answers("q1")]
        cached = store.embeddings.get_many(key, texts_)
    vectors = ui_common.answer_vectors("q1")
    assert ui_common.question_encoder("q1").model_key == key  # the base, not the active tiny model
    some = next(a for a in ui_common.answers_of("q1") if a.normalized)
    np.testing.assert_allclose(vectors[some.answer_id], cached[some.normalized])


def test_tas_see_the_models_but_cannot_retrain(db, tmp_path, monkeypatch):
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ben@example.edu"})
    at.switch_page("views/models.py").run()
    assert [t.value for t in at.title] == ["Models"]
    assert [b.key for b in at.button if b.key and b.key.startswith("models-")] == []


def test_an_instructor_with_an_empty_store_starts_on_import(tmp_path, monkeypatch):
    monkeypatch.setenv("GROUPER_DB", str(tmp_path / "empty.sqlite"))
    monkeypatch.delenv("GROUPER_STAFF_FILE", raising=False)
    at = sign_in(new_app())
    assert [t.value for t in at.title] == ["Import answers"]


# --------------------------------------------------------------------------- plain text


def test_student_text_is_shown_verbatim_and_never_as_markdown(app):
    app.selectbox(key="question-picker").set_value("xss").run()
    titles = list(app.dataframe(key="groups-xss-v0").value["Title"])
    assert sorted(titles) == sorted(XSS)
    for payload in XSS:
        gid = int(app.dataframe(key="groups-xss-v0").value.set_index("Title").loc[payload, "Group"])
        app.session_state["open-xss"] = gid
        app.run()
        assert payload in texts(app)  # the open group's title, as plain text
        assert set(app.dataframe(key=f"members-xss-{gid}-v0").value["Answer"]) == {payload}
    rendered = [
        m.value for m in (*app.markdown, *app.caption, *app.subheader, *app.title, *app.error, *app.success)
    ]
    for payload in XSS:
        assert all(payload not in r for r in rendered)


def _grade_the_two_largest_groups_apart(db: Path) -> list[int]:
    """Ada confirms the two largest written groups and grades them 1 and 0: what the regrouping
    from grades needs. Returns their ids."""
    with Store.open(db) as store:
        before = store.state("q1")
        order = sorted((g for g in before.groups if not before.groups[g].blank), key=lambda g: -len(before.groups[g].members))
        for gid, score in zip(order[:2], (1.0, 0.0)):
            store.append("q1", "Ada", None, Confirm(gid))
            store.append("q1", "Ada", None, GradeGroup(gid, score, ""))
    return order[:2]


def test_regroup_from_grades_waits_for_two_grades_then_recuts_only_unreviewed_groups(app, db):
    app.button(key="adapt").click().run()
    assert [i.value for i in app.info] == [
        "Nothing to regroup: grade groups with at least two different grades first, or all is reviewed."
    ]
    assert logged(db) == []
    # Two groups confirmed with different grades, by Ada; then the model re-cuts the rest.
    before = state(db)
    reviewed = {gid: before.groups[gid].members for gid in _grade_the_two_largest_groups_apart(db)}
    app.run()
    app.button(key="adapt").click().run()
    after = state(db)
    model_edits = [(a, p) for a, p in logged(db) if a.startswith("model:")]
    assert successes(app) == [f"Regrouped the answers not reviewed yet from the grades given ({len(model_edits)} edits)."]
    assert model_edits and all(a == "model:grades:Ada" for a, _ in model_edits)
    # Reviewed groups kept their members and ids; every answer is still somewhere exactly once.
    assert {gid: after.groups[gid].members for gid in reviewed} == reviewed
    assert sorted(after.location) == sorted(before.location)


def test_a_regrouping_the_busy_database_stopped_is_said_not_a_traceback(app, db, monkeypatch):
    from grouper.store import StoreBusy

    _grade_the_two_largest_groups_apart(db)
    app.run()

    def busy(self, question_id, author, *args, **kwargs):
        raise StoreBusy("appending an edit: other graders kept the database busy for 120 s; nothing was written")

    monkeypatch.setattr(Store, "append", busy)
    app.button(key="adapt").click().run()
    assert not app.exception
    assert errors(app) == [
        "Regrouping stopped: the database stayed busy. The edits made so far are in the history; press again."
    ]


def test_an_instructor_adds_a_reference_answer_and_regroups_what_nobody_reviewed(app, db):
    kept = state(db).groups[1].members
    app.button(key="confirm-q1-1").click().run()
    references_box(app).input("Canberra\nCanberra is the capital of Australia.\n\nCanberra")
    app.button(key="references-save-q1").click().run()
    assert successes(app) == ["Question q1 now has 2 reference answer(s)."]
    assert logged(db)[-1] == ("Ada", SetReferences(("Canberra", "Canberra is the capital of Australia.")))
    app.button(key="references-regroup-q1").click().run()
    assert successes(app)[0].startswith("Regrouped the answers nobody has reviewed (")
    assert {a for a, _ in logged(db)[2:]} == {"model:references:Ada"}
    assert state(db).groups[1].members == kept  # the confirmed group never moves


def test_tas_do_not_see_the_reference_answers_editor(db, tmp_path, monkeypatch):
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ben@example.edu", "name": "Ben"})
    assert not at.exception
    assert [b for b in at.button if b.key == "references-regroup-q1"] == []


def test_group_cues_are_computed_once_per_group_content(app, db):
    """The list's confidence cues are remembered per group's members: a rerun recomputes only
    the groups an edit changed, and a changed group gets its new cue."""
    import ui_common  # importable once the app has run: it puts ui/ on sys.path

    from grouper.review import confidence_cue, least_typical_first

    vectors = ui_common.answer_vectors("q1")
    groups = {g: s.members for g, s in state(db).groups.items()}
    first = ui_common.group_cues(groups, vectors)
    assert first == {g: confidence_cue([s for _, s in least_typical_first(m, vectors)]) for g, m in groups.items()}
    g1 = next(iter(groups))
    cached = ui_common._vector_cache().cues[(id(vectors), groups[g1])]
    assert ui_common.group_cues(groups, vectors)[g1] is cached  # served, not recomputed
    changed = {**groups, g1: groups[g1][:1]}
    assert ui_common.group_cues(changed, vectors)[g1] == confidence_cue([1.0])  # one member: fully typical
