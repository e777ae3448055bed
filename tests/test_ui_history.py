"""The History page through Streamlit's AppTest: the log in words, filters, and undo rights."""

from __future__ import annotations

from grouper.edits import Confirm, GradeGroup, Merge, Rename, Undo
from grouper.store import Store
from test_ui_app import _oidc_app, app, db, errors, logged, new_app, select_rows, sign_in, successes, template_db, texts  # noqa: F401


def _history(at):
    at.switch_page("views/history.py").run()
    assert not at.exception, at.exception
    return at


def _table(at):
    return next(f for f in at.dataframe if f.key and f.key.startswith("history-q1-")).value


def _key(at) -> str:
    return next(f.key for f in at.dataframe if f.key and f.key.startswith("history-q1-"))


def test_every_edit_is_listed_newest_first_with_who_and_what(app, db):
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Confirm(1))
        store.append("q1", "Cy", 1, Rename(2, "<b>bold</b> **x**"))
        store.append("q1", "Ben", 2, Undo(1))
    at = _history(app)
    table = _table(at)
    assert list(table["Edit"]) == [3, 2, 1]
    assert list(table["Who"]) == ["Ben", "Cy", "Ben"]
    assert list(table["What"]) == ["undid edit 1", "renamed group 2 to '<b>bold</b> **x**'", "confirmed group 1"]
    assert list(table["Undone by"]) == ["", "", "3"]
    assert any(t.startswith("3 of 3 edits. Version 3") for t in texts(at))
    at.multiselect(key="history-who-q1").set_value(["Cy"]).run()
    assert list(_table(at)["Edit"]) == [2]


def test_an_instructor_undoes_another_graders_edit_and_a_refusal_names_the_edit_to_undo_first(app, db):
    with Store.open(db) as store:
        store.append("q1", "Ben", 0, Merge(1, (2,)))
        store.append("q1", "Cy", 1, Rename(1, "Both"))
    at = _history(app)
    select_rows(at, _key(at), [1])  # Ben's merge, under Cy's rename
    at.button(key="history-undo-q1").click().run()
    assert errors(at) == ["Your edit was not saved."]
    assert any("undo edit 2 first" in t for t in texts(at))
    select_rows(at, _key(at), [0])  # Cy's rename
    at.button(key="history-undo-q1").click().run()
    assert successes(at) == ["Undid edit 2."]
    assert logged(db)[-1] == ("Ada", Undo(2))


def test_a_refused_undo_offers_the_undos_it_waits_on_in_order_with_one_click(app, db):
    with Store.open(db) as store:
        for version, score in enumerate((4.0, 3.0, 2.0)):  # Ben grades group 1 three times
            store.append("q1", "Ben", version, GradeGroup(1, score))
    at = _history(app)
    assert not [b for b in at.button if b.key == "history-undo-chain-q1"]
    select_rows(at, _key(at), [2])  # edit 1, under two regrades
    at.button(key="history-undo-q1").click().run()
    assert errors(at) == ["Your edit was not saved."]
    assert any("undo edits 3 and 2 first, in that order" in t for t in texts(at))
    chain = at.button(key="history-undo-chain-q1")
    assert chain.label == "Undo edits 3 and 2, then edit 1" and not chain.disabled
    chain.click().run()
    assert successes(at) == ["Undid edit 3.", "Undid edit 2.", "Undid edit 1."]
    assert logged(db)[-3:] == [("Ada", Undo(3)), ("Ada", Undo(2)), ("Ada", Undo(1))]
    with Store.open(db) as store:
        assert store.state("q1").groups[1].grade is None
    assert not [b for b in at.button if b.key == "history-undo-chain-q1"]  # done: no second click


def test_the_chain_of_undos_stops_when_someone_else_edits_in_between(app, db, monkeypatch):
    import ui_common

    with Store.open(db) as store:
        for version, score in enumerate((4.0, 3.0, 2.0)):
            store.append("q1", "Ben", version, GradeGroup(1, score))
    at = _history(app)
    select_rows(at, _key(at), [2])
    at.button(key="history-undo-q1").click().run()
    real_submit = ui_common.submit

    def submit_then_cy_renames(question_id, payload, success):
        ok = real_submit(question_id, payload, success)
        with Store.open(db) as store:  # Cy's edit lands right after the first undo
            if len(store.edits("q1")) == 4:
                store.append("q1", "Cy", 4, Rename(2, "Sydney (wrong)"))
        return ok

    monkeypatch.setattr(ui_common, "submit", submit_then_cy_renames)
    at.button(key="history-undo-chain-q1").click().run()
    assert successes(at) == ["Undid edit 3."]
    assert any("Another edit came in since the undos were worked out: 1 of the 3 undos were saved" in i.value for i in at.info)
    assert [a for a, _ in logged(db)] == ["Ben", "Ben", "Ben", "Ada", "Cy"]


