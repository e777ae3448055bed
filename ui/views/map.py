"""Map: every answer of the question as a point (a 2-D projection of its embedding),
coloured by its current group; hovering shows the answer's text.

The projection (``grouper.review.project_2d``) is cached per question: embeddings do not
change with edits, only the colours do. Vega-Lite's tooltip escapes HTML, so answer text in
it is shown as text.
"""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

import ui_common
from grouper.access import Action

identity = ui_common.require(Action.REVIEW)
st.title("Map")
question_id = ui_common.choose_question()
if question_id is None:
    st.stop()
texts = ui_common.answer_texts(question_id)
ids, xy = ui_common.answer_map(question_id)
state = ui_common.load_state(question_id)


def _group_name(answer_id: str) -> str:
    gid = state.group_of(answer_id)
    return "ungrouped" if gid is None else f"group {gid}"


points = pd.DataFrame(
    {
        "x": xy[:, 0],
        "y": xy[:, 1],
        "answer_id": ids,
        "group": [_group_name(a) for a in ids],
        "answer": [ui_common.shorten(texts[a], 300) for a in ids],
    }
)
st.text(f"{len(ids)} answers in {len(state.groups)} groups; nearby points have similar meaning.")
chart = (
    alt.Chart(points)
    .mark_circle(size=70, opacity=0.8)
    .encode(
        x=alt.X("x:Q", axis=None),
        y=alt.Y("y:Q", axis=None),
        color=alt.Color(
            "group:N",
            scale=alt.Scale(scheme="tableau20"),
            legend=alt.Legend(title="Group", columns=2, symbolLimit=60),
        ),
        tooltip=[
            alt.Tooltip("answer:N", title="Answer"),
            alt.Tooltip("group:N"),
            alt.Tooltip("answer_id:N", title="Id"),
        ],
    )
    .properties(height=620)
    .interactive()
)
st.altair_chart(chart, width="stretch")
