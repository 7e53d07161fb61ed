"""The Home and Generate pages' computations: a checkpoint's card, names from a prefix with the
sampling settings, and the routing trace of one name.

Seeded generation is a pure function of the settings and the checkpoint version, so the app
caches `generate_view` and every session asking the same thing shares one computation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dsmini.checkpoint import Checkpoint
from dsmini.config import ModelConfig
from dsmini.decoding import Generated, generate

from .routing import NameTrace, trace_name


@dataclass(frozen=True)
class GenerateSettings:
    """The Generate form's settings; the defaults are its widgets' defaults."""

    prefix: str = ""
    n: int = 10
    seed: int = 0
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    max_len: int | None = None  # None: as long as the model allows (block_size - 1)


@dataclass(frozen=True)
class GenerateView:
    names: list[str]  # "" where a name came out empty
    finished: list[bool]  # per name: the model ended it (False: cut at the max length)
    picked: str  # the name traced: the first non-empty one, the page's default pick ("" if none)
    trace: NameTrace


def generated(ckpt: Checkpoint, settings: GenerateSettings) -> list[Generated]:
    """Seeded names, each with whether the model ended it (text "" where a name came out empty)."""
    s = settings
    return generate(ckpt.model, ckpt.tokenizer, prefix=s.prefix, n=s.n, temperature=s.temperature,
                    top_k=s.top_k, top_p=s.top_p, max_len=s.max_len, seed=s.seed)


def generated_names(ckpt: Checkpoint, settings: GenerateSettings) -> list[str]:
    """Seeded names' texts ("" where a name came out empty)."""
    return [g.text for g in generated(ckpt, settings)]


def name_trace(ckpt: Checkpoint, name: str) -> NameTrace:
    """Per character of `name`: the experts each layer chose and what the model expected next."""
    return trace_name(ckpt.model, ckpt.tokenizer, name)


def generate_view(ckpt: Checkpoint, settings: GenerateSettings = GenerateSettings()) -> GenerateView:
    """The names of `settings` and the trace of the one the page picks first."""
    made = generated(ckpt, settings)
    names = [g.text for g in made]
    picked = next((name for name in names if name), "")
    return GenerateView(names, [g.finished for g in made], picked, name_trace(ckpt, picked))


@dataclass(frozen=True)
class HomeSettings:
    """The Home page's one-click generation."""

    n: int = 10
    temperature: float = 0.8


@dataclass(frozen=True)
class HomeView:
    """The model card."""

    config: ModelConfig
    param_counts: dict[str, dict[str, int]]
    corpus: str  # "?" when the checkpoint does not say
    val_loss: float | None


def home_view(ckpt: Checkpoint) -> HomeView:
    summary: dict[str, Any] = ckpt.summary or {}
    return HomeView(ckpt.model_config, ckpt.param_counts, ckpt.corpus.name or "?", summary.get("val_loss"))


def home_names(ckpt: Checkpoint, settings: HomeSettings = HomeSettings()) -> list[str]:
    """The Home button's names as shown (a cut one ends in CUT_MARK): unseeded on purpose, so every press
    shows new ones (never cached)."""
    return [g.shown for g in generate(ckpt.model, ckpt.tokenizer, n=settings.n, temperature=settings.temperature)]
