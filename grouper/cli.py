"""The ``grouper`` command line: assembles the commands of ``grouper.commands``."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from grouper.answers import AnswerFileError
from grouper.model_errors import ModelIntegrityError

__all__ = ["build_parser", "main"]

# Each module has register(subparsers). Add a command family by adding its module here.
COMMAND_MODULES = (
    "grouper.commands.group",
    "grouper.commands.ui",
    "grouper.commands.questions",
    "grouper.commands.check",
    "grouper.commands.queue",
    "grouper.commands.edit",
    "grouper.commands.export",
    "grouper.commands.retrain",
    "grouper.commands.evaluate",
)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``grouper`` command."""
    parser = argparse.ArgumentParser(prog="grouper", description="Group students' answers for grading.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


#: Exit status when the reader of the output went away (``grouper show | head``): what a
#: program killed by SIGPIPE reports, 128 + 13.
BROKEN_PIPE = 141


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input, 141 when the reader of
    the output stopped reading)."""
    args = build_parser().parse_args(argv)
    try:
        status = int(args.func(args))
        sys.stdout.flush()  # inside the try: a reader gone is found here, not at exit
        return status
    except (AnswerFileError, ValueError, ModelIntegrityError) as exc:
        # Bad input, or a model version whose files do not match its card: said, not traced.
        print(f"grouper: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # ``| head`` has what it wanted: no traceback. Point stdout at devnull so that the
        # interpreter's own flush at exit does not fail again (the Python docs' recipe).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return BROKEN_PIPE
    except OSError as exc:
        # A file or folder that cannot be read or written (a read-only models folder, say):
        # the system's words and the path, not a traceback.
        print(f"grouper: {exc}", file=sys.stderr)
        return 1
