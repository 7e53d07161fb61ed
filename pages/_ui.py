"""Streamlit glue shared by app.py and the pages, one import for them all (`from pages import _ui as ui`).

Each concern lives in its own module; everything that knows about Streamlit and is used by more than one
page lives in one of them, while the model, data and charts live in `dsmini/` and know nothing of Streamlit:

    _ui_text      the session's language: translations, numbers, text size, names shown, the error guard
    _ui_shared    what every session shares: the device, computed views, built figures (made once each)
    _ui_models    the checkpoints and corpora a page works on, and their downloads
    _ui_session   a browser session: entering a page, kept widget values, its training run
"""

from pages._ui_models import (
    DEFAULT_CHECKPOINTS,
    EXPLORER_DEVICE,
    MAX_UPLOAD_NAME_LEN,
    checkpoint_choice,
    checkpoint_identity,
    checkpoint_listing,
    checkpoints,
    checkpoints_folder,
    corpus,
    downloads,
    load_by_name,
    prepared,
    require_checkpoint,
    selected_checkpoint,
)
from pages._ui_session import (
    enter_page,
    job_registry,
    keep,
    kept,
    kept_index,
    languages_used,
    seconds_since_a_page_run,
    session_jobs,
)
from pages._ui_shared import MAX_FIGURES, FrozenFigure, computed, device_name, figure, frozen, shared_figure
from pages._ui_text import (
    LARGE_TEXT_SCALE,
    count,
    field_labels,
    guard,
    lang,
    large_text_switch,
    num,
    show_names,
    shown,
    text_problem,
    text_scale,
    tr,
)

__all__ = [
    "DEFAULT_CHECKPOINTS",
    "EXPLORER_DEVICE",
    "FrozenFigure",
    "LARGE_TEXT_SCALE",
    "MAX_FIGURES",
    "MAX_UPLOAD_NAME_LEN",
    "checkpoint_choice",
    "checkpoint_identity",
    "checkpoint_listing",
    "checkpoints",
    "checkpoints_folder",
    "computed",
    "corpus",
    "count",
    "device_name",
    "downloads",
    "enter_page",
    "field_labels",
    "figure",
    "frozen",
    "guard",
    "job_registry",
    "keep",
    "kept",
    "kept_index",
    "lang",
    "languages_used",
    "large_text_switch",
    "load_by_name",
    "num",
    "prepared",
    "require_checkpoint",
    "seconds_since_a_page_run",
    "selected_checkpoint",
    "session_jobs",
    "shared_figure",
    "show_names",
    "shown",
    "text_problem",
    "text_scale",
    "tr",
]
