"""How long a "move" takes in the grading UI, click to updated page, for 1,000 answers, against
bare Streamlit doing the same round trip.

Builds a question of 1,000 answers (the sample answers of all three sample questions, each
twice, the second time re-cased and re-punctuated, so that groups are realistic in number
and size), imports it with ``grouper.intake.import_questions``, serves it with ``grouper ui``
and drives Debian's Chromium with Playwright: open the largest group, tick its least
typical answer, click "Move", and time until

- ``message``: the "Moved 1 answer(s)" confirmation is on screen (the store has committed
  the edit and the fragment has redrawn with the new state), and
- ``settled``: Streamlit reports the run finished and nothing on the page is stale.

The peer, measured in the same run with the same browser and the same clicks, is a bare
Streamlit page with the same widgets and nothing behind them: a selectable table of as many
rows as the largest group, a "Move" button whose callback drops the ticked row from a list in
the session, and the same two texts. Its time is the framework's floor for this interaction
(websocket round trip, script rerun, table redraw); the ratio says what the store, the fold,
the edit log and the groups page add on top.

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

from conftest import (  # noqa: E402
    CHROMIUM,
    CHROMIUM_ARGS,
    NetworkGuard,
    click_table_row,
    free_port,
    message,
    serve,
    serve_command,
    settle,
    sign_in,
)

from grouper.answers import Answer, Question, load_answers  # noqa: E402
from grouper.embedding import Encoder  # noqa: E402
from grouper.intake import import_questions  # noqa: E402
from grouper.store import Store  # noqa: E402

#: The peer: the same widgets as the groups page's move, with nothing behind them.
PEER_APP = """
import os

import pandas as pd
import streamlit as st

if "rows" not in st.session_state:
    st.session_state.rows = [f"answer {i}" for i in range(int(os.environ["PEER_ROWS"]))]
    st.session_state.version = 0
    st.session_state.said = ""


def move():
    ticked = st.session_state.table.selection.rows
    for i in sorted(ticked, reverse=True):
        st.session_state.rows.pop(i)
    st.session_state.version += 1
    st.session_state.said = f"Moved {len(ticked)} answer(s)"


if st.session_state.said:
    st.success(st.session_state.said)
st.text(f"Version {st.session_state.version}.")
st.dataframe(pd.DataFrame({"answer": st.session_state.rows}), key="table", on_select="rerun", selection_mode="multi-row")
st.button("Move", on_click=move)
"""


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
        peer_script = Path(tmp) / "peer.py"
        peer_script.write_text(PEER_APP)
        port = free_port()
        peer_argv = [sys.executable, "-m", "streamlit", "run", str(peer_script), "--server.port", str(port),
                     "--server.headless", "true", "--browser.gatherUsageStats", "false"]
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            guard = NetworkGuard()
            with serve(db, Path(tmp)) as server:
                page = _page(browser, guard)
                sign_in(page, server.url, "bench")  # the groups page opens on the largest group
                ours = _moves(page, table_index=1, moves=args.moves)
            with serve_command(peer_argv, port, db, Path(tmp), env={"PEER_ROWS": str(largest)}) as peer_server:
                page = _page(browser, guard)
                page.goto(peer_server.url)
                settle(page)
                peer = _moves(page, table_index=0, moves=args.moves)
            browser.close()
        with Store.open(db) as store:
            logged = len(store.edits("bench"))
    result = {
        "answers": args.answers,
        "groups": len(state.groups),
        "largest_group": largest,
        "moves": args.moves,
        "edits_logged": logged,
        "click_to_message_s": _summary(ours[0]),
        "click_to_settled_s": _summary(ours[1]),
        "peer": "bare Streamlit page, same widgets, nothing behind them",
        "peer_click_to_message_s": _summary(peer[0]),
        "peer_click_to_settled_s": _summary(peer[1]),
        "requests_outside_localhost": guard.outside,
    }
    _table(result)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return 0 if logged == args.moves and not guard.outside else 1


def _page(browser, guard: NetworkGuard):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    context.route("**/*", guard.route)
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page


def _moves(page, table_index: int, moves: int) -> tuple[list[float], list[float]]:
    """Tick the first row of the table and click Move, ``moves`` times; seconds from the click
    to the confirmation, and to the page settled on the next version."""
    message_s: list[float] = []
    settled_s: list[float] = []
    for i in range(moves):
        click_table_row(page, table_index, 0)
        settle(page)
        started = time.perf_counter()
        page.get_by_role("button", name="Move", exact=True).click()
        message(page, "Moved 1 answer(s)")
        message_s.append(time.perf_counter() - started)
        page.get_by_text(f"Version {i + 1}.").wait_for()
        settle(page, quiet_ms=0)
        settled_s.append(time.perf_counter() - started)
        settle(page)
    return message_s, settled_s


def _summary(seconds: list[float]) -> dict[str, float]:
    return {"median": statistics.median(seconds), "min": min(seconds), "max": max(seconds)}


def _table(result: dict) -> None:
    print(f"{result['answers']} answers, {result['groups']} groups, largest {result['largest_group']}; "
          f"{result['moves']} moves each; peer: {result['peer']}")
    print(f"| {'measure (median, s)':<24} | {'grouper ui':>9} | {'bare Streamlit':>14} | {'ratio':>6} |")
    print(f"|{'-' * 26}|{'-' * 11}:|{'-' * 15}:|{'-' * 7}:|")
    for name, key in (("click to message", "click_to_message_s"), ("click to settled page", "click_to_settled_s")):
        ours, peer = result[key]["median"], result[f"peer_{key}"]["median"]
        print(f"| {name:<24} | {ours:>9.3f} | {peer:>14.3f} | {ours / peer:>6.2f} |")
    print(f"edits logged: {result['edits_logged']}; requests outside localhost: {len(result['requests_outside_localhost'])}")


if __name__ == "__main__":
    raise SystemExit(main())
