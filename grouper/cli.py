"""The ``grouper`` command line: assembles the commands of ``grouper.commands``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from grouper.answers import AnswerFileError

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


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (2 for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (AnswerFileError, ValueError) as exc:
        print(f"grouper: {exc}", file=sys.stderr)
        return 2
