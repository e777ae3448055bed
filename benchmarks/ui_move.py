"""How long a "move" takes in the grading UI, click to updated page, for 1,000 answers.

Builds a question of 1,000 answers (the sample answers of all three sample questions, each
twice, the second time re-cased and re-punctuated, so that groups are realistic in number
and size), imports it with ``grouper.intake.import_questions``, serves it with ``grouper ui``
and drives Debian's Chromium with Playwright: open the largest group, tick its least
typical answer, click "Move", and time until

- ``message``: the "Moved 1 answer(s)" confirmation is on screen (the store has committed
  the edit and the fragment has redrawn with the new state), and
- ``settled``: Streamlit reports the run finished and nothing on the page is stale.

Usage::

    .venv/bin/python benchmarks/ui_move.py [--answers 1000] [--moves 7] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

from conftest import CHROMIUM, CHROMIUM_ARGS, NetworkGuard, click_table_row, message, serve, settle, sign_in  # noqa: E402

from grouper.answers import Answer, Question, load_answers  # noqa: E402
from grouper.embedding import Encoder  # noqa: E402
from grouper.intake import import_questions  # noqa: E402
from grouper.store import Store  # noqa: E402


def _variant(text: str) -> str:
    """A second student's version of the same answer: other case, other final punctuation."""
    flipped = text.lower() if text != text.lower() else text.capitalize()
    return flipped.rstrip(".!") + ("." if not flipped.endswith(".") else "")


def bench_question(n: int) -> Question:
    """``n`` answers drawn from the sample data, as one question."""
    texts = [
        a.text
        for path in sorted((REPO / "sample_data").glob("*.csv"))
        for q in load_answers(path)
        for a in q.answers
    ]
    pool = texts + [_variant(t) for t in texts]
    answers = tuple(Answer(f"b{i:04d}", "bench", pool[i % len(pool)]) for i in range(n))
    return Question("bench", "Benchmark question (sample answers of q1-q3)", answers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=1000)
    parser.add_argument("--moves", type=int, default=7)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)

    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        with Store.open(db) as store:
            import_questions(store, [bench_question(args.answers)], Encoder())
            state = store.state("bench")
        largest = max(len(g.members) for g in state.groups.values())
        message_s: list[float] = []
        settled_s: list[float] = []
        with serve(db, Path(tmp)) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            context = browser.new_context(viewport={"width": 1400, "height": 1000})
            guard = NetworkGuard()
            context.route("**/*", guard.route)
            page = context.new_page()
            page.set_default_timeout(60_000)
            sign_in(page, server.url, "bench")  # the groups page opens on the largest group
            for i in range(args.moves):
                click_table_row(page, 1, 0)
                settle(page)
                started = time.perf_counter()
                page.get_by_role("button", name="Move", exact=True).click()
                message(page, "Moved 1 answer(s)")
                message_s.append(time.perf_counter() - started)
                page.get_by_text(f"Version {i + 1}.").wait_for()
                settle(page, quiet_ms=0)
                settled_s.append(time.perf_counter() - started)
                settle(page)
            browser.close()
        with Store.open(db) as store:
            logged = len(store.edits("bench"))
    result = {
        "answers": args.answers,
        "groups": len(state.groups),
        "largest_group": largest,
        "moves": args.moves,
        "edits_logged": logged,
        "click_to_message_s": {
            "median": statistics.median(message_s),
            "min": min(message_s),
            "max": max(message_s),
        },
        "click_to_settled_s": {
            "median": statistics.median(settled_s),
            "min": min(settled_s),
            "max": max(settled_s),
        },
        "requests_outside_localhost": guard.outside,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if logged == args.moves and not guard.outside else 1


if __name__ == "__main__":
    raise SystemExit(main())
