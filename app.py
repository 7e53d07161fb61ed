"""dsmini explorer: `streamlit run app.py`. Shell only: page config, shared sidebar, navigation."""

import streamlit as st

from dsmini.i18n import LANGUAGES
from pages import _ui as ui

st.set_page_config(page_title="dsmini", page_icon="🐋", layout="wide")

with st.sidebar:
    st.segmented_control(
        "Language / Язык", options=list(LANGUAGES), format_func=LANGUAGES.get, default="en", key="lang",
    )
    if st.session_state.get("lang") is None:  # segmented_control can be cleared: keep a language
        st.session_state["lang"] = "en"

PAGES = [
    st.Page("pages/home.py", title=ui.tr("nav.home"), icon="🏠", url_path="home", default=True),
    st.Page("pages/train.py", title=ui.tr("nav.train"), icon="🏋️", url_path="train"),
    st.Page("pages/generate.py", title=ui.tr("nav.generate"), icon="✨", url_path="generate"),
]
page = st.navigation(PAGES)

with st.sidebar:
    names = [info.name for info in ui.checkpoints()]
    if names:
        st.selectbox(ui.tr("ui.checkpoint"), names, key="checkpoint", help=ui.tr("ui.checkpoint_help"))
    else:
        st.caption(ui.tr("ui.no_checkpoint"))
    st.caption(ui.tr("ui.device", device=ui.device_name()))

page.run()
