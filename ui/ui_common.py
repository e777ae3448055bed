"""What every page of the grading UI shares: the store, the model, who is signed in.

Rules kept here so that each page script stays short:

- Shared truth lives in the store; ``st.cache_resource`` holds only read-only things that all
  sessions may share (the store handle, the encoder, embeddings of imported answers).
  Anything a user has typed or selected lives in their own ``st.session_state``.
- Student text is shown only through :func:`plain` or dataframe cells, which render text.
  Markdown-interpreting calls (``st.markdown``, ``st.write``, ``st.caption``, headers, alert
  bodies, widget labels) get only text this app wrote. ``tests/test_ui_plain_text.py``
  checks the page scripts for that.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from grouper.access import (
    AccessDenied,
    Action,
    Identity,
    StaffList,
    StaffListError,
    load_staff_list,
    local_identity,
    oidc_identity,
    same_author,
    staff_list_path,
)
from grouper.answers import Answer, Question
from grouper.edits import (
    NEW,
    AddAnswers,
    Change,
    CheckGrades,
    Edit,
    EditRefused,
    GradeAnswer,
    GradeGroup,
    Payload,
    QuestionState,
    SetMaxScore,
    SetReferences,
    SetRubric,
    Undo,
)
from grouper.embedding import Encoder, ModelIntegrityError
from grouper.grade_check import conflicts_among, identical_answers
from grouper.model_versions import ModelRegistry
from grouper.review import ConfidenceCue, confidence_cue, grade_change_summary, least_typical_first, project_2d
from grouper.store import NO_EXAM, QuestionInfo, Store, StoreBusy

#: The store the app opens; ``grouper ui --db`` sets it.
DB_ENV = "GROUPER_DB"

#: Session-state keys, initialised once per session by :func:`init_session`.
IDENTITY = "identity"
QUESTION = "question_id"
FLASH = "flash"
#: The identity the entry script established for the current run (local or OpenID Connect).
RUN_IDENTITY = "_run_identity"

_DEFAULTS: dict[str, Callable[[], Any]] = {
    IDENTITY: lambda: None,
    QUESTION: lambda: None,
    FLASH: list,
}


def init_session() -> None:
    """Give this browser session its own defaults, once."""
    for key, make in _DEFAULTS.items():
        if key not in st.session_state:
            st.session_state[key] = make()


def db_path() -> Path:
    """The SQLite file named by ``GROUPER_DB``; stops the page with a message when unset."""
    value = os.environ.get(DB_ENV)
    if not value:
        st.error("No store is open. Start the UI with `grouper ui --db PATH`.")
        st.stop()
    return Path(value)


def plain(text: str) -> None:
    """Show student (or any untrusted) text exactly as written: no Markdown, no HTML."""
    st.text(text)


# --------------------------------------------------------------------------- identity


def _auth_configured() -> bool:
    """Whether the deployment configured OpenID Connect (an ``[auth]`` secrets section)."""
    try:
        return "auth" in st.secrets
    except FileNotFoundError:  # StreamlitSecretNotFoundError: no secrets file, local mode
        return False


def _local_sign_in() -> Identity | None:
    """The name form of a localhost deployment; returns the identity once given."""
    st.title("grouper")
    st.write("Answer groups for grading. Type your name: every edit you make is recorded with it.")
    with st.form("sign-in"):
        name = st.text_input("Your name", key="sign-in-name", max_chars=80)
        submitted = st.form_submit_button("Start")
    if submitted:
        try:
            return local_identity(name)
        except ValueError as problem:
            st.error("That name cannot be used.")
            plain(str(problem))
    return None


def _oidc_identity() -> Identity:
    """The signed-in staff member, or the page stops with a sign-in button or a refusal."""
    if not st.user.is_logged_in:
        st.title("grouper")
        st.write("Sign in with your institution's account.")
        st.button("Sign in", on_click=st.login, key="oidc-login")
        st.stop()
    try:
        auth = dict(st.secrets["auth"])
        path = staff_list_path(auth)
        if path is None:
            raise StaffListError("no staff list is configured (GROUPER_STAFF_FILE or staff_file in [auth])")
        return oidc_identity(st.user.to_dict(), _staff_list(str(path)))
    except (AccessDenied, StaffListError) as exc:
        st.error("You cannot use this app.")
        plain(str(exc))
        st.button("Sign out", on_click=st.logout, key="oidc-logout")
        st.stop()


@st.cache_resource(ttl=60, show_spinner=False)
def _staff_list(path: str) -> StaffList:
    # Re-read at most once a minute: removing someone from the list takes effect quickly.
    return load_staff_list(path)


def _served_beyond_this_machine() -> bool:
    address = st.get_option("server.address")
    if not address:
        return True  # unset, Streamlit listens on every interface (`grouper ui` always sets it)
    if address == "localhost":
        return False
    try:
        return not ipaddress.ip_address(address).is_loopback
    except ValueError:
        return True  # a host name: reachable by others, as far as this app can tell


def signed_in() -> Identity:
    """Who is using this session; stops the script until someone has signed in."""
    if _auth_configured():
        return _oidc_identity()
    if _served_beyond_this_machine():
        # The name form makes whoever types a name an instructor: only for this machine.
        st.error("This server is reachable from the network, but no sign-in is configured ([auth] secrets).")
        st.stop()
    identity = st.session_state.get(IDENTITY)
    if identity is None:
        identity = _local_sign_in()
        if identity is None:
            st.stop()
        st.session_state[IDENTITY] = identity
        st.rerun()
    return identity


def _fresh_identity() -> Identity | None:
    """Who is signed in now, read again (the staff list is at most a minute old), without
    drawing anything; ``None`` when nobody is, or the staff list no longer admits them."""
    if not _auth_configured():
        return st.session_state.get(IDENTITY)
    if not st.user.is_logged_in:
        return None
    try:
        path = staff_list_path(dict(st.secrets["auth"]))
        return None if path is None else oidc_identity(st.user.to_dict(), _staff_list(str(path)))
    except (AccessDenied, StaffListError):
        return None


def later_check(action: Action) -> Callable[[], None]:
    """A check of ``action`` for work done later, outside any script run: a deferred download
    is built when the browser asks for it, with no page run and so no sign-in check. Made
    while the page is drawn (it captures who is signed in); it reads the staff list again when
    called and raises :class:`~grouper.access.AccessDenied` when they may no longer act."""
    if not _auth_configured():
        return lambda: None  # the name form: one person at this machine, nobody to remove
    user = st.user.to_dict()
    path = staff_list_path(dict(st.secrets["auth"]))

    def check() -> None:
        if path is None:
            raise AccessDenied("no staff list is configured")
        identity = oidc_identity(user, load_staff_list(path))  # AccessDenied when removed
        if not identity.may(action):
            raise AccessDenied(f"{identity.author}'s role ({identity.role.value}) cannot {action.value} any more")

    return check


def acting_identity(action: Action) -> Identity | None:
    """The signed-in user, checked again as they act: a click inside a fragment, or a
    callback, runs without the entry script's check, so someone removed from the staff list
    (or made a TA) since the page was drawn must not act with the old role. Says why and
    returns ``None`` when they may not ``action``.

    Parameters
    ----------
    action : Action

    Returns
    -------
    Identity or None
    """
    identity = _fresh_identity()
    if identity is None:
        st.session_state.pop(RUN_IDENTITY, None)
        flash("error", "Nothing was saved: you are not signed in (any more). Reload the page.")
        return None
    st.session_state[RUN_IDENTITY] = identity
    if not identity.may(action):
        what = action.value.replace("_", " ")
        flash("error", f"Nothing was saved: your role ({identity.role.value}) cannot {what}; ask an instructor.")
        return None
    return identity


def require_fresh(action: Action) -> Identity:
    """:func:`require`, with who is signed in read again: for the top of a fragment, whose
    reruns (every click inside it) skip the entry script's sign-in check, so that someone
    removed from the staff list since the page was drawn no longer reads the question."""
    identity = _fresh_identity()
    if identity is None or not identity.may(action):
        st.session_state.pop(RUN_IDENTITY, None)
        show_flashes()  # what the click's callback said (nothing saved, and why)
        st.error("You are not signed in (any more), or your role no longer allows this page. Reload the page.")
        st.stop()
    st.session_state[RUN_IDENTITY] = identity
    return identity


def may_log(identity: Identity, payload: Payload, state: QuestionState) -> bool:
    """Whether ``identity``'s role may log ``payload`` (as :func:`submit` will check): for
    drawing a button disabled rather than refusing its click."""
    return all(identity.may(a) for a in _actions_needed(payload, state, identity.author))


def _actions_needed(payload: Payload, state: QuestionState, author: str) -> list[Action]:
    """What a user must be allowed to log ``payload``: the page's own check, made again."""
    needs = {
        SetMaxScore.kind: Action.SET_MAX_SCORE,
        SetReferences.kind: Action.SET_REFERENCES,
        SetRubric.kind: Action.SET_RUBRIC,
        GradeGroup.kind: Action.GRADE,
        GradeAnswer.kind: Action.GRADE,
        CheckGrades.kind: Action.GRADE,
        AddAnswers.kind: Action.IMPORT,
    }
    if isinstance(payload, Undo):
        record = state.records.get(payload.edit_id)
        if record is None:
            return [Action.EDIT]  # the store refuses it, naming the edit
        # Undoing an undo applies again the edit at the bottom of the chain (a maximum score,
        # the references): that edit's action is what is asked for, and taking back another's
        # word, at either end, is undoing another's edit.
        chain = [record]
        while chain[-1].kind == Undo.kind and chain[-1].undoes in state.records and len(chain) <= len(state.records):
            chain.append(state.records[chain[-1].undoes])
        others = any(not same_author(r.author, author) for r in (record, chain[-1]))
        return [Action.EDIT, needs.get(chain[-1].kind, Action.EDIT), *([Action.UNDO_ANY] if others else [])]
    return [needs.get(payload.kind, Action.EDIT)]