def test_the_chain_of_undos_makes_none_when_someone_else_edited_before_the_click(app, db):
    with Store.open(db) as store:
        for version, score in enumerate((4.0, 3.0)):
            store.append("q1", "Ben", version, GradeGroup(1, score))
    at = _history(app)
    select_rows(at, _key(at), [1])
    at.button(key="history-undo-q1").click().run()
    assert at.button(key="history-undo-chain-q1").label == "Undo edit 2, then edit 1"
    with Store.open(db) as store:  # Cy renames group 2 while Ada reads the message
        store.append("q1", "Cy", 2, Rename(2, "Sydney (wrong)"))
    at.button(key="history-undo-chain-q1").click().run()
    assert any("Another edit came in since the undos were worked out: nothing was undone" in i.value for i in at.info)
    assert [a for a, _ in logged(db)] == ["Ben", "Ben", "Cy"]


def test_a_tick_never_carries_over_to_another_edit_when_the_filter_changes(app, db):
    with Store.open(db) as store:
        store.append("q1", "Cy", 0, Confirm(1))
        store.append("q1", "Ben", 1, Confirm(2))
    at = _history(app)
    at.multiselect(key="history-who-q1").set_value(["Ben"]).run()
    select_rows(at, _key(at), [0])
    assert at.button(key="history-undo-q1").label == "Undo edit 2"
    # Same number of rows, same number of authors ticked: the row position means another edit.
    at.multiselect(key="history-who-q1").set_value(["Cy"]).run()
    assert "Tick an edit to undo it." in texts(at)
    assert not [b for b in at.button if b.key == "history-undo-q1"]


def test_late_answers_cannot_be_undone_and_the_button_says_so(app, db):
    from grouper.answers import Answer

    with Store.open(db) as store:
        store.add_answers("q1", [Answer("late-1", "q1", "Canberra (late)")], [None], "Ada")
    at = _history(app)
    select_rows(at, _key(at), [0])
    button = at.button(key="history-undo-q1")
    assert button.disabled and "Late answers stay once submitted" in button.help


def test_a_ta_undoes_only_their_own_edits(db, tmp_path, monkeypatch):
    with Store.open(db) as store:
        store.append("q1", "ben@example.edu", 0, Confirm(1))
        store.append("q1", "Ada", 1, Confirm(2))
    at = _oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ben@example.edu", "name": "Ben"})
    at = _history(at)
    select_rows(at, _key(at), [0])  # Ada's
    assert at.button(key="history-undo-q1").disabled
    select_rows(at, _key(at), [1])  # his own
    assert not at.button(key="history-undo-q1").disabled
    at.button(key="history-undo-q1").click().run()
    assert logged(db)[-1] == ("ben@example.edu", Undo(1))


def test_undoing_an_undo_needs_the_right_to_make_the_edit_it_brings_back(db, tmp_path, monkeypatch):
    from grouper.edits import SetMaxScore, SetReferences

    def state_now(path):
        with Store.open(path) as store:
            return store.state("q1")

    with Store.open(db) as store:
        store.append("q1", "ben@example.edu", None, SetMaxScore(5.0))  # 1: Ben was an instructor then
        store.append("q1", "ben@example.edu", None, Undo(1))  # 2
        store.append("q1", "ben@example.edu", None, SetReferences(("Canberra",)))  # 3
        store.append("q1", "ben@example.edu", None, Undo(3))  # 4
        store.append("q1", "ben@example.edu", None, Undo(4))  # 5
    at = _history(_oidc_app(tmp_path, monkeypatch, {"is_logged_in": True, "email": "ben@example.edu", "name": "Ben"}))
    for undo, why in (
        (2, "your role (ta) cannot set max score"),  # it would set the maximum again
        (5, "your role (ta) cannot set references"),  # an undo of an undo of an undo: the references go
    ):
        rows = list(_table(at)["Edit"])
        select_rows(at, _key(at), [rows.index(undo)])
        # Drawn disabled, as the click is checked (acting_identity refuses one that gets there).
        button = at.button(key="history-undo-q1")
        assert button.disabled and button.help == "Your role (ta) cannot make this change", undo
        import ui_common

        needed = ui_common._actions_needed(Undo(undo), state_now(db), "ben@example.edu")
        assert f"cannot {needed[1].value.replace('_', ' ')}" in why, undo
    with Store.open(db) as store:
        assert store.state("q1").version == 5 and store.state("q1").max_score is None
