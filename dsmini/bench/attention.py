"""Section 9: the attention types side by side on full names, where the ending depends on letters far back.

Corpus `ru-full-names` («Фамилия Имя Отчество», one gender throughout, 28-40 characters). Every
run trains the full model of preset `plan.preset` (MoE + MTP, the shipped recipe: AdamW, lr 3e-3,
cosine) with one attention type changed: MLA (the default), DSA, MoBA, log-linear (all three on
the MLA path, `dsmini.model.sparse_attention`, at their `ModelConfig` defaults) and MHA; the same seed,
hence the same initial batches and the same split. Training, timing and the equal-time comparison
are the quality section's (`dsmini.bench.quality`: `train_measured`, `summarise`, `same_load`): a
group's runs start together and keep the machine loaded until the last has finished. By default
all five go in one group, five processes of one torch thread each, so every run had the same load
from its first step to its last; `budget_seconds` is the fastest run's training time and each
run's *val at equal time* is its last curve point within it.

Measured on the trained model (not timed):
- cache bytes per token: `model.new_cache(1, max_len=1)`'s bytes per (sequence, position) slot,
  the real cache, checked against Table 1 (`dsmini.model.cache.check_cache`; DSA's indexer keys included);
- the **gender cue**. In a full name «S F P» the patronymic ends in «-ич» (a man) or «-на» (a woman),
  and nothing inside the patronymic's stem says which: the cue is earlier, in the surname's and the
  first name's endings (Иванов/Иванова, Иван/Мария). The *decision query* of a name is the position
  that predicts the name's second-to-last character (the «и» of «-ич» or the «н» of «-на»); with
  position 0 the boundary token and character i of the name at position i + 1, that is position
  len(name) - 2. The *cue keys* are the positions of the surname's last letter (len(S)) and of the
  first name's last letter (len(S) + len(F) + 1). For the sparse types, `cue_surname` /
  `cue_first` are the fraction of (val name, layer, head) triples whose decision query's
  `AttnTrace.allowed` includes that key, `cue_either` the fraction including at least one of the
  two, and `density` the fraction of all positions 0..q that the query may see (what a selection
  blind to the cue would include on average). For log-linear every earlier position is allowed (old
  ones pooled into Fenwick buckets), so its `fine_*` numbers count a cue key only when it is seen
  token by token (its level < `loglinear_fine_levels`). `ending_accuracy` (every type): how often
  the model's most likely character at the decision query is the right one, i.e. whether it got the
  gender right.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from dsmini.config import ModelConfig, preset
from dsmini.data import CorpusData
from dsmini.decoding import inference
from dsmini.model import DSMini, check_cache

from .common import Plan, Progress, Rendezvous, map_job_groups
from .quality import meeting_groups, releasing, same_load, summarise, train_measured
from .throughput import corpus_data

ATTN_TYPES = ("mla", "dsa", "moba", "loglinear", "mha")  # table order; MLA is the reference
REFERENCE = "mla"
SPARSE = ("dsa", "moba", "loglinear")
CUE_KEYS = ("surname", "first")


@dataclass(frozen=True)
class AttentionJob:
    """One run; the fields `quality.train_measured` reads, plus the cue's sample size."""

    arch: str  # the attention type
    corpus: str
    preset: str
    steps: int
    eval_every: int
    curve_val_limit: int
    batch_size: int
    cue_names: int  # val names whose decision query is read
    dropout: float = 0.0
    device: str = "cpu"
    meet: Rendezvous | None = None
    seed: int = 1337


def attention_config(attn_type: str, preset_name: str, data: CorpusData) -> ModelConfig:
    """The full model of `preset_name` (MoE + MTP) with attention `attn_type`, sized for `data`."""
    return preset(preset_name, vocab_size=data.tokenizer.vocab_size, block_size=data.block_size,
                  attn_type=attn_type)


def jobs(plan: Plan, folder: Path) -> list[list[AttentionJob]]:
    todo = [AttentionJob(key, plan.attention_corpus, plan.preset, plan.attention_steps, plan.attention_eval_every,
                         plan.curve_val_limit, plan.batch_size, plan.attention_cue_names, device=plan.device)
            for key in ATTN_TYPES]
    return meeting_groups(todo, plan.attention_workers, folder, "attention")


