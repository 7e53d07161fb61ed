"""dsmini explorer: `streamlit run app.py`. Shell only: page config, shared sidebar, navigation.

Everything happens in main(), imports included. Streamlit runs this file as `__main__`, and
multiprocessing imports `__main__` again, as `__mp_main__`, in every process it starts (each
training run, see dsmini.jobs). There the file must do nothing, and do it quickly.
"""


def main() -> None:
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
        st.Page("pages/home.py", title=ui.tr("nav.home"), icon=":material/home:", url_path="home", default=True),
        st.Page("pages/train.py", title=ui.tr("nav.train"), icon=":material/model_training:", url_path="train"),
        st.Page("pages/generate.py", title=ui.tr("nav.generate"), icon=":material/auto_awesome:", url_path="generate"),
        st.Page("pages/experts.py", title=ui.tr("nav.experts"), icon=":material/hub:", url_path="experts"),
        st.Page("pages/attention.py", title=ui.tr("nav.attention"), icon=":material/visibility:", url_path="attention"),
        st.Page("pages/kv_cache.py", title=ui.tr("nav.kv_cache"), icon=":material/memory:", url_path="kv-cache"),
        st.Page("pages/mtp.py", title=ui.tr("nav.mtp"), icon=":material/fast_forward:", url_path="mtp"),
        st.Page("pages/compare.py", title=ui.tr("nav.compare"), icon=":material/compare_arrows:", url_path="compare"),
    ]
    page = st.navigation(PAGES)
    st.session_state["_shell"] = True  # pages check it: see ui.enter_page

    with st.sidebar:
        names = [info.name for info in ui.checkpoints()]
        if names:
            st.selectbox(ui.tr("ui.checkpoint"), names, key="checkpoint", help=ui.tr("ui.checkpoint_help"))
        else:
            st.caption(ui.tr("ui.no_checkpoint"))
        st.caption(ui.tr("ui.device", device=ui.device_name()))

    page.run()


if __name__ == "__main__":
    main()
