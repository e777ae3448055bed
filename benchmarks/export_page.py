"""How long the export page takes to draw on a large, corrected question, against the page as it
was before its files were deferred to the click.

Builds a question of ``--answers`` answers (``ui_move.bench_question``: the sample answers,
realistic groups), imports it with the real encoder, then corrects it as graders do: a tenth of
the members of each group moved out to the ungrouped answers (at most 1,000 moves) and every
other group graded. The export page is drawn with Streamlit's AppTest (the script runs as in the
browser, without one), best of ``--repeat`` reruns:

- ``deferred`` (the product): the page reads the states, answers and log for its counts; each
  file is built when its download button is clicked (Streamlit's callable ``data``);
- ``eager`` (the peer, the page before this change, run from git in the same process on the same
  store): every file built on every draw, the training pairs included.

It also times each file as a click builds it, through the same writers.

Usage::

    .venv/bin/python benchmarks/export_page.py [--answers 10000] [--repeat 3] [--before REV]
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from ui_move import bench_question  # noqa: E402

from grouper.edits import GradeGroup, Move  # noqa: E402
from grouper.embedding import Encoder  # noqa: E402
from grouper.exports import (  # noqa: E402
    grade_rows,
    write_edit_log_jsonl,
    write_grades_by_student_csv,
    write_grades_csv,
    write_pairs_jsonl,
)
from grouper.feedback import PairFilter, training_pairs  # noqa: E402
from grouper.intake import import_questions  # noqa: E402
from grouper.store import Store  # noqa: E402

#: The export page before its files were deferred (the last commit with the eager page).
BEFORE = "8ca3734"


def corrected_store(path: Path, answers: int) -> int:
    """Import the benchmark question into ``path`` and correct it; the number of edits."""
    with Store.open(path) as store:
        import_questions(store, [bench_question(answers)], Encoder())
        state = store.state("bench")
        moved = 0
        for k, gid in enumerate(sorted(state.groups)):
            members = state.groups[gid].members
            for answer_id in members[-max(1, len(members) // 10) :]:
                if moved < 1000 and len(members) > 2:
                    store.append("bench", "ta", None, Move((answer_id,), None))
                    moved += 1
            if k % 2 == 0:
                store.append("bench", "ta", None, GradeGroup(gid, 1.0, "ok"))
        return len(store.edits("bench"))


def draw_seconds(app: Path, repeat: int) -> tuple[float, list[str]]:
    """Best time of ``repeat`` draws of the export page, and the page's texts."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(app), default_timeout=600)
    at.run()
    at.text_input(key="sign-in-name").input("bench")
    at.button[0].click().run()
    at.switch_page("views/export.py").run()
    if at.exception:
        raise RuntimeError(f"{app}: {at.exception[0].message}")
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        at.run()
        best = min(best, time.perf_counter() - started)
    return best, [t.value for t in at.text]


def click_seconds(db: Path) -> dict[str, float]:
    """What each download costs when clicked: the same reads and writers as the page's."""
    out: dict[str, float] = {}
    with Store.open(db) as store:
        state, answers = store.state("bench"), store.answers("bench")
        rows = grade_rows(state, answers)
        log = store.edits("bench")
        files = {
            "grades CSV": lambda o: write_grades_csv(rows, o),
            "grades by student CSV": lambda o: write_grades_by_student_csv(rows, o),
            "edit log JSONL": lambda o: write_edit_log_jsonl(log, o),
            "training pairs JSONL": lambda o: write_pairs_jsonl(
                training_pairs(store, select=PairFilter(question_ids=frozenset({"bench"}))), o
            ),
        }
        for name, write in files.items():
            started = time.perf_counter()
            write(io.StringIO(newline=""))
            out[name] = time.perf_counter() - started
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--before", default=BEFORE, help="git revision of the eager page (the peer)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        edits = corrected_store(db, args.answers)
        os.environ["GROUPER_DB"] = str(db)
        os.environ["GROUPER_MODELS_DIR"] = str(Path(tmp) / "models")
        os.environ.setdefault("GROUPER_DEVICE", "cpu")
        # The peer: the same app with the export page as it was, from git.
        before = Path(tmp) / "ui-before"
        shutil.copytree(REPO / "ui", before)
        old = subprocess.run(
            ["git", "show", f"{args.before}:ui/views/export.py"], cwd=REPO, check=True, capture_output=True, text=True
        ).stdout
        (before / "views" / "export.py").write_text(old)
        ours, texts = draw_seconds(REPO / "ui" / "app.py", args.repeat)
        peer, peer_texts = draw_seconds(before / "app.py", args.repeat)
        clicks = click_seconds(db)
    print(f"question of {args.answers:,} answers, {edits:,} edits; {texts[0]}")
    print(f"eager page says: {next(t for t in peer_texts if 'training pairs' in t)}")
    print()
    print("| export page | draw, best of %d | ratio to eager |" % args.repeat)
    print("|---|---:|---:|")
    print(f"| eager, every file built on every draw (peer, {args.before}) | {peer:.2f} s | 1.00 |")
    print(f"| deferred, each file built on its click (this commit) | {ours:.2f} s | {ours / peer:.2f} |")
    print()
    print("| file, built on its click | seconds |")
    print("|---|---:|")
    for name, seconds in clicks.items():
        print(f"| {name} | {seconds:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