def run(plan: Plan) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="dsmini-bench-attention-") as folder:
        groups = jobs(plan, Path(folder))
        progress = Progress("attention", sum(map(len, groups)))
        runs = map_job_groups(train_one, groups, plan.attention_workers, progress, lambda job: job.arch)
    progress.close()
    summary = summarise({r["arch"]: r for r in runs}, None)  # no time-to-target here: no dense baseline
    reference = summary["runs"][REFERENCE]
    for r in summary["runs"].values():
        r["vs_reference"] = {"load": same_load(r, reference)["kind"],
                             "final_val": r["final_val"] - reference["final_val"],
                             "tokens_per_sec": r["tokens_per_sec"] / reference["tokens_per_sec"]}
    return {"corpus": plan.attention_corpus, "preset": plan.preset, "workers": plan.attention_workers,
            "steps": plan.attention_steps, "eval_every": plan.attention_eval_every, "batch_size": plan.batch_size,
            "device": plan.device, "budget_seconds": summary["budget_seconds"], "runs": summary["runs"]}


def train_one(job: AttentionJob) -> dict[str, Any]:
    with releasing(job.meet):
        data = corpus_data(job.corpus)
        cfg = attention_config(job.arch, job.preset, data)
        return train_measured(job, cfg, data, probe=lambda model: probe(model, data, job.cue_names))


def probe(model: DSMini, data: CorpusData, n_names: int) -> dict[str, Any]:
    """What the section reads off a trained model: its cache per token and the gender cue."""
    cache = model.new_cache(1, max_len=1)
    check = check_cache(cache, model.cfg)
    names = data.val.names[:n_names]
    return {"cache_bytes_per_token": check.measured_bytes, "cache_matches_table": check.equal,
            "cue_names": len(names), **gender_cue(model, names, data.val.x[: len(names)], data.val.y[: len(names)])}


def cue_positions(name: str) -> dict[str, int]:
    """The decision query and the cue keys of one full name (positions as the model reads them:
    0 is the boundary token, character i of the name is at i + 1); see the module docstring."""
    surname, first, _patronymic = name.split(" ")
    return {"query": len(name) - 2, "surname": len(surname), "first": len(surname) + len(first) + 1}


def gender_cue(model: DSMini, names: list[str], x: torch.Tensor, y: torch.Tensor) -> dict[str, Any]:
    """`ending_accuracy` for every type; `cue_*` and `density` (and log-linear's `fine_*`) for the
    sparse ones, each a mean over names, layers and heads (definitions in the module docstring)."""
    device = model.head.weight.device
    at = [cue_positions(n) for n in names]
    rows = torch.arange(len(names))
    query = torch.tensor([p["query"] for p in at])
    keys = {k: torch.tensor([p[k] for p in at]) for k in CUE_KEYS}
    with inference(model):
        out = model(x.to(device), y.to(device), need_weights=True)
    guess = out.logits[rows, query].argmax(-1).cpu()  # (n,)
    result: dict[str, Any] = {"ending_accuracy": float((guess == y[rows, query]).float().mean())}
    if model.cfg.attn_type not in SPARSE:
        return result
    seen = torch.stack([tr.allowed.expand_as(tr.probs)[rows, :, query].cpu() for tr in out.attn])  # (l, n, h, t)
    result.update(_coverage(seen, query, keys, ""))
    if model.cfg.attn_type == "loglinear":
        levels = out.attn[0].levels.cpu()  # (s, t), the same in every layer and head
        fine = (levels[query] >= 0) & (levels[query] < model.cfg.loglinear_fine_levels)  # (n, t)
        result.update(_coverage(fine[None, :, None, :].expand_as(seen), query, keys, "fine_"))
    return result


def _coverage(seen: torch.Tensor, query: torch.Tensor, keys: dict[str, torch.Tensor], prefix: str) -> dict[str, float]:
    """seen: (l, n, h, t) bool, what each name's decision query may see in each layer and head ->
    the fraction including each cue key, either of them, and all positions 0..q (density)."""
    rows = torch.arange(seen.size(1))
    hits = {k: seen[:, rows, :, pos] for k, pos in keys.items()}  # each (n, l, h): indexing moves n first
    upto = torch.arange(seen.size(-1))[None, :] <= query[:, None]  # (n, t): the causal row
    density = (seen & upto[None, :, None, :]).sum(-1) / upto.sum(-1)[None, :, None]
    either = hits["surname"] | hits["first"]
    return {**{f"{prefix}cue_{k}": float(v.float().mean()) for k, v in hits.items()},
            f"{prefix}cue_either": float(either.float().mean()), f"{prefix}density": float(density.float().mean())}

