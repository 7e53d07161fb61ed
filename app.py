"""dsmini explorer: `streamlit run app.py`. Shell only: page config, shared sidebar, navigation.

Everything happens in main(), imports included. Streamlit runs this file as `__main__`, and
multiprocessing imports `__main__` again, as `__mp_main__`, in every process it starts (each
training run, see dsmini.jobs.process). There the file must do nothing, and do it quickly.
"""

# (file in pages/ and its nav.* string, url path, Material icon)
PAGES = [
    ("home", "home", "home"),
    ("lesson", "lesson", "school"),
    ("train", "train", "model_training"),
    ("generate", "generate", "auto_awesome"),
    ("experts", "experts", "hub"),
    ("attention", "attention", "visibility"),
    ("kv_cache", "kv-cache", "memory"),
    ("mtp", "mtp", "fast_forward"),
    ("compare", "compare", "compare_arrows"),
]


def main() -> None:
    import streamlit as st

    from dsmini.i18n import LANGUAGES
    from pages import _ui as ui
    from pages import _warmup

    st.set_page_config(page_title="dsmini", page_icon="🐋", layout="wide")

    with st.sidebar:
        st.segmented_control(
            "Language / Язык", options=list(LANGUAGES), format_func=LANGUAGES.get, default="en", key="lang",
        )
        if st.session_state.get("lang") is None:  # segmented_control can be cleared: keep a language
            st.session_state["lang"] = "en"
        ui.large_text_switch()

    pages = [
        st.Page(f"pages/{name}.py", title=ui.tr(f"nav.{name}"), icon=f":material/{icon}:", url_path=url_path,
                default=name == "home")
        for name, url_path, icon in PAGES
    ]
    page = st.navigation(pages)
    st.session_state["_shell"] = True  # pages check it: see ui.enter_page

    with st.sidebar, ui.guard():  # an unreadable checkpoints folder is a message here, not a traceback
        listing = ui.checkpoint_listing()
        names = [info.name for info in listing.good]
        if names:
            choice = ui.checkpoint_choice(listing.good)
            if st.session_state.get("checkpoint") != choice:  # a new session, or its pick was deleted
                st.session_state["checkpoint"] = choice
            st.selectbox(ui.tr("ui.checkpoint"), names, key="checkpoint", help=ui.tr("ui.checkpoint_help"))
            if next(info for info in listing.good if info.name == choice).has_best:  # best and last weights kept
                st.segmented_control(ui.tr("ui.weights"), ("last", "best"),
                                     format_func=lambda w: ui.tr(f"ui.weights_{w}"),
                                     default="last", key="weights", help=ui.tr("ui.weights_help"))
        else:
            st.caption(ui.tr("ui.no_checkpoint"))
        if listing.broken:
            details = "; ".join(f"{b.name}: {b.reason}" for b in listing.broken)
            st.caption(ui.tr("ui.broken_checkpoints", n=len(listing.broken), details=details))
        st.caption(ui.tr("ui.device", explorer=ui.EXPLORER_DEVICE, training=ui.device_name()))

    try:
        page.run()
    finally:
        _warmup.start()  # once per process, after its first page: that page does not wait for it


if __name__ == "__main__":
    main()