def current_identity() -> Identity:
    """The identity the entry script established for this run."""
    identity = st.session_state.get(RUN_IDENTITY)
    if identity is None:  # a page run without the entry script (should not happen)
        st.error("Sign in first.")
        st.stop()
    return identity


def require(action: Action) -> Identity:
    """The current user, if their role may perform ``action``; otherwise the page stops."""
    identity = current_identity()
    if not identity.may(action):
        st.error(f"Your role ({identity.role.value}) cannot {action.value}; ask an instructor.")
        st.stop()
    return identity


# --------------------------------------------------------------------------- messages


def flash(kind: str, headline: str, detail: str | None = None) -> None:
    """Queue a message for the next run of this session (callbacks cannot draw in place).

    ``headline`` is app-written text; ``detail`` may hold student text and is shown plain.
    """
    st.session_state[FLASH].append((kind, headline, detail))


def literal_markdown(text: str) -> str:
    """``text`` for a Markdown-only element (``st.success``, ``st.error``) so that it shows as
    written: the marks inline Markdown acts on are backslash-escaped, and a word joiner
    (U+2060, invisible) follows a colon that touches a word, so that ``:smile:`` or
    ``:material/home:`` stays text. One line: newlines become spaces.

    Parameters
    ----------
    text : str
        App-written text that may name answers, groups and comments (from files and graders).

    Returns
    -------
    str
    """
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\g<0>", " ".join(text.splitlines()))
    return _SHORTCODE_COLON.sub(":\u2060", escaped)


