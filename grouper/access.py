"""Who may use the grading assistant and what each role may do: pure rules, no web framework.

Two ways in, chosen by the deployment:

- **Local** (the default): the app is bound to localhost, so whoever reaches it is sitting at
  the machine. They type a display name once; every edit is attributed to it. The local user
  is an instructor: nobody else can reach the app.
- **OpenID Connect**: the deployment configures a provider (Streamlit's ``st.login``) and a
  staff list mapping e-mail addresses to roles. The provider proves the address; the staff
  list decides whether it gets in and with which role. Everyone else is refused.

Roles: a TA reviews, edits and grades groups; an instructor also imports answers, exports
grades and the training signal, and retrains the model. The UI asks :func:`allowed` before
showing a page or an action, and the same function is what the tests check.

A staff list is a TOML or JSON file::

    # staff.toml
    [staff]
    "ada@example.edu" = "instructor"
    "ben@example.edu" = "ta"
"""

from __future__ import annotations

import enum
import json
import os
import tomllib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "MODEL_AUTHOR_PREFIX",
    "STAFF_FILE_ENV",
    "AccessDenied",
    "Action",
    "Identity",
    "Role",
    "StaffList",
    "StaffListError",
    "allowed",
    "canonical_author",
    "local_identity",
    "load_staff_list",
    "oidc_identity",
    "same_author",
    "staff_list_path",
    "validate_display_name",
]

#: Environment variable naming the staff list file (a deployment may also name it in secrets).
STAFF_FILE_ENV = "GROUPER_STAFF_FILE"

_MAX_NAME_CHARS = 80


class Role(enum.StrEnum):
    """What a member of staff is to the course."""

    TA = "ta"
    INSTRUCTOR = "instructor"


#: Edits made by a model, not a person, are attributed to ``"model:<version>"`` (no person's
#: name may start so).
MODEL_AUTHOR_PREFIX = "model:"


class Action(enum.StrEnum):
    """Things the UI lets a user do; each page and button checks one of these."""

    REVIEW = "review"  # see groups, the ungrouped queue and the map
    EDIT = "edit"  # confirm, rename, merge, split, move, delete, undo
    GRADE = "grade"
    IMPORT = "import"
    EXPORT = "export"
    RETRAIN = "retrain"
    SET_MAX_SCORE = "set_max_score"  # a question's maximum score: the scale every grade is on
    UNDO_ANY = "undo_any"  # undo another grader's edit (anyone may undo their own)
    SET_REFERENCES = "set_references"  # a question's reference answers, and regrouping by them
    SET_RUBRIC = "set_rubric"  # a question's rubric: repricing an item regrades everyone who has it


# Declared as a table so that the whole policy can be read, and tested, at a glance.
_PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.TA: frozenset({Action.REVIEW, Action.EDIT, Action.GRADE}),
    Role.INSTRUCTOR: frozenset(Action),
}


def allowed(role: Role, action: Action) -> bool:
    """Whether ``role`` may perform ``action``."""
    return action in _PERMISSIONS[role]


class StaffListError(ValueError):
    """The staff list file is missing or malformed; the message names the file and entry."""


class AccessDenied(PermissionError):
    """A signed-in user who is not on the staff list, or an action their role lacks."""


def _canonical_email(email: str) -> str:
    # Providers disagree on case; addresses are compared case-insensitively in practice. NFC
    # and lower case only: NFKC and casefolding would make other mailboxes one ("ſam@" is
    # "sam@", "ａｄａ@" is "ada@" after them).
    return unicodedata.normalize("NFC", email).strip().lower()


@dataclass(frozen=True)
class StaffList:
    """E-mail address (compared case-insensitively) to role.

    Attributes
    ----------
    roles : mapping of str to Role
        Keys are canonical (NFC, stripped, lower-case) addresses.
    source : str
        Where the list came from, for messages.
    """

    roles: Mapping[str, Role] = field(default_factory=dict)
    source: str = "(none)"

    @classmethod
    def from_mapping(cls, entries: Mapping[str, Any], source: str = "(mapping)") -> StaffList:
        """Build from ``{email: "ta" | "instructor"}``, refusing anything else by name."""
        roles: dict[str, Role] = {}
        for email, role in entries.items():
            if not isinstance(email, str) or "@" not in email:
                raise StaffListError(f"{source}: entry {email!r} is not an e-mail address")
            try:
                parsed = Role(str(role).strip().lower())
            except ValueError:
                valid = ", ".join(repr(r.value) for r in Role)
                raise StaffListError(f"{source}: role {role!r} of {email!r} is not one of {valid}") from None
            key = _canonical_email(email)
            if key in roles and roles[key] != parsed:
                raise StaffListError(f"{source}: {email!r} is listed twice with different roles")
            roles[key] = parsed
        return cls(roles, source)

    def role_of(self, email: str | None) -> Role | None:
        """The role of ``email``, or ``None`` when it is not on the list."""
        if not email:
            return None
        return self.roles.get(_canonical_email(email))

    def __len__(self) -> int:
        return len(self.roles)


