"""The web server: Streamlit's app (app.py) plus the log-in routes and the middleware guarding them.

`dsgen serve` runs `streamlit run server.py`; Streamlit finds the `st.App` below and serves it.
"""

import streamlit as st
from starlette.middleware import Middleware
from streamlit.runtime.pages_manager import PagesManager

from pages._web_auth import ROUTES, RequireLogin

# app.py builds its navigation with st.navigation; without this, the first session after a start
# would treat pages/ as an old-style pages folder (running a page without app.py, listing every file).
# st.navigation sets the same flag on its first call.
PagesManager.uses_pages_directory = False

app = st.App("app.py", routes=ROUTES, middleware=[Middleware(RequireLogin)])
