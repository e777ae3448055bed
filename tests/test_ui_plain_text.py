"""Static check of ui/: student text never reaches a call that interprets Markdown or HTML.

Streamlit renders ``st.markdown``, ``st.write``, ``st.caption``, headings, alert bodies,
tabs, expanders and every widget label as Markdown (with HTML, LaTeX and icon directives).
Student text must go through ``st.text`` (``ui_common.plain``) or dataframe cells instead.
This test reads the page scripts' syntax trees and fails on any such call whose text could
carry student or user input, judged by the names it interpolates; the AppTest and browser
XSS tests check the rendered result.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

UI = Path(__file__).resolve().parents[1] / "ui"
SCRIPTS = sorted(UI.rglob("*.py"))

# Calls whose text arguments Streamlit interprets as Markdown.
MARKDOWN_CALLS = {
    "markdown",
    "write",
    "caption",
    "title",
    "header",
    "subheader",
    "info",
    "success",
    "warning",
    "error",
    "toast",
    "latex",
    "expander",
    "tabs",
    "popover",
    "status",
    "badge",
    "metric",
    "button",
    "download_button",
    "link_button",
    "page_link",
    "form_submit_button",
    "checkbox",
    "toggle",
    "radio",
    "selectbox",
    "multiselect",
    "text_input",
    "text_area",
    "number_input",
    "slider",
    "select_slider",
    "file_uploader",
    "dialog",
    "help",
    "write_stream",
    "progress",
    "spinner",
}
# Arguments of those calls that are rendered as Markdown (positional ones always are).
TEXT_KEYWORDS = {"label", "body", "help", "placeholder", "caption", "captions", "tabs", "text"}
# Names that carry student, grader or provider text: answer texts, titles, comments, the
# messages of refused edits (which quote titles), display names, question texts.
TAINTED = re.compile(
    r"text|title|answer|comment|exc|reason|detail|message|display_name|question|problem|name|headline", re.I
)
# Calls that make any text literal for a Markdown element (ui_common.literal_markdown).
LITERAL_CALLS = {"literal_markdown"}
# App-written values that merely contain a tainted word (none: a question id comes from a file).
CLEAN: set[str] = set()


def _names(node: ast.AST) -> list[str]:
    found = []
    stack = [node]
    while stack:
        sub = stack.pop()
        if isinstance(sub, ast.Call) and getattr(sub.func, "id", "") == "len":
            continue  # a count, whatever it counts
        if isinstance(sub, ast.Name):
            found.append(sub.id)
        elif isinstance(sub, ast.Attribute):
            found.append(sub.attr)
        stack.extend(ast.iter_child_nodes(sub))
    return found


def _tainted_names(node: ast.AST) -> list[str]:
    if isinstance(node, ast.Constant):
        return []
    if isinstance(node, ast.Call):
        called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
        if called in LITERAL_CALLS:
            return []
    return [n for n in _names(node) if TAINTED.search(n) and n not in CLEAN]


def _offences(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.keyword) and node.arg == "unsafe_allow_html":
            found.append(f"{path.name}:{node.value.lineno}: unsafe_allow_html")
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = (
            func.attr if isinstance(func, ast.Attribute) else (func.id if isinstance(func, ast.Name) else "")
        )
        if name == "html" or (isinstance(func, ast.Attribute) and name in {"html", "iframe"}):
            found.append(f"{path.name}:{node.lineno}: st.{name} renders raw HTML")
            continue
        if name not in MARKDOWN_CALLS:
            continue
        texts = list(node.args[:1]) + [k.value for k in node.keywords if k.arg in TEXT_KEYWORDS]
        for arg in texts:
            bad = _tainted_names(arg)
            if bad:
                found.append(f"{path.name}:{node.lineno}: {name}() gets {', '.join(sorted(set(bad)))}")
    return found


def test_there_are_page_scripts_to_check():
    names = {p.name for p in SCRIPTS}
    assert {"app.py", "ui_common.py", "groups.py", "import_answers.py", "export.py", "search.py", "history.py"} <= names


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_no_student_text_in_markdown_calls(path):
    assert _offences(path) == []


def test_the_check_catches_offences(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import streamlit as st\n"
        "st.markdown(answer.text)\n"
        "st.button(f'Move {title}', key='k')\n"
        "cols[0].error(str(exc))\n"
        "st.caption(help='x', body=comment)\n"
        "st.markdown('<b>x</b>', unsafe_allow_html=True)\n"
        "st.html('<p>')\n"
        "st.subheader(f'Group {gid}')\n"
        "st.text(answer.text)\n"
        "st.success(headline)\n"
        "st.success(ui_common.literal_markdown(headline))\n"
    )
    offences = _offences(bad)
    assert sorted(int(o.split(":")[1]) for o in offences) == [2, 3, 4, 5, 6, 7, 10]


def test_literal_markdown_leaves_nothing_for_markdown_to_act_on():
    import sys

    sys.path.insert(0, str(UI))
    from ui_common import literal_markdown

    shown = literal_markdown("Answer **b5** graded 1 (costs $5 :smile: <b>x</b> [l](u) a_b `c` ~~d~~ &amp;)")
    for mark in "*$<>[]_`~&":
        assert all(shown[i - 1] == "\\" for i, ch in enumerate(shown) if ch == mark)
    assert ":\u2060smile:" in shown and "\n" not in literal_markdown("two\nlines")
    assert literal_markdown("Your edit was not saved: the group changed.") == "Your edit was not saved: the group changed."
