"""``grouper ui``: open the grading UI (the Streamlit app in ``ui/``) on a store.

The app runs as a child process (``python -m streamlit run ui/app.py``) so that the library
never imports Streamlit. It is bound to localhost unless told otherwise, and then only with a
staff list: a UI reachable from the network with no sign-in would let anyone edit grades
under any name.

``--import-samples`` first imports and groups the project's sample data into the store (once:
questions already there are left alone), so that ``make demo`` is one call::

    grouper ui --db var/demo.sqlite --import-samples
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import signal
import subprocess
import sys
from pathlib import Path

from grouper.commands._model_options import active_encoder, add_models_option, registry_of

__all__ = ["APP_SCRIPT", "check_bind_address", "register", "streamlit_command"]

#: The app's entry script; the package is installed editable from the repository.
APP_SCRIPT = Path(__file__).resolve().parents[2] / "ui" / "app.py"

#: Environment variables through which the command tells the app what to open.
DB_ENV = "GROUPER_DB"
STAFF_FILE_ENV = "GROUPER_STAFF_FILE"
MODELS_ENV = "GROUPER_MODELS_DIR"  # read by grouper.model_versions.default_models_dir


def check_bind_address(host: str, staff_file: str | None) -> None:
    """Refuse to serve beyond this machine without sign-in.

    Raises
    ------
    ValueError
        When ``host`` is not a loopback address and no staff list is given.
    """
    if not _is_loopback(host) and not staff_file:
        raise ValueError(
            f"--host {host} would let anyone who reaches this machine edit grades under any name; "
            "configure OpenID Connect ([auth] in .streamlit/secrets.toml) and pass --staff-file, "
            "or keep the default --host 127.0.0.1"
        )


def streamlit_command(app: Path, host: str, port: int) -> list[str]:
    """The command line that serves ``app``: headless, no file watcher, no usage statistics
    (the browser must not contact anything but this server)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(app),
        "--server.address",
        host,
        "--server.port",
        str(port),
        "--server.headless",
        "true",
        "--server.fileWatcherType",
        "none",
        "--server.runOnSave",
        "false",
        "--browser.gatherUsageStats",
        "false",
        "--global.developmentMode",
        "false",
        "--client.toolbarMode",
        "viewer",
        "--client.showErrorDetails",
        "false",
    ]


def _import_samples(db: Path, args: argparse.Namespace) -> list[str]:
    """Import and group the sample questions not yet in the store (``grouper import``'s path)."""
    from grouper.answers import load_answers
    from grouper.commands.group import SAMPLE_DATA
    from grouper.intake import import_questions
    from grouper.store import Store

    with Store.open(db) as store:
        known = set(store.question_ids())
        questions = [
            q
            for path in sorted(SAMPLE_DATA.glob("*.csv"))
            for q in load_answers(path)
            if q.question_id not in known
        ]
        if not questions:
            print(f"grouper: the sample questions are already in {db}", file=sys.stderr)
            return []
        imported = import_questions(store, questions, active_encoder(args))
    print(
        f"grouper: imported and grouped sample question(s) {', '.join(imported)} into {db}", file=sys.stderr
    )
    return imported


def _store_path(value: str | None) -> Path:
    """The SQLite file the UI serves (``--db``, else ``$GROUPER_DB``), checked to be one."""
    from grouper.store import is_sqlite_database

    value = value or os.environ.get(DB_ENV)
    if not value:
        raise ValueError("name the store: --db FILE (or set GROUPER_DB)")
    if "://" in value:
        raise ValueError(f"grouper ui serves a SQLite file; give its path, not the URL {value}")
    db = Path(value).expanduser().resolve()
    if db.is_dir():
        raise ValueError(f"--db {value} is a folder; name a database file, e.g. {db / 'grades.sqlite'}")
    if db.is_file() and db.stat().st_size and not is_sqlite_database(db):
        raise ValueError(f"--db {value} is not a SQLite database; name another file (a new one is created)")
    if db.is_file() and db.stat().st_size:
        from grouper.store import Store

        # Another program's database, or a newer grouper's, is said now, not by the first page.
        Store.open(db).close()
    return db


