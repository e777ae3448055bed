"""The grading UI's entry script: sign-in, then the pages this user's role may open.

Run it through ``grouper ui --db PATH``, which starts ``streamlit run ui/app.py`` bound to
localhost with ``GROUPER_DB`` set. Each page is one script in ``ui/views/``.
"""

from __future__ import annotations

import sys
from pathlib import Path

# Pages import the helpers beside this script; Streamlit runs scripts without a package.
_HERE = Path(__file__).resolve().parent
if str(_HERE) not in sys.path:
    sys.path.insert(0, str(_HERE))

import streamlit as st  # noqa: E402

import ui_common  # noqa: E402
from grouper.access import Action  # noqa: E402

# No page or app icons: a Material icon as a favicon makes the browser fetch it from Google.
st.set_page_config(page_title="grouper", layout="wide")
ui_common.init_session()
identity = ui_common.signed_in()
st.session_state[ui_common.RUN_IDENTITY] = identity

_VIEWS = _HERE / "views"
# An instructor with an empty store lands on Import; everyone else on Groups.
start_with_import = identity.may(Action.IMPORT) and not ui_common.question_ids()
pages = [
    st.Page(_VIEWS / "groups.py", title="Groups", default=not start_with_import, url_path="groups"),
    st.Page(_VIEWS / "queue.py", title="Ungrouped queue", url_path="queue"),
    st.Page(_VIEWS / "check.py", title="Check grades", url_path="check"),
    st.Page(_VIEWS / "search.py", title="Search", url_path="search"),
    st.Page(_VIEWS / "history.py", title="History", url_path="history"),
    st.Page(_VIEWS / "map.py", title="Map", url_path="map"),
    st.Page(_VIEWS / "models.py", title="Models", url_path="models"),
]
if identity.may(Action.IMPORT):
    pages.insert(
        0, st.Page(_VIEWS / "import_answers.py", title="Import", default=start_with_import, url_path="import")
    )
if identity.may(Action.EXPORT):
    pages.insert(-1, st.Page(_VIEWS / "export.py", title="Export", url_path="export"))

page = st.navigation(pages)
with st.sidebar:
    # The name is the user's own input, shown back as plain text.
    st.text(f"Signed in as {identity.display_name} ({identity.role.value})")
    if identity.signed_in_with == "oidc":
        st.button("Sign out", on_click=st.logout, key="sign-out")
page.run()
