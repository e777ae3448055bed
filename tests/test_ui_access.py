"""The access rules of the UI (grouper.access): roles, staff lists, identities."""

from __future__ import annotations

import json

import pytest

from grouper.access import (
    AccessDenied,
    Action,
    Role,
    StaffList,
    StaffListError,
    allowed,
    load_staff_list,
    local_identity,
    oidc_identity,
    same_author,
    staff_list_path,
    validate_display_name,
)


def test_tas_edit_and_grade_but_do_not_import_export_or_retrain():
    assert {a for a in Action if allowed(Role.TA, a)} == {Action.REVIEW, Action.EDIT, Action.GRADE}


def test_instructors_may_do_everything():
    assert all(allowed(Role.INSTRUCTOR, a) for a in Action)


def test_staff_list_from_toml_is_case_insensitive(tmp_path):
    path = tmp_path / "staff.toml"
    path.write_text('[staff]\n"Ada@Example.edu" = "instructor"\n"ben@example.edu" = "TA"\n')
    staff = load_staff_list(path)
    assert staff.role_of("ada@example.EDU ") is Role.INSTRUCTOR
    assert staff.role_of("ben@example.edu") is Role.TA
    assert staff.role_of("eve@example.edu") is None
    assert staff.role_of(None) is None


def test_staff_list_from_json_object_alone(tmp_path):
    path = tmp_path / "staff.json"
    path.write_text(json.dumps({"ben@example.edu": "ta"}))
    assert load_staff_list(path).role_of("ben@example.edu") is Role.TA


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[staff]\n"ben@example.edu" = "professor"\n', "'professor' of 'ben@example.edu' is not one of"),
        ('[staff]\n"not-an-address" = "ta"\n', "is not an e-mail address"),
        ('[people]\n"ben@example.edu" = "ta"\n', 'expected a "staff" table'),
        ("[staff\n", "not a valid staff list file"),
        ('[staff]\n"ben@example.edu" = "ta"\n"BEN@example.edu" = "instructor"\n', "listed twice"),
    ],
)
def test_bad_staff_lists_are_refused_with_the_file_and_entry(tmp_path, text, message):
    path = tmp_path / "staff.toml"
    path.write_text(text)
    with pytest.raises(StaffListError, match="staff.toml") as info:
        load_staff_list(path)
    assert message in str(info.value)


def test_missing_staff_list_is_an_error(tmp_path):
    with pytest.raises(StaffListError, match="cannot read"):
        load_staff_list(tmp_path / "absent.toml")


def test_staff_list_path_env_wins_over_secrets(monkeypatch, tmp_path):
    monkeypatch.delenv("GROUPER_STAFF_FILE", raising=False)
    assert staff_list_path(None) is None
    assert staff_list_path({"staff_file": "/etc/staff.toml"}).as_posix() == "/etc/staff.toml"
    monkeypatch.setenv("GROUPER_STAFF_FILE", str(tmp_path / "s.toml"))
    assert staff_list_path({"staff_file": "/etc/staff.toml"}) == tmp_path / "s.toml"


def test_oidc_user_on_the_list_gets_their_role_and_is_the_author():
    staff = StaffList.from_mapping({"ben@example.edu": "ta"})
    who = oidc_identity({"email": "ben@example.edu", "name": "Ben", "email_verified": True}, staff)
    assert (who.author, who.display_name, who.role, who.signed_in_with) == (
        "ben@example.edu",
        "Ben",
        Role.TA,
        "oidc",
    )
    assert who.may(Action.GRADE) and not who.may(Action.EXPORT)
    with pytest.raises(AccessDenied, match="export needs an instructor"):
        who.require(Action.EXPORT)


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"email": "eve@example.edu"}, "not on the staff list"),
        ({"name": "No Mail"}, "no e-mail address"),
        ({"email": "ben@example.edu", "email_verified": False}, "not verified"),
        ({"email": "ben@example.edu", "email_verified": "false"}, "not verified"),  # claims as text
        ({"email": "ben@example.edu", "email_verified": 0}, "not verified"),
        # NFKC and casefolding would make these other mailboxes "ben@":
        ({"email": "ｂｅｎ@example.edu"}, "not on the staff list"),
        ({"email": "ben@example.edu".replace("b", "\u0299")}, "not on the staff list"),
    ],
)
def test_oidc_users_not_admitted(user, message):
    staff = StaffList.from_mapping({"ben@example.edu": "ta"})
    with pytest.raises(AccessDenied, match=message):
        oidc_identity(user, staff)


def test_one_person_is_one_author_whatever_case_the_provider_gives():
    staff = StaffList.from_mapping({"Ben@Example.edu": "ta"})
    assert oidc_identity({"email": "BEN@example.EDU", "email_verified": "true"}, staff).author == "ben@example.edu"
    assert same_author("Ben@Example.edu", "ben@example.edu") and not same_author("Ben", "ben")


def test_a_json_staff_list_naming_one_address_twice_is_refused(tmp_path):
    path = tmp_path / "staff.json"
    path.write_text('{"staff": {"ada@example.edu": "ta", "ada@example.edu": "instructor"}}')
    with pytest.raises(StaffListError, match="'ada@example.edu' given twice"):
        load_staff_list(path)


def test_local_identity_is_an_instructor_named_as_typed():
    who = local_identity("  Ada   Lovelace ")
    assert (who.author, who.role, who.signed_in_with) == ("Ada Lovelace", Role.INSTRUCTOR, "local")


@pytest.mark.parametrize(
    ("name", "message"),
    [("   ", "type your name"), ("x" * 81, "at most 80"), ("a\x00b", "control"), ("Model:x", "cannot start with 'model:'")],
)
def test_display_names_are_validated(name, message):
    with pytest.raises(ValueError, match=message):
        validate_display_name(name)
