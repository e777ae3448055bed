"""``grouper ui``: how it starts Streamlit, where it binds, and ``--import-samples``."""

from __future__ import annotations

import subprocess
import sys

import pytest

from grouper.cli import build_parser
from grouper.commands import ui as ui_command
from grouper.store import Store
from test_ui_app import db, errors, new_app, template_db  # noqa: F401


def test_ui_command_is_registered_with_localhost_defaults():
    args = build_parser().parse_args(["ui", "--db", "x.sqlite"])
    assert (args.host, args.port, args.import_samples, args.staff_file) == ("127.0.0.1", 8501, False, None)


def test_streamlit_is_run_headless_on_the_given_address_without_telemetry():
    command = ui_command.streamlit_command(ui_command.APP_SCRIPT, "127.0.0.1", 8600)
    assert command[1:5] == ["-m", "streamlit", "run", str(ui_command.APP_SCRIPT)]
    options = dict(zip(command[5::2], command[6::2], strict=True))
    assert options["--server.address"] == "127.0.0.1"
    assert options["--server.port"] == "8600"
    assert options["--server.headless"] == "true"
    assert options["--browser.gatherUsageStats"] == "false"  # the browser contacts only this server
    assert ui_command.APP_SCRIPT.is_file()


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_addresses_need_no_sign_in(host):
    ui_command.check_bind_address(host, None)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.5", "grader.example.edu"])
def test_other_addresses_need_a_staff_list(host):
    with pytest.raises(ValueError, match="anyone who reaches this machine edit grades"):
        ui_command.check_bind_address(host, None)
    ui_command.check_bind_address(host, "staff.toml")


def test_refusing_to_bind_publicly_starts_nothing(tmp_path, monkeypatch, capsys):
    from grouper.cli import main

    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    assert main(["ui", "--db", str(tmp_path / "x.sqlite"), "--host", "0.0.0.0"]) == 2
    assert started == [] and "--host 0.0.0.0" in capsys.readouterr().err


def test_everything_wrong_is_said_before_the_server_starts(tmp_path, foreign_sqlite, monkeypatch, capsys):
    from grouper.cli import main

    started = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: started.append(a))
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml here
    monkeypatch.setenv("HOME", str(tmp_path))
    staff = tmp_path / "staff.toml"
    staff.write_text('[staff]\n"ada@example.edu" = "instructor"\n')
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a database")
    foreign = foreign_sqlite
    cases = [
        (["--db", str(foreign)], "is a database but not a grouper store (its tables: notes)"),
        (["--db", str(tmp_path / "a.sqlite"), "--models", str(tmp_path / "no" / "models")], "does not exist; check the path"),
        # A staff list but no [auth]: the app would fall back to its name form, for everyone.
        (["--db", str(tmp_path / "a.sqlite"), "--host", "0.0.0.0", "--staff-file", str(staff)], "needs OpenID Connect"),
        (["--db", str(tmp_path / "a.sqlite"), "--staff-file", str(tmp_path / "missing.toml")], "missing.toml"),
        (["--db", str(junk)], "is not a SQLite database"),
        (["--db", str(tmp_path)], "is a folder"),
        (["--db", f"sqlite:///{tmp_path}/u.sqlite"], "give its path, not the URL"),
        (["--db", str(tmp_path / "a.sqlite"), "--port", "70000"], "--port 70000 is not a port"),
        (["--db", str(tmp_path / "a.sqlite"), "--device", "bogus"], "'bogus' is not a device"),
    ]
    for argv, message in cases:
        assert main(["ui", *argv]) == 2, argv
        assert message in capsys.readouterr().err, argv
    assert started == [] and not (tmp_path / "sqlite:").exists()
    monkeypatch.setenv("GROUPER_DB", str(junk))
    assert main(["ui"]) == 2 and "is not a SQLite database" in capsys.readouterr().err