def _secrets_with_auth() -> list[Path]:
    """The Streamlit secrets files (the project's, then the user's) with an [auth] section."""
    import tomllib

    found = []
    for path in (Path.cwd() / ".streamlit" / "secrets.toml", Path.home() / ".streamlit" / "secrets.toml"):
        try:
            if "auth" in tomllib.loads(path.read_text(encoding="utf-8")):
                found.append(path)
        except (OSError, ValueError):
            continue
    return found


def _preflight(args: argparse.Namespace) -> Path:
    """Everything that can be wrong before the server starts, said in one line each."""
    from grouper.access import load_staff_list
    from grouper.embedding import choose_device

    check_bind_address(args.host, args.staff_file)
    if not 1 <= args.port <= 65535:
        raise ValueError(f"--port {args.port} is not a port (1 to 65535)")
    if args.staff_file:
        load_staff_list(args.staff_file)  # StaffListError names the file and the entry
    if not _is_loopback(args.host) and not _secrets_with_auth():
        # Without [auth] the app falls back to its name form: whoever reaches it would be an
        # instructor.
        raise ValueError(
            f"--host {args.host} needs OpenID Connect: no .streamlit/secrets.toml with an [auth] section "
            f"(in {Path.cwd()} or {Path.home()}); see README.md"
        )
    if args.device:
        choose_device(args.device)
    registry_of(args)  # a mistyped --models is said now
    return _store_path(args.db)


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _cmd_ui(args: argparse.Namespace) -> int:
    db = _preflight(args)
    if not APP_SCRIPT.is_file():
        print(
            f"grouper: the UI app is not at {APP_SCRIPT}; install grouper from its repository",
            file=sys.stderr,
        )
        return 1
    db.parent.mkdir(parents=True, exist_ok=True)
    if args.import_samples:
        try:
            _import_samples(db, args)
        except KeyboardInterrupt:
            # One transaction: nothing of the interrupted import is in the store.
            print("grouper: interrupted; nothing was imported", file=sys.stderr)
            return 130
    env = dict(os.environ)
    env[DB_ENV] = str(db)
    if args.models:
        # The app's pages open the registry by its default, which this variable names.
        env[MODELS_ENV] = str(Path(args.models).resolve())
    if args.staff_file:
        env[STAFF_FILE_ENV] = str(Path(args.staff_file).resolve())
    if args.device:
        env["GROUPER_DEVICE"] = args.device  # read by grouper.embedding.choose_device in the app
    command = streamlit_command(APP_SCRIPT, args.host, args.port)
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"grouper: serving {db} at http://{shown}:{args.port} (Ctrl-C stops it)", file=sys.stderr)
    return _run_forwarding_signals(command, env)


def _run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """Run the server; a SIGTERM to this process stops it too, so it is never orphaned.

    Returns the server's exit status, ``128 + N`` when signal N ended it (as a shell says).
    """
    process = subprocess.Popen(command, env=env)
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: process.send_signal(signum))
    try:
        code = process.wait()
    except KeyboardInterrupt:
        # From a terminal the server got the same Ctrl-C; a SIGINT sent to this process
        # alone did not reach it: pass it on when it has not stopped within a few seconds.
        try:
            code = process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGINT)
            try:
                code = process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.terminate()
                code = process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 128 - code if code < 0 else code


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``ui`` command."""
    ui = sub.add_parser("ui", help="serve the grading UI (open the address it prints in a browser)")
    ui.add_argument("--db", help="the store: a SQLite file, created when absent (default: $GROUPER_DB)")
    ui.add_argument("--port", type=int, default=8501, help="port to serve on (default 8501)")
    ui.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    ui.add_argument(
        "--staff-file", help="TOML/JSON staff list (e-mail -> ta | instructor) for OpenID Connect"
    )
    ui.add_argument(
        "--import-samples",
        action="store_true",
        help="import and group the sample data first (once per question)",
    )
    ui.add_argument("--device", help="cpu, cuda or cuda:N for grouping (default: CUDA when present)")
    add_models_option(ui)
    ui.set_defaults(func=_cmd_ui)