# What inline Markdown (with Streamlit's LaTeX, strikethrough and tables) acts on; a headline
# starts with app text, so line-start marks (#, -, 1.) need no escape.
_MARKDOWN_SPECIAL = re.compile(r"[\\`*_\[\]<>$~|&]")
_SHORTCODE_COLON = re.compile(r":(?=\S)")


def show_flashes() -> None:
    """Draw and clear the queued messages. Headlines name answers, groups and comments, which
    come from files and graders: they are shown as written, never as Markdown."""
    for kind, headline, detail in st.session_state[FLASH]:
        if kind == "error":
            st.error(literal_markdown(headline))
        elif kind == "success":
            st.success(literal_markdown(headline))
        elif kind == "warning":
            st.warning(literal_markdown(headline))
        else:
            st.info(literal_markdown(headline))
        if detail:
            plain(detail)
    st.session_state[FLASH] = []


def still_open(question_id: str, gid: int) -> bool:
    """Whether ``gid`` is still the groups page's open group; else say so. A shortcut pressed
    right after "Next group" reaches the button drawn for the group just left (the page has
    not redrawn yet): it must not act on a group the grader is no longer looking at."""
    now = st.session_state.get(f"open-{question_id}")
    if now is not None and now != gid:
        flash("error", f"Group {gid} is no longer the open one (group {now} is): nothing done; press again.")
        return False
    return True