def test_the_app_refuses_its_name_form_when_served_to_the_network(db, monkeypatch):
    import streamlit as st

    at = new_app()
    at.run()
    assert not errors(at)  # on this machine: the name form
    # server.address is fixed once the server starts (AppTest starts none): read as if the
    # server had been started with --server.address 0.0.0.0.
    real = st.get_option
    # Unset (`streamlit run ui/app.py` without an address) Streamlit listens on every interface.
    for address in ("0.0.0.0", "", None):
        monkeypatch.setattr(st, "get_option", lambda key, a=address: a if key == "server.address" else real(key))
        at = new_app()
        at.run()
        assert errors(at) == ["This server is reachable from the network, but no sign-in is configured ([auth] secrets)."]


def test_ui_passes_the_store_to_the_app_and_imports_samples_once(tmp_path, monkeypatch):
    """--import-samples imports what is missing (through grouper.intake), then serves."""
    from grouper.cli import main
    from grouper.commands import group as group_command

    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "tiny.csv").write_text("answer_id,question_id,answer\na,tiny,yes\nb,tiny,yes\nc,tiny,no\n")
    monkeypatch.setattr(group_command, "SAMPLE_DATA", samples)
    calls = []

    class FakeServer:
        def __init__(self, command, env):
            calls.append((command, env))

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    db = tmp_path / "var" / "demo.sqlite"
    argv = ["ui", "--db", str(db), "--import-samples", "--port", "8777", "--device", "cpu"]
    assert main(argv) == 0
    assert main(argv) == 0  # the second time there is nothing left to import
    with Store.open(db) as store:
        assert store.question_ids() == ["tiny"]
        assert store.state("tiny").answer_ids == ("a", "b", "c")
    (command, env), _ = calls
    assert env["GROUPER_DB"] == str(db.resolve())
    assert "--server.port" in command and "8777" in command


def test_stopping_grouper_ui_stops_the_server(tmp_path):
    """SIGTERM to ``grouper ui`` reaches the server it started (no orphaned Streamlit)."""
    import signal
    import time

    script = tmp_path / "sleeper.py"
    script.write_text("import time\nwhile True: time.sleep(0.1)\n")
    driver = (
        "import sys; from grouper.commands import ui; "
        f"sys.exit(ui._run_forwarding_signals([sys.executable, {str(script)!r}], {{}}))"
    )
    parent = subprocess.Popen([sys.executable, "-c", driver])
    time.sleep(3)  # the child is running
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=20) == 128 + signal.SIGTERM  # the child's end, passed on


def test_the_library_never_imports_streamlit():
    modules = "grouper.cli, grouper.access, grouper.review, grouper.commands.ui"
    code = f"import sys, {modules}; print('streamlit' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_ui_models_folder_reaches_the_app_and_groups_the_samples(tmp_path, monkeypatch):
    """--models names the registry for the sample import and, through the environment, the app."""
    from grouper.cli import main
    from grouper.commands import group as group_command
    from grouper.model_versions import ModelRegistry
    from test_model_versions import publish_tiny

    monkeypatch.delenv("GROUPER_MODELS_DIR", raising=False)
    samples = tmp_path / "samples"
    samples.mkdir()
    (samples / "tiny.csv").write_text("answer_id,question_id,answer\na,tiny,yes\nb,tiny,yes\nc,tiny,no\n")
    monkeypatch.setattr(group_command, "SAMPLE_DATA", samples)
    card = publish_tiny(ModelRegistry(tmp_path / "models"), tmp_path)
    envs = []

    class FakeServer:
        def __init__(self, command, env):
            envs.append(env)

        def wait(self):
            return 0

    monkeypatch.setattr(subprocess, "Popen", FakeServer)
    db = tmp_path / "demo.sqlite"
    assert main(["ui", "--db", str(db), "--import-samples", "--models", str(tmp_path / "models"), "--device", "cpu"]) == 0
    assert envs[0]["GROUPER_MODELS_DIR"] == str((tmp_path / "models").resolve())
    with Store.open(db) as store:
        assert store.model_version("tiny").startswith(card.weights_sha256)