def load_staff_list(path: str | Path) -> StaffList:
    """Read a staff list from a ``.toml`` or ``.json`` file.

    The file holds a ``staff`` table (TOML) or object (JSON) mapping e-mail addresses to
    ``"ta"`` or ``"instructor"``; a JSON file may also be that object alone.

    Raises
    ------
    StaffListError
        When the file is missing, unreadable, or an entry is invalid.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StaffListError(f"{path}: cannot read the staff list ({exc.strerror})") from None
    try:
        if path.suffix.lower() == ".json":
            document = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=_refuse_repeated_keys)
        else:
            document = tomllib.loads(raw.decode("utf-8-sig"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise StaffListError(f"{path}: not a valid staff list file: {exc}") from None
    if isinstance(document, dict) and isinstance(document.get("staff"), dict):
        entries = document["staff"]
    elif isinstance(document, dict) and path.suffix.lower() == ".json":
        entries = document
    else:
        raise StaffListError(f'{path}: expected a "staff" table mapping e-mail addresses to roles')
    return StaffList.from_mapping(entries, str(path))


def _refuse_repeated_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # json keeps the last of two equal keys without a word; TOML refuses them: so do we.
    keys = [k for k, _ in pairs]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    if twice:
        raise ValueError(f"{', '.join(map(repr, twice))} given twice")
    return dict(pairs)


def staff_list_path(secrets_auth: Mapping[str, Any] | None = None) -> Path | None:
    """Where the deployment keeps its staff list: ``GROUPER_STAFF_FILE``, else the
    ``staff_file`` key of the ``[auth]`` secrets section, else nowhere."""
    value = os.environ.get(STAFF_FILE_ENV) or (secrets_auth or {}).get("staff_file")
    return Path(value) if value else None


@dataclass(frozen=True)
class Identity:
    """The person using the app, as the edit log records them.

    Attributes
    ----------
    author : str
        What every edit is attributed to: the e-mail address under OpenID Connect, the typed
        display name locally.
    display_name : str
        How the UI greets them.
    role : Role
    signed_in_with : {"local", "oidc"}
    """

    author: str
    display_name: str
    role: Role
    signed_in_with: str

    def may(self, action: Action) -> bool:
        """Whether this user may perform ``action``."""
        return allowed(self.role, action)

    def require(self, action: Action) -> None:
        """Raise :class:`AccessDenied` unless this user may perform ``action``."""
        if not self.may(action):
            raise AccessDenied(f"{self.author} is a {self.role.value}; {action.value} needs an instructor")


def validate_display_name(name: str) -> str:
    """The display name a local user typed, cleaned, or ``ValueError`` saying what is wrong.

    Returns
    -------
    str
        NFKC-normalised, whitespace collapsed, at most 80 characters, no control characters.
    """
    cleaned = " ".join(unicodedata.normalize("NFKC", name).split())
    if not cleaned:
        raise ValueError("type your name: every edit is recorded with it")
    if len(cleaned) > _MAX_NAME_CHARS:
        raise ValueError(f"the name has {len(cleaned)} characters; use at most {_MAX_NAME_CHARS}")
    if any(unicodedata.category(ch).startswith("C") for ch in cleaned):
        raise ValueError("the name contains control characters")
    if cleaned.casefold().startswith(MODEL_AUTHOR_PREFIX):
        # "model:..." authors are the models' edits, which regrouping may redo and training
        # leaves out: a person's must never read as one.
        raise ValueError(f"a name cannot start with {MODEL_AUTHOR_PREFIX!r}: that is how the models' edits are signed")
    return cleaned


def local_identity(name: str) -> Identity:
    """The identity of the person at a localhost deployment (an instructor)."""
    cleaned = validate_display_name(name)
    return Identity(author=cleaned, display_name=cleaned, role=Role.INSTRUCTOR, signed_in_with="local")


def oidc_identity(user: Mapping[str, Any], staff: StaffList) -> Identity:
    """The identity of a user signed in through OpenID Connect, if the staff list admits them.

    Parameters
    ----------
    user : mapping
        The provider's claims (``st.user``): ``email``, optionally ``email_verified`` and
        ``name``.
    staff : StaffList

    Raises
    ------
    AccessDenied
        When the address is missing, unverified, or not on the staff list.
    """
    email = user.get("email")
    if not isinstance(email, str) or not email.strip():
        raise AccessDenied("the identity provider did not say who you are (no e-mail address)")
    # A provider that reports the address unverified has not proved it belongs to this user;
    # some send the claim as text or a number. (Some send no claim at all: then the provider
    # vouches for the address it gives, as Microsoft's does.)
    verified = user.get("email_verified", True)
    if verified is not True and str(verified).strip().lower() not in ("true", "1"):
        raise AccessDenied(f"{email} is not verified by the identity provider")
    role = staff.role_of(email)
    if role is None:
        raise AccessDenied(f"{email} is not on the staff list of this course")
    name = user.get("name")
    display = name.strip() if isinstance(name, str) and name.strip() else email.strip()
    # One author per person, whatever case the provider gives the address in this time.
    return Identity(author=_canonical_email(email), display_name=display, role=role, signed_in_with="oidc")


def canonical_author(author: str) -> str:
    """An edit's author as one spelling per person: an address as the staff list compares it
    ("Ben@Example.edu", logged before sign-ins were, is "ben@example.edu"), a name as is."""
    return _canonical_email(author) if "@" in author else author


def same_author(a: str, b: str) -> bool:
    """Whether two edits' authors are one person (:func:`canonical_author`)."""
    return canonical_author(a) == canonical_author(b)
