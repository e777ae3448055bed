"""Regrouping with a new model: confirmed work stays, only the rest is grouped again.

When a better model is activated, or the within-question head has adapted to a grader's
corrections, the answers nobody has reviewed yet can be grouped again. What a grader has
already done must not move: confirmed groups, graded groups, the blank group, groups a grader
merged, split, renamed or made, answers a grader moved and answers with their own grade keep
their members and their ids.

The regrouping is expressed as ordinary edits (moves and deletes) so that the grouping stays
a fold of the edit log: :func:`plan_regroup` is pure, from a state and the new clusters to the
payloads that turn one into the other, and applying them with :func:`grouper.edits.apply`
(or ``Store.append``) is the only way the state changes. The edits are attributed to
:func:`model_author` (``"model:<version>"``), so that the log says which model moved what and
so that the training signal can leave them out: a model must not learn from its own guesses.

A new cluster that is mostly made of one old suggested group keeps that group's id (only the
differences move), so a grader in the middle of a question does not see every id change.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from grouper.access import MODEL_AUTHOR_PREFIX
from grouper.answers import Answer
from grouper.clustering import GroupingSettings, group_embeddings
from grouper.edits import CONFIRMED, NEW, Delete, Move, Payload, QuestionState
from grouper.references import References, question_references

__all__ = [
    "MODEL_AUTHOR_PREFIX",
    "STALE_PLAN",
    "StalePlan",
    "append_plan",
    "fixed_answers",
    "is_model_author",
    "model_author",
    "plan_regroup",
    "regroup_question",
    "regroup_store",
    "regroup_stored_question",
    "shaped_groups",
]



#: The author of a regroup by a model version (not by references or grades: "model:references:ada").
_VERSION_AUTHOR = re.compile(re.escape(MODEL_AUTHOR_PREFIX) + r"[^:]+")

#: Why a model's plan stopped when an edit by someone else came in between its edits.
STALE_PLAN = "another edit came in while the question was being regrouped; the rest of the plan is left (run it again)"


class StalePlan(ValueError):
    """A model's plan stopped early (:func:`append_plan`): someone else's edit came in
    between its edits, or conflicted with one; its first ``done`` edits were applied."""

    def __init__(self, question_id: str, done: int, reason: str):
        super().__init__(f"question {question_id}: {reason} ({done} edit(s) of the plan were made)")
        self.done = done
        self.reason = reason


def model_author(version: str) -> str:
    """The author of the edits a model version makes: ``"model:<version>"``."""
    return f"{MODEL_AUTHOR_PREFIX}{version}"


def is_model_author(author: str) -> bool:
    """True for edits made by a model (to leave out of the training pairs)."""
    return author.startswith(MODEL_AUTHOR_PREFIX)


#: Edits by which a person says how the answers of a group go together, whatever its status.
_SHAPING_KINDS = frozenset({"merge", "split", "rename", "move"})


def shaped_groups(state: QuestionState) -> frozenset[int]:
    """Groups a person shaped, though nobody confirmed or graded them yet.

    A grader's merge (the group merged into), split (every part), rename, or move of answers
    to a new group says how those answers go together, and so does a person's undo of a
    model's delete (the group it brings back). Edits by a model (``model:`` authors), undone
    edits and other undos say nothing; a move into an existing group shapes no group (the
    answers moved are a grader's choice on their own, see :func:`fixed_answers`).

    Parameters
    ----------
    state : QuestionState

    Returns
    -------
    frozenset of int
        Ids of groups that still exist.
    """
    shaped: set[int] = set()
    for edit_id, record in state.records.items():
        if edit_id in state.undone:
            continue
        if record.undoes is not None:
            # A person's undo of a model's delete rejects it: the group it brings back (empty,
            # perhaps) is theirs now, and the next regroup must not delete it again.
            undone = state.records[record.undoes]
            if not is_model_author(record.author) and is_model_author(undone.author) and undone.kind == "delete":
                shaped.update(undone.groups_before)
            continue
        if record.kind not in _SHAPING_KINDS:
            continue
        if is_model_author(record.author):
            continue
        if record.kind == "move":
            # Only the group the move created (it did not exist before); ids are never reused.
            shaped.update(gid for gid, before in record.groups_before.items() if before is None)
        else:
            shaped.update(record.groups_before)
    return frozenset(gid for gid in shaped if gid in state.groups)


def _kept_groups(state: QuestionState) -> set[int]:
    """Groups a regrouping leaves as they are: confirmed, graded, blank, or shaped by a person."""
    kept = set(shaped_groups(state))
    kept.update(
        gid for gid, g in state.groups.items() if g.status == CONFIRMED or g.grade is not None or g.blank
    )
    return kept


def fixed_answers(state: QuestionState) -> set[str]:
    """Answers a regrouping must not move.

    Members of confirmed, graded or blank groups and of groups a person merged, split,
    renamed or made (:func:`shaped_groups`), answers with their own grade, and answers whose
    place a grader chose with a move, or by undoing a model's move
    (:func:`grouper.review.grader_moves`): a model must not put back an answer a grader took
    out of a group, nor take out one a grader put in or put back, nor undo a grader's merge or
    split.

    Parameters
    ----------
    state : QuestionState

    Returns
    -------
    set of str
    """
    from grouper.review import grader_moves  # grouper.review reads is_model_author from here

    fixed = set(state.overrides) | grader_moves(state).placed
    for gid in _kept_groups(state):
        fixed.update(state.groups[gid].members)
    return fixed


def plan_regroup(
    state: QuestionState,
    clusters: Sequence[Sequence[str]],
    titles: Sequence[str] | None = None,
) -> list[Payload]:
    """The edits that regroup the free answers of a question into ``clusters``.

    Parameters
    ----------
    state : QuestionState
    clusters : sequence of sequences of str
        The new groups of the free answers (those not in :func:`fixed_answers`), most
        important first, members most typical first. Free answers in no cluster end
        ungrouped.
    titles : sequence of str, optional
        One title per cluster, used when a cluster becomes a new group.

    Returns
    -------
    list of Payload
        ``Move`` and ``Delete`` payloads to apply in order; empty when nothing changes.
        Kept groups are never named; new groups take ids from ``state.next_group_id`` on.

    Raises
    ------
    ValueError
        A cluster names a fixed or unknown answer, or an answer twice.
    """
    from grouper.review import grader_moves  # grouper.review reads is_model_author from here

    fixed = fixed_answers(state)
    if titles is not None and len(titles) != len(clusters):
        raise ValueError(f"{len(titles)} titles for {len(clusters)} clusters; give one per cluster or none")
    seen: set[str] = set()
    for cluster in clusters:
        for a in cluster:
            if a not in state.location:
                raise ValueError(f"answer {a!r} is not an answer of question {state.question_id}")
            if a in fixed:
                raise ValueError(
                    f"answer {a!r} is in a group a grader reviewed or shaped, was placed by a grader, "
                    "or has its own grade: it stays"
                )
            if a in seen:
                raise ValueError(f"answer {a!r} is in more than one cluster")
            seen.add(a)

    # An answer a grader took out of a group never goes back with the answers it was taken
    # from, even when it is free again (the grader then deleted the group they had moved it
    # to, say): it stays where it is.
    away = grader_moves(state).moved_away_from
    clusters = [
        [a for a in cluster if not (away.get(a) and any(state.location[b] in away[a] for b in cluster))]
        for cluster in clusters
    ]

    # Match each cluster to the suggested group most of it comes from, biggest overlaps
    # first, each group at most once.
    kept = _kept_groups(state)
    suggested = {gid: g for gid, g in state.groups.items() if gid not in kept}
    candidates = []
    for k, cluster in enumerate(clusters):
        counts: dict[int, int] = {}
        for a in cluster:
            gid = state.location[a]
            if gid in suggested:
                counts[gid] = counts.get(gid, 0) + 1
        for gid, n in counts.items():
            if 2 * n > len(cluster):
                candidates.append((-n, k, gid))
    match: dict[int, int] = {}
    used: set[int] = set()
    for _, k, gid in sorted(candidates):
        if k not in match and gid not in used:
            match[k] = gid
            used.add(gid)

    payloads: list[Payload] = []
    for k, cluster in enumerate(clusters):
        if not cluster:
            continue
        if k in match:
            incoming = tuple(a for a in cluster if state.location[a] != match[k] and match[k] not in away.get(a, ()))
            if incoming:
                payloads.append(Move(incoming, to=match[k]))
        else:
            title = (titles[k] if titles is not None else "")[:200]
            payloads.append(Move(tuple(cluster), to=NEW, title=title))
    free_grouped = [
        a for a in state.answer_ids if a not in fixed and a not in seen and state.location[a] is not None
    ]
    if free_grouped:
        payloads.append(Move(tuple(free_grouped), to=None))
    # Suggested groups that no cluster kept are now empty (their members all went elsewhere,
    # except fixed answers with their own grade, which keep the group alive).
    for gid, group in sorted(suggested.items()):
        if gid not in used and all(m not in fixed for m in group.members):
            payloads.append(Delete(gid))
    return payloads


def regroup_question(
    state: QuestionState,
    answers: Sequence[Answer],
    vectors: np.ndarray,
    settings: GroupingSettings | None = None,
    references: References | None = None,
) -> list[Payload]:
    """Group a question's free answers from their vectors and plan the edits.

    Parameters
    ----------
    state : QuestionState
    answers : sequence of Answer
        The question's answers, in import order.
    vectors : ndarray of shape (n_answers, dim)
        Embeddings of all the answers (by the new model, or adapted by
        :class:`grouper.adaptation.FittedHead`); only the free answers' rows are used.
    settings : GroupingSettings, optional
    references : References, optional
        The question's reference answers, embedded by the same model as ``vectors``: with
        them the free answers are grouped as an import groups them (by how much of a
        reference they say); without, by content alone.

    Returns
    -------
    list of Payload
        See :func:`plan_regroup`.
    """
    if len(answers) != len(vectors):
        raise ValueError(f"{len(answers)} answers but {len(vectors)} vectors")
    fixed = fixed_answers(state)
    free = [i for i, a in enumerate(answers) if a.answer_id not in fixed]
    if not free:
        return []
    texts = [answers[i].normalized for i in free]
    grouping = group_embeddings(np.asarray(vectors)[free], texts, settings, references=references)
    # The blank group is fixed, so blank answers that are free (moved out of it by hand)
    # are left where they are rather than forming a second blank group.
    clusters = [[answers[free[m]].answer_id for m in g.members] for g in grouping.groups if not g.blank]
    titles = [g.title for g in grouping.groups if not g.blank]
    blank_free = {answers[free[m]].answer_id for g in grouping.groups if g.blank for m in g.members}
    payloads = plan_regroup(state, clusters, titles)
    if blank_free:
        # Leave free blank answers untouched: drop them from the move to ungrouped.
        kept: list[Payload] = []
        for p in payloads:
            if isinstance(p, Move) and p.to is None:
                rest = tuple(a for a in p.answer_ids if a not in blank_free)
                if rest:
                    kept.append(Move(rest, to=None))
            else:
                kept.append(p)
        payloads = kept
    return payloads



def regroup_store(
    store,
    registry,
    *,
    version: str | None = None,
    questions: Sequence[str] | None = None,
    settings: GroupingSettings | None = None,
    device=None,
) -> dict[str, tuple[int, str | None]]:
    """Regroup the free answers of stored questions with a model version, as logged edits.

    Parameters
    ----------
    store : Store
    registry : ModelRegistry
    version : str, optional
        Defaults to the active version.
    questions : sequence of str, optional
        Defaults to every question of the store.
    settings : GroupingSettings, optional
    device : torch.device, optional

    Returns
    -------
    dict of str to (int, str or None)
        Per question: edits appended, and the reason it stopped early (a grader's edit came
        in between and made the rest of the plan stale: it is refused, never forced). A
        question grouped, or last regrouped, by this version is left as it is: ``(0, None)``.

    Raises
    ------
    StoreError
        When a question named is not in the store; nothing is written then.
    """
    version = version or registry.active()
    chosen = list(questions) if questions is not None else store.question_ids()
    for qid in chosen:
        store.question(qid)  # every question named is known before anything is written
    encoder = registry.load(version, device=device)
    author = model_author(version)
    report = {}
    for qid in chosen:
        if _grouped_by(store, qid) in (author, encoder.model_key):  # None (late answers) never is
            # Grouped (or last regrouped) by this very version: a regroup would only re-cut
            # the answers nobody reviewed differently, for no new reason.
            report[qid] = (0, None)
            continue
        report[qid] = regroup_stored_question(store, qid, encoder, author, settings)
    return report


def _grouped_by(store, question_id: str) -> str | None:
    """Who last grouped the question's free answers: the author of its latest regroup by a
    model version still in effect (``model:<version>``), else the model key of its grouping;
    ``None`` when late answers came in since (they wait to be grouped)."""
    state = store.state(question_id)
    for edit_id in sorted(state.records, reverse=True):
        record = state.records[edit_id]
        if record.kind == "add_answers":
            return None
        if edit_id not in state.undone and record.undoes is None and _VERSION_AUTHOR.fullmatch(record.author):
            return record.author
    return store.model_version(question_id)


def regroup_stored_question(
    store, question_id: str, encoder, author: str, settings: GroupingSettings | None = None
) -> tuple[int, str | None]:
    """Regroup one stored question's free answers with ``encoder``, as logged edits.

    The question's current reference answers are used (``Store.question``: those set since
    import, else its own), so that references added after import regroup what nobody has
    reviewed yet.

    Parameters
    ----------
    store : Store
    question_id : str
    encoder : Encoder
    author : str
        A model author (``model:...``): such edits never become training pairs.
    settings : GroupingSettings, optional

    Returns
    -------
    (int, str or None)
        Edits appended, and why the plan stopped early when a grader's edit came in between
        (the rest is refused, never forced).
    """
    if not is_model_author(author):
        raise ValueError(f"regrouping edits are a model's; author {author!r} must start with {MODEL_AUTHOR_PREFIX!r}")
    state = store.state(question_id)
    question = store.question(question_id)
    answers = question.answers
    vectors = encoder.encode([a.normalized for a in answers], cache=store.embeddings).vectors
    references = question_references(question, encoder, cache=store.embeddings)
    return append_plan(store, question_id, author, state.version, regroup_question(state, answers, vectors, settings, references))


def append_plan(
    store, question_id: str, author: str, base: int, payloads: Sequence[Payload]
) -> tuple[int, str | None]:
    """Append a model's plan, made from version ``base``, edit by edit.

    Each edit is made against the version the plan reached (its own edits only): an edit by
    anyone else in between is one the plan never saw, so the next edit is checked against it
    (refused where it conflicts) and the plan stops after it. The rest is never forced.

    Returns
    -------
    (int, str or None)
        Edits appended, and why the plan stopped early (``STALE_PLAN``, or the refusal).
    """
    from grouper.edits import EditRefused

    done = 0
    try:
        for payload in payloads:
            edit = store.append(question_id, author, base, payload)
            done += 1
            if edit.edit_id != base + 1:
                return done, STALE_PLAN
            base = edit.edit_id
    except EditRefused as exc:
        return done, str(exc)
    return done, None
