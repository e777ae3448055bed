"""Reference answers set after import: logged like any edit, undone, and used to regroup."""

from __future__ import annotations

import numpy as np
import pytest

from grouper.clustering import UNGROUPED, Group, Grouping
from grouper.edit_codec import edit_from_dict, edit_to_dict, state_from_dict, state_to_dict
from grouper.edits import EditRefused, SetMaxScore, SetReferences, Undo, initial_state, replay
from test_edits import Log

IDS = [f"a{i}" for i in range(4)]


@pytest.fixture
def log() -> Log:
    grouping = Grouping(np.array([1, 1, 2, UNGROUPED]), np.ones(4), (Group(1, "one", (0, 1)), Group(2, "two", (2,))))
    return Log(initial_state("q", IDS, grouping))


def test_the_payload_keeps_clean_distinct_texts():
    assert SetReferences(("  Canberra is the capital. ", "Canberra")).texts == ("Canberra is the capital.", "Canberra")
    assert SetReferences(()).texts == ()
    for bad in (("",), ("x", "x"), ("x" * 5001,), "Canberra", (3,)):
        with pytest.raises(ValueError, match="references"):
            SetReferences(bad)


def test_setting_changing_and_undoing_the_references(log):
    assert log.state.reference_answers is None  # as imported
    log.do("ada", SetReferences(("Canberra",)))
    assert log.state.reference_answers == ("Canberra",) and log.state.references_mark.author == "ada"
    log.do("ada", SetReferences(()))
    assert log.state.reference_answers == ()  # none, on purpose
    with pytest.raises(EditRefused, match="already has no reference answers"):
        log.do("ada", SetReferences(()))
    assert log.do("ada", Undo(2)).reference_answers == ("Canberra",)
    assert log.do("ada", Undo(1)).reference_answers is None
    assert replay(log.initial, log.edits) == log.state


def test_a_change_made_on_an_older_version_is_refused_and_undo_checks_lineage(log):
    log.do("ada", SetReferences(("Canberra",)))
    with pytest.raises(EditRefused, match="reference answers were set by ada at version 1"):
        log.do("ben", SetReferences(("Sydney",)), base=0)
    log.do("ben", SetReferences(("Canberra, ACT",)))
    with pytest.raises(EditRefused, match="undo edit 2 first"):
        log.do("ada", Undo(1))


def test_references_and_the_maximum_score_are_undone_apart(log):
    log.do("ada", SetReferences(("Canberra",)))
    log.do("ada", SetMaxScore(2))
    assert log.do("ada", Undo(1)).reference_answers is None
    assert log.state.max_score == 2.0


def test_codec_round_trips_references(log):
    log.do("ada", SetReferences(("Canberra", "It is Canberra")))
    log.do("ada", Undo(1))
    for edit in log.edits:
        assert edit_from_dict(edit_to_dict(edit)) == edit
    assert state_from_dict(state_to_dict(log.state)) == log.state


@pytest.mark.slow
def test_references_set_after_import_regroup_what_nobody_reviewed(tmp_path, encoder):
    """Imported without a reference, the answers are grouped by content; the instructor adds
    one, and the groups nobody reviewed are regrouped by it, the confirmed one untouched."""
    from grouper.answers import Answer, Question
    from grouper.edits import Confirm
    from grouper.intake import import_questions
    from grouper.regroup import regroup_stored_question
    from grouper.store import Store

    texts = (
        ["Canberra is the capital"] * 4
        + ["It is Canberra"] * 3
        + ["Sydney"] * 4
        + ["Melbourne, the biggest city"] * 3
        + ["I think it is Perth"] * 3
    )
    question = Question("q", "What is the capital of Australia?", tuple(Answer(f"a{i}", "q", t) for i, t in enumerate(texts)))
    with Store.open(tmp_path / "s.sqlite") as store:
        import_questions(store, [question], encoder)
        assert store.question("q").reference_answers == ()
        first = store.state("q")
        kept = next(g for g in first.groups.values() if "a0" in g.members)
        store.append("q", "ada", 0, Confirm(kept.group_id))
        store.append("q", "ada", 1, SetReferences(("Canberra is the capital of Australia.",)))
        assert store.question("q").reference_answers == ("Canberra is the capital of Australia.",)
        assert store.reference_answers("q") == ("Canberra is the capital of Australia.",)
        with pytest.raises(ValueError, match="must start with 'model:'"):
            regroup_stored_question(store, "q", encoder, "ada")
        done, refused = regroup_stored_question(store, "q", encoder, "model:references:ada")
        assert refused is None and done > 0
        after = store.state("q")
        assert after.groups[kept.group_id].members == kept.members  # confirmed: never moved
        assert {e.author for e in store.edits("q")[2:]} == {"model:references:ada"}
        # the same references again: nothing left to change
        assert regroup_stored_question(store, "q", encoder, "model:references:ada") == (0, None)
