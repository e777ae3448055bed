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

from grouper.commands._model_options import active_encoder, add_models_option

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
    if host == "localhost":
        return
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and not staff_file:
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


def _cmd_ui(args: argparse.Namespace) -> int:
    check_bind_address(args.host, args.staff_file)
    if not APP_SCRIPT.is_file():
        print(
            f"grouper: the UI app is not at {APP_SCRIPT}; install grouper from its repository",
            file=sys.stderr,
        )
        return 1
    db = Path(args.db).resolve()
    db.parent.mkdir(parents=True, exist_ok=True)
    if args.import_samples:
        _import_samples(db, args)
    env = dict(os.environ)
    env[DB_ENV] = str(db)
    if args.models:
        # The app's pages open the registry by its default, which this variable names.
        env[MODELS_ENV] = str(Path(args.models).resolve())
    if args.staff_file:
        env[STAFF_FILE_ENV] = str(Path(args.staff_file).resolve())
    command = streamlit_command(APP_SCRIPT, args.host, args.port)
    print(f"grouper: serving {db} at http://{args.host}:{args.port}", file=sys.stderr)
    return _run_forwarding_signals(command, env)


def _run_forwarding_signals(command: list[str], env: dict[str, str]) -> int:
    """Run the server; a SIGTERM to this process stops it too, so it is never orphaned.

    Returns the server's exit status, ``128 + N`` when signal N ended it (as a shell says).
    """
    process = subprocess.Popen(command, env=env)
    previous = signal.signal(signal.SIGTERM, lambda signum, _frame: process.send_signal(signum))
    try:
        code = process.wait()
    except KeyboardInterrupt:  # the child got the same Ctrl-C from the terminal
        code = process.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 128 - code if code < 0 else code


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``ui`` command."""
    ui = sub.add_parser("ui", help="open the grading UI in the browser")
    ui.add_argument("--db", required=True, help="the store: an SQLite file (created when absent)")
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
