"""The models and corpora a page works on: the checkpoint listing and the sidebar's pick, loading by name,
the corpora the Train page prepares, and the download buttons.
"""


from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

import streamlit as st

from dsmini.checkpoint import Checkpoint, CheckpointInfo, CheckpointListing, load_checkpoint, scan_checkpoints
from dsmini.config import ModelConfig
from dsmini.data import MAX_NAME_LEN, Corpus, CorpusData, corpus_from_bytes, load_corpus, prepare_corpus
from dsmini.export import architecture, unsupported
from dsmini.single_flight import SharedResults
from pages._ui_text import lang, tr

ROOT = Path(__file__).resolve().parent.parent
CHECKPOINTS = Path(os.environ.get("DSMINI_CHECKPOINTS", ROOT / "checkpoints"))
# The CLI's cap too; longer lines are dropped (and counted): the block size follows the longest name
MAX_UPLOAD_NAME_LEN = MAX_NAME_LEN


# The explorer's models: tiny, one name or a few hundred at a time, shared read-only by every session;
# on a CPU each call costs less than a GPU's launch and copy overhead would, so pages stay there.
EXPLORER_DEVICE = "cpu"


# Loaded checkpoints and the folder's listing, shared by every session (see _ui_shared)
_LOADED = SharedResults(max_entries=16)
_LISTINGS = SharedResults(max_entries=4)


def _load(path: str, mtime: float, best: bool = False) -> Checkpoint:
    """Shared by every user and thread, so read-only: eval mode, caches made per call.
    Keyed by mtime so a re-saved checkpoint is reloaded; best: its best-validation weights."""
    return _LOADED.get((path, mtime, best), lambda: load_checkpoint(path, device=EXPLORER_DEVICE, best=best))


@st.cache_resource(max_entries=8, show_spinner=False)
def corpus(name: str, upload: bytes | None) -> Corpus:
    """A built-in corpus by name, or an uploaded file's bytes, one name or `name<TAB>domain` per line
    (validated: CorpusError says why)."""
    if upload is None:
        return load_corpus(name)
    return corpus_from_bytes(upload, name=name, max_len=MAX_UPLOAD_NAME_LEN)


@st.cache_resource(max_entries=8, show_spinner=False)
def prepared(name: str, upload: bytes | None, block_size: int, seed: int) -> CorpusData:
    """Tokenizer, seeded split and tensors (with domain labels); shared read-only by every run on the
    same corpus."""
    chosen = corpus(name, upload)
    return prepare_corpus(
        chosen.names, block_size, seed, corpus_name=name, domains=chosen.domains, builtin=chosen.builtin
    )


def checkpoint_listing() -> CheckpointListing:
    """The checkpoints, and the folders that could not be read with why. Every script run of every
    session asks (the sidebar picker); the answer changes only when a checkpoint is saved, which
    changes the folder's mtime."""
    folder = Path(CHECKPOINTS)
    mtime = folder.stat().st_mtime if folder.exists() else 0.0
    return _LISTINGS.get((str(folder), mtime), lambda: scan_checkpoints(folder))


def checkpoints_folder() -> Path:
    """Where the app lists and saves checkpoints (DSMINI_CHECKPOINTS, else the repository's checkpoints/)."""
    return CHECKPOINTS


def checkpoints() -> list[CheckpointInfo]:
    """The readable checkpoints, sorted by name."""
    return checkpoint_listing().good
DEFAULT_CHECKPOINTS = {"en": "en-names", "ru": "ru-names"}  # a new session opens on its language's shipped model


def checkpoint_choice(infos: list[CheckpointInfo]) -> str | None:
    """The session's pick while it is listed; else the shipped model of the UI's language, else any
    shipped one, else the first (never just the alphabetically first: a student's run named
    "a-test" must not become what every new session opens on); None when nothing is listed."""
    names = [info.name for info in infos]
    picked = st.session_state.get("checkpoint")
    if picked in names:
        return picked
    shipped = [info.name for info in infos if info.shipped]
    preferred = DEFAULT_CHECKPOINTS.get(lang())
    return preferred if preferred in shipped else next(iter(shipped or names), None)


def selected_checkpoint() -> Checkpoint | None:
    """The checkpoint picked in the sidebar, loaded once per process; None if there is none."""
    infos = {info.name: info for info in checkpoints()}
    name = checkpoint_choice(list(infos.values()))
    if name is None:
        return None
    info = infos[name]
    return _load(str(info.path), info.mtime, info.has_best and st.session_state.get("weights") == "best")


def checkpoint_identity(ckpt: Checkpoint) -> tuple[str, float]:
    """Which model, and which save of it: what a page's kept results (generated names, a step-through
    walk) are keyed by, so none is ever shown under another model, or a re-saved one."""
    return ckpt.name, ckpt.mtime


def load_by_name(name: str, best: bool = False) -> Checkpoint:
    """A listed checkpoint by name; best: its best-validation weights when it has them."""
    info = {i.name: i for i in checkpoints()}[name]
    return _load(str(info.path), info.mtime, best and info.has_best)


def require_checkpoint() -> Checkpoint:
    """State guard at the top of a page: stop with a hint when no model exists yet."""
    ckpt = selected_checkpoint()
    if ckpt is None:
        st.info(tr("ui.no_checkpoint"))
        st.page_link("pages/train.py", label=tr("nav.train"), icon=":material/model_training:")
        st.stop()
    return ckpt


def downloads(
    cfg: ModelConfig, stem: str, checkpoint: Callable[[], bytes], transformers: Callable[[], bytes], key: str
) -> None:
    """The dsmini checkpoint and, beside it, the same model as a transformers folder, both zips built on
    click; a model transformers cannot express gets the reason instead of the second button."""
    left, right = st.columns(2)
    left.download_button(tr("export.checkpoint"), data=checkpoint, file_name=f"{stem}.zip", mime="application/zip",
                         key=f"{key}_download")
    problem = unsupported(cfg)
    if problem is not None:
        right.info(tr("export.refused", setting=problem.setting))
        return
    right.download_button(tr("export.download"), data=transformers, file_name=f"{stem}-transformers.zip",
                          mime="application/zip", key=f"{key}_transformers",
                          help=tr("export.download_help", arch=architecture(cfg)))
