"""A grader that never stops: appends edits to a store and acknowledges each on stdout.

Run by tests/test_crash_safety.py, which kills it with SIGKILL at random points. A line
``ACK <edit_id> <payload JSON>`` is printed only after ``Store.append`` has returned, that is
after the edit's row was committed: every acknowledged edit must survive the kill.

Usage: python crash_writer.py DB_PATH SEED
"""

from __future__ import annotations

import json
import random
import sys

from grouper.edit_codec import payload_to_dict
from grouper.edits import NEW, EditRefused, GradeGroup, Merge, Move, Rename, Undo
from grouper.store import Store


def next_payload(state, rng: random.Random):
    groups = sorted(state.groups)
    kind = rng.choices(["rename", "grade", "move", "undo", "merge"], weights=[4, 3, 4, 2, 1])[0]
    if kind == "rename" and groups:
        return Rename(rng.choice(groups), f"title {state.version + 1}")
    if kind == "grade" and groups:
        return GradeGroup(rng.choice(groups), float(rng.randint(0, 4)), rng.choice(["", "ok", "=1+1"]))
    if kind == "undo" and state.version:
        return Undo(state.version)
    if kind == "merge" and len(groups) > 3:
        a, b = rng.sample(groups, 2)
        return Merge(a, (b,))
    answer = rng.choice(list(state.positions))
    return Move((answer,), rng.choice([*groups, None, NEW]))


def main() -> None:
    path, seed = sys.argv[1], int(sys.argv[2])
    rng = random.Random(seed)
    store = Store.open(path, snapshot_every=5)
    print("READY", flush=True)
    while True:
        state = store.state("q1")
        payload = next_payload(state, rng)
        try:
            edit = store.append("q1", "writer", state.version, payload)
        except EditRefused:
            continue  # an edit that would change nothing; pick another
        print(f"ACK {edit.edit_id} {json.dumps(payload_to_dict(payload), sort_keys=True)}", flush=True)


if __name__ == "__main__":
    main()