def group_label(state: QuestionState, gid: int) -> str:
    """Option label of a group: id, size and title. Selectbox options are plain text, never
    Markdown, so a student's title is safe here."""
    g = state.groups[gid]
    return f"Group {gid} ({len(g.members)}): {shorten(g.title, 50)}"


def move_target_label(state: QuestionState, option: object) -> str:
    """Label of a "move to" option: ``"ungrouped"``, ``NEW`` or a group id."""
    if option == "ungrouped":
        return "Ungrouped"
    if option == NEW:
        return "A new group"
    return group_label(state, int(option))


def remember_pick(key: str) -> None:
    """``on_change`` of a "move to" box: note what the grader picked (see :func:`pick_gone`)."""
    st.session_state[f"{key}-picked"] = st.session_state.get(key)


def pick_gone(key: str) -> object | None:
    """The group a grader picked in the "move to" box ``key`` when it is no longer the box's
    value, else ``None``.

    When another grader deletes or merges away the group picked, Streamlit puts the box back
    to its first option ("Ungrouped") without a word: a move must then go nowhere, rather than
    to the ungrouped answers.
    """
    picked = st.session_state.get(f"{key}-picked")
    return picked if picked is not None and picked != st.session_state.get(key) else None


def shorten(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis, newlines as spaces."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


# --------------------------------------------------------------------------- the store


@st.cache_resource(show_spinner=False)
def _open_store(path: str) -> Store:
    # One handle per server process, shared by every session: the store serialises writes
    # itself, and what a session sees is always read back from it.
    return Store.open(path)


def store() -> Store:
    """The store named by ``GROUPER_DB``."""
    return _open_store(str(db_path()))


def question_ids() -> list[str]:
    """Every imported question, in import order."""
    return list(store().question_ids())


def courses() -> list[str]:
    """The courses questions are filed under, sorted."""
    return sorted({i.course for i in store().questions() if i.course is not None})


def course_of(question_id: str) -> str | None:
    """The course the question is filed under, if any."""
    return next((i.course for i in store().questions() if i.question_id == question_id), None)


def _filed_label(info: QuestionInfo) -> str:
    """A question as the picker lists it: its id, and where it is filed."""
    if info.course is None:
        return info.question_id
    where = info.course if info.exam in (None, NO_EXAM) else f"{info.course}, {info.exam}"
    return f"{info.question_id} ({where})"


def choose_question() -> str | None:
    """The sidebar's question picker; the choice is kept per session across pages."""
    infos = store().questions()
    ids = [i.question_id for i in infos]
    if not ids:
        st.info("No answers imported yet. An instructor imports them on the Import page.")
        return None
    labels = {i.question_id: _filed_label(i) for i in infos}
    current = st.session_state.get(QUESTION)
    if current not in ids:
        current = ids[0]
    picked = st.sidebar.selectbox(
        "Question", ids, index=ids.index(current), key="question-picker", format_func=labels.get
    )
    st.session_state[QUESTION] = picked
    text = _question_text(str(db_path()), picked)
    if text:
        with st.sidebar:
            plain(shorten(text, 300))
    return picked


@st.cache_resource(show_spinner=False, max_entries=256)
def _question_text(path: str, question_id: str) -> str:
    # A question's text never changes once imported: read it once per process, not with all
    # its answers on every page run.
    return next((i.text for i in _open_store(path).questions() if i.question_id == question_id), "")


@st.cache_resource(show_spinner=False, max_entries=64)
def _answers(path: str, question_id: str, count: int) -> tuple[Answer, ...]:
    return _open_store(path).answers(question_id)


def answers_of(question_id: str) -> tuple[Answer, ...]:
    """The question's answers: import order, then late answers in the order they came.

    Answers are only ever added (never changed or removed), so their number in the current
    state is enough to key the cache: late answers show up on the next run.
    """
    return _answers(str(db_path()), question_id, len(load_state(question_id).positions))


@st.cache_resource(show_spinner=False, max_entries=64)
def _answer_texts(path: str, question_id: str, count: int) -> dict[str, str]:
    return {a.answer_id: a.text for a in _answers(path, question_id, count)}


def answer_texts(question_id: str) -> dict[str, str]:
    """Answer id to the text exactly as the student wrote it."""
    return _answer_texts(str(db_path()), question_id, len(load_state(question_id).positions))


def encoder() -> Encoder:
    """The active model version's encoder, shared read-only by all sessions.

    The registry's active version is read on every call (a small file), so that a version
    activated on the models page, or by ``grouper retrain`` in a shell, is what the next
    import and embedding use, without restarting the server.
    """
    registry = ModelRegistry()
    return _checked(registry, registry.active)


def question_encoder(question_id: str) -> Encoder:
    """The encoder of the model version that grouped the question.

    The question's groups, their cues, its map and the queue's suggestions live in that
    version's space, and the store cached those vectors when the question was imported, so
    nothing is embedded again after another version is activated. The active version when
    that one is no longer in the registry.
    """
    registry = ModelRegistry()
    model_key = store().model_version(question_id)
    return _checked(registry, lambda: registry.version_of(model_key) or registry.active())


def _checked(registry: ModelRegistry, version: Callable[[], str]) -> Encoder:
    try:
        return _encoder(str(registry.root), version())
    except ModelIntegrityError as problem:
        # Nothing is embedded with weights that fail their check; the models page (which
        # needs no encoder) can still roll back to a good version.
        st.error("A model version failed its integrity check. Activate another version on the Models page.")
        plain(str(problem))
        st.stop()


@st.cache_resource(show_spinner="Loading the model", max_entries=3)
def _encoder(root: str, version: str) -> Encoder:
    return ModelRegistry(Path(root)).load(version)


def _content_key(question_id: str, answers: Sequence[Answer]) -> str:
    """What a question's embeddings depend on: its grouping model and the answers' ids and
    texts.

    Keyed by content rather than by store and question, so that the same answers opened
    from another store (a copy, a test) reuse the vectors.
    """
    digest = hashlib.sha256(store().model_version(question_id).encode())
    for a in answers:
        digest.update(b"\x1e" + a.answer_id.encode() + b"\x1f" + a.normalized.encode())
    return digest.hexdigest()


class _VectorCache:
    """Embeddings of questions' answers, shared read-only by all sessions of the process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.vectors: dict[str, dict[str, np.ndarray]] = {}
        self.maps: dict[str, tuple[list[str], np.ndarray]] = {}
        # A group's confidence cue by (its vectors' dict, its members): the dicts above are
        # never evicted while this cache lives, so their ids name them.
        self.cues: dict[tuple[int, tuple[str, ...]], ConfidenceCue] = {}


@st.cache_resource(show_spinner=False)
def _vector_cache() -> _VectorCache:
    return _VectorCache()


def _remember_vectors(key: str, answers: Sequence[Answer], vectors: np.ndarray) -> dict[str, np.ndarray]:
    cache = _vector_cache()
    by_id = {a.answer_id: vectors[i] for i, a in enumerate(answers)}
    with cache.lock:
        return cache.vectors.setdefault(key, by_id)


def answer_vectors(question_id: str) -> dict[str, np.ndarray]:
    """Answer id to its embedding by the question's grouping model; computed once per
    question's content and process."""
    answers = answers_of(question_id)
    key = _content_key(question_id, answers)
    cache = _vector_cache()
    with cache.lock:
        found = cache.vectors.get(key)
    if found is not None:
        return found
    with st.spinner(f"Embedding {len(answers)} answers"):
        # Usually read back from the store's embedding cache, filled when it was imported.
        encoded = question_encoder(question_id).encode([a.normalized for a in answers], cache=store().embeddings)
    return _remember_vectors(key, answers, encoded.vectors)


#: Cues remembered before the cue cache is emptied: each edit adds one per group it changed.
_MAX_CUES = 50_000


def group_cues(groups: dict[int, tuple[str, ...]], vectors: dict[str, np.ndarray]) -> dict[int, ConfidenceCue]:
    """Each group's confidence cue (``grouper.review.confidence_cue`` of its members'
    typicality), computed once per group content: an edit changes a few groups, and the list
    shows them all on every rerun (a third of the page's time at 10,000 answers otherwise)."""
    cache = _vector_cache()
    out: dict[int, ConfidenceCue] = {}
    missing: list[int] = []
    with cache.lock:
        for gid, members in groups.items():
            found = cache.cues.get((id(vectors), members))
            if found is None:
                missing.append(gid)
            else:
                out[gid] = found
    computed = {gid: confidence_cue([s for _, s in least_typical_first(groups[gid], vectors)]) for gid in missing}
    with cache.lock:
        if len(cache.cues) + len(computed) > _MAX_CUES:
            cache.cues.clear()
        for gid, cue in computed.items():
            cache.cues[(id(vectors), groups[gid])] = cue
    out.update(computed)
    return out


def answer_map(question_id: str) -> tuple[list[str], np.ndarray]:
    """Answer ids and their 2-D map positions (the projection never changes with edits)."""
    answers = answers_of(question_id)
    key = _content_key(question_id, answers)
    cache = _vector_cache()
    with cache.lock:
        found = cache.maps.get(key)
    if found is not None:
        return found
    vectors = answer_vectors(question_id)
    ids = [a.answer_id for a in answers]
    projected = (ids, project_2d(np.stack([vectors[a] for a in ids])))
    with cache.lock:
        return cache.maps.setdefault(key, projected)


def load_state(question_id: str) -> QuestionState:
    """The question's current state, read from the store (the shared truth)."""
    return store().state(question_id)


def remember_version(question_id: str, version: int) -> None:
    """Record the version this session is showing: its edits are made against it."""
    st.session_state[f"seen-{question_id}"] = version


def submit(question_id: str, payload: Payload, success: str, *, base: int | None = None) -> bool:
    """Append an edit by the signed-in user against the version they saw.

    A stale or impossible edit is refused by the store; the user is shown the reason (what
    changed, by whom) and nothing is overwritten.

    Parameters
    ----------
    question_id : str
    payload : Payload
    success : str
        Said when the edit is saved.
    base : int, optional
        The version the clicked control was drawn at. Give it wherever the control has it: a
        click can reach a button of an earlier run while a rerun is drawing the page anew
        (after "Next group", say), and the version this session last drew is then newer than
        what the grader saw. Default: that last drawn version (:func:`remember_version`).
    """
    edit = submit_quietly(question_id, payload, base=base)
    if edit is None:
        return False
    flash("success", success)
    state = load_state(question_id)
    change = state.last_change
    if change is None or change.edit_id != edit.edit_id:
        return True  # another edit came in since: its messages are not ours to give
    if payload.kind not in _GRADING_KINDS:
        # A move, merge, delete or undo can change the grade of answers nobody graded one by
        # one (they join or leave a graded group): say so, so that no grade changes silently.
        summary = grade_change_summary(change)
        if summary:
            flash("info", summary)
    _flash_conflicts(question_id, state, change)
    return True


_GRADING_KINDS = frozenset({"grade", "grade_answer"})  # their grade change is the point


@st.cache_resource(show_spinner=False, max_entries=64)
def _identical_answers(path: str, question_id: str, count: int) -> dict[str, tuple[str, ...]]:
    return identical_answers(_answers(path, question_id, count))


def _flash_conflicts(question_id: str, state: QuestionState, change: Change) -> None:
    """Say when an edit leaves answers it graded (or their identical answers) graded unlike
    most of their identical answers: such a grade is allowed, but never silently."""
    if not change.grade_changes:
        return
    identical = _identical_answers(str(db_path()), question_id, len(state.positions))
    conflicts = conflicts_among(state, identical, (g.answer_id for g in change.grade_changes))
    if conflicts:
        shown = ", ".join(list(conflicts)[:8]) + (" ..." if len(conflicts) > 8 else "")
        flash(
            "info",
            f"After this edit, {len(conflicts)} answer(s) are graded unlike most of their identical answers; "
            "the Check grades page lists them first.",
            shown,
        )


def submit_quietly(question_id: str, payload: Payload, *, base: int | None = None) -> Edit | None:
    """:func:`submit` without the success message, for a click that makes several edits; a
    refusal is still shown. Returns the logged edit, ``None`` when refused."""
    identity = current_identity()
    for action in _actions_needed(payload, load_state(question_id), identity.author):
        identity = acting_identity(action)
        if identity is None:
            return None
    if base is None:
        base = st.session_state.get(f"seen-{question_id}")
    if base is None:
        base = load_state(question_id).version
    try:
        return store().append(question_id, identity.author, base, payload)
    except EditRefused as refused:
        # The refusal says why (what changed since, and by whom; or why it never can be).
        flash("error", "Your edit was not saved.", str(refused))
        return None
    except StoreBusy as busy:  # other writers held the database past the store's wait
        flash("error", "Your edit was not saved: the database stayed busy. Press again.", str(busy))
        return None


def undo_last(question_id: str) -> bool:
    """Undo the signed-in user's latest edit of the question that is still in effect."""
    identity = current_identity()
    state = load_state(question_id)
    mine = [
        edit_id
        for edit_id, record in state.records.items()
        if same_author(record.author, identity.author) and record.kind != "undo" and edit_id not in state.undone
    ]
    if not mine:
        flash("info", "You have no edit of this question to undo.")
        return False
    return submit(question_id, Undo(max(mine)), f"Undid your edit {max(mine)}.")


def sample_files() -> list[Path]:
    """The project's sample answer files."""
    from grouper.commands.group import SAMPLE_DATA

    return sorted(SAMPLE_DATA.glob("*.csv"))


def import_and_group(
    questions: Sequence[Question],
    progress: Callable[[float, str], None],
    author: str = "import",
    *,
    course: str | None = None,
    exam: str | None = None,
) -> list[str]:
    """Import questions into the store, grouped: ``grouper.intake.import_questions``, the
    function behind ``grouper import``, with progress reported along the way.

    The slow part, embedding, runs first, chunk by chunk through the store's embedding cache
    so that progress can be shown; ``import_questions`` then finds every vector cached, groups
    every question and saves them. Nothing of a question is stored before all are grouped
    (the cache holds only vectors, keyed by text hash). ``author`` sets the maximum scores the
    file gives (the signed-in user); ``course`` and ``exam`` file the questions.
    """
    from grouper.intake import import_questions

    model = encoder()
    target = store()
    total = sum(len(q.answers) for q in questions) or 1
    done = 0
    for question in questions:
        texts = [a.normalized for a in question.answers]
        for start in range(0, len(texts), _EMBED_CHUNK):
            progress(
                0.9 * done / total,
                f"Embedding question {question.question_id}: answer {start + 1} of {len(texts)}",
            )
            model.encode(texts[start : start + _EMBED_CHUNK], cache=target.embeddings)
            done += len(texts[start : start + _EMBED_CHUNK])
    progress(0.9, f"Grouping and saving {len(questions)} question(s)")
    imported = import_questions(target, questions, model, author=author, course=course, exam=exam)
    progress(1.0, "Done")
    return imported


_EMBED_CHUNK = 128  # answers per progress step: a fraction of a second on a CPU
