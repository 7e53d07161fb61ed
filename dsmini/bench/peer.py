"""Section 10: time to quality against a plain GPT. Does the DeepSeek design pay off on the clock?

The peer is written here, so nothing of dsmini's is in it: makemore's transformer shape (4 layers,
4 heads, width 64, learned positions, LayerNorm, a GELU MLP 4x wide, tied nothing), trained as
makemore trains it (AdamW lr 5e-4, betas (0.9, 0.99), weight decay 0.01, batch 32, no schedule).
Its attention is torch's fused `scaled_dot_product_attention`, so the peer is as fast as a plain
GPT gets on this machine, not slowed by makemore's explicit mask.

Both train on a built-in corpus of at least 30,000 names split exactly as `python -m dsmini train`
splits it: the peer `peer_steps` steps, dsmini with what `python -m dsmini train --corpus C` does
by default (`config.RECIPES["cli"]`: its preset, recipe and dropout rule). Each records its val
loss on the same `curve_val_limit` val names every `eval_every` steps against its training seconds
(evaluation excluded). The target is the peer's val at its last step; the report gives the
seconds each took to reach it and each one's best val. The two run at once, one torch thread each,
as the quality section's groups run (`quality.meeting_groups`): they start together and the one
that finishes first keeps its core busy until the other has, so both had the same load throughout.
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from dsmini.config import RECIPES, ModelConfig, TrainConfig
from dsmini.data import IGNORE_INDEX, CorpusData, EncodedSplit, get_batch, load_corpus
from dsmini.training import Trainer

from .common import Plan, Progress, Rendezvous, map_job_groups
from .quality import _curve, keep_loaded, meeting_groups, releasing, time_to_target
from .throughput import corpus_data

PEER = "gpt"
DSMINI = "dsmini"


class CausalSelfAttention(nn.Module):
    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.n_heads = n_heads
        self.c_attn = nn.Linear(d, 3 * d)
        self.c_proj = nn.Linear(d, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = self.c_attn(x).split(d, dim=2)  # (b, t, d) each
        q, k, v = (z.view(b, t, self.n_heads, d // self.n_heads).transpose(1, 2) for z in (q, k, v))  # (b, h, t, hd)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        return self.c_proj(y.transpose(1, 2).reshape(b, t, d))


class PeerBlock(nn.Module):
    def __init__(self, d: int, n_heads: int):
        super().__init__()
        self.ln_1, self.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = CausalSelfAttention(d, n_heads)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(approximate="tanh"), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class PlainGPT(nn.Module):
    """makemore's `Transformer`: token + learned position embeddings, pre-LN blocks, LayerNorm, head."""

    def __init__(self, vocab_size: int, block_size: int, n_layers: int = 4, n_heads: int = 4, d: int = 64):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, d)
        self.wpe = nn.Embedding(block_size, d)
        self.blocks = nn.ModuleList(PeerBlock(d, n_heads) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab_size, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """idx (b, t) -> logits (b, t, V)."""
        x = self.wte(idx) + self.wpe(torch.arange(idx.size(1), device=idx.device))  # (b, t, d)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))


@torch.no_grad()
def peer_val(model: PlainGPT, split: EncodedSplit, limit: int, batch_size: int = 256) -> float:
    """nats/char over the first `limit` names, counted as dsmini counts it (`dsmini.decoding.scoring`)."""
    model.eval()
    nats, tokens = 0.0, 0
    for start in range(0, min(limit, len(split.x)), batch_size):
        x, y = split.x[start : start + batch_size], split.y[start : start + batch_size]
        x, y = x[: limit - start], y[: limit - start]
        nats += float(F.cross_entropy(model(x).transpose(1, 2), y, ignore_index=IGNORE_INDEX, reduction="sum"))
        tokens += int((y != IGNORE_INDEX).sum())
    model.train()
    return nats / max(tokens, 1)


@dataclass(frozen=True)
class PeerJob:
    """One of the two runs; plain fields so it pickles into a worker process."""

    arch: str  # PEER or DSMINI
    corpus: str
    steps: int | None  # None: dsmini's default, resolved in its worker (`config.RECIPES["cli"]`)
    eval_every: int
    curve_val_limit: int
    meet: Rendezvous | None = None
    seed: int = 1337
    device: str = "cpu"


def run(plan: Plan) -> dict[str, Any]:
    jobs = [PeerJob(arch, plan.peer_corpus, steps, plan.eval_every, plan.curve_val_limit, device=plan.device)
            for arch, steps in ((PEER, plan.peer_steps), (DSMINI, plan.peer_dsmini_steps))]
    with tempfile.TemporaryDirectory(prefix="dsmini-bench-peer-") as folder:
        groups = meeting_groups(jobs, plan.workers, Path(folder), "peer")
        progress = Progress("peer", len(jobs))
        runs = map_job_groups(train_one, groups, plan.workers, progress, lambda job: job.arch)
    progress.close()
    return summarise({r["arch"]: r for r in runs}, plan.workers)


def summarise(runs: dict[str, dict[str, Any]], workers: int) -> dict[str, Any]:
    """The target (the peer's last val), each run's seconds to it and best val, and the ratio."""
    target = runs[PEER]["curve"][-1]["val"]
    for r in runs.values():
        r["time_to_target"] = time_to_target(r["curve"], target, inclusive=True)
        r["best_val"] = min(p["val"] for p in r["curve"])
    reached = [runs[k]["time_to_target"] for k in (DSMINI, PEER)]
    ratio = reached[0]["seconds"] / reached[1]["seconds"] if all(reached) else None
    return {"target": target, "time_ratio": ratio, "runs": runs, "concurrent": workers > 1,
            "best_better": runs[DSMINI]["best_val"] < runs[PEER]["best_val"]}


def train_one(job: PeerJob) -> dict[str, Any]:
    with releasing(job.meet):
        data = corpus_data(job.corpus)
        return _train_dsmini(job, data) if job.arch == DSMINI else _train_peer(job, data)


def dsmini_configs(job: PeerJob, data: CorpusData) -> tuple[ModelConfig, TrainConfig]:
    """What `train --corpus C` trains on `data` when no flag is given (`config.RECIPES["cli"]`), shorter
    where the job says (the quick plan)."""
    recipe = RECIPES["cli"]
    model_cfg = recipe.model(len(load_corpus(job.corpus).names), vocab_size=data.tokenizer.vocab_size,
                             block_size=data.block_size)
    return model_cfg, recipe.train if job.steps is None else dataclasses.replace(recipe.train, steps=job.steps)


def _train_dsmini(job: PeerJob, data: CorpusData) -> dict[str, Any]:
    model_cfg, train_cfg = dsmini_configs(job, data)
    trainer = Trainer(model_cfg, train_cfg, data)
    together = job.meet is None or job.meet.wait("ready")
    seconds, tokens, curve = _curve(trainer, dataclasses.replace(job, steps=train_cfg.steps), data)
    keep_loaded(job.meet, model_cfg, train_cfg, data)
    return _row(job, curve, seconds, tokens, together, train_cfg.steps,
                recipe={"optimizer": train_cfg.optimizer, "lr": train_cfg.lr, "batch_size": train_cfg.batch_size,
                        "dropout": model_cfg.dropout, "params": sum(p.numel() for p in trainer.model.parameters())})


BATCH, LR, BETAS, WEIGHT_DECAY = 32, 5e-4, (0.9, 0.99), 0.01  # makemore's defaults


def _train_peer(job: PeerJob, data: CorpusData) -> dict[str, Any]:
    torch.manual_seed(job.seed)
    model = PlainGPT(data.tokenizer.vocab_size, data.block_size)
    opt = torch.optim.AdamW(model.parameters(), lr=LR, betas=BETAS, weight_decay=WEIGHT_DECAY, eps=1e-8)
    batches = torch.Generator().manual_seed(job.seed)
    together = job.meet is None or job.meet.wait("ready")
    seconds, tokens, curve = 0.0, 0, []
    for step in range(1, job.steps + 1):
        start = time.perf_counter()
        x, y = get_batch(data.train.x, data.train.y, BATCH, batches)
        loss = F.cross_entropy(model(x).transpose(1, 2), y, ignore_index=IGNORE_INDEX)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        seconds += time.perf_counter() - start
        tokens += int((y != IGNORE_INDEX).sum())
        if not math.isfinite(loss.item()):
            break
        if step % job.eval_every == 0 or step == job.steps:
            curve.append({"step": step, "seconds": seconds, "val": peer_val(model, data.val, job.curve_val_limit)})
    _keep_busy(job.meet)
    return _row(job, curve, seconds, tokens, together, job.steps,
                recipe={"optimizer": "adamw", "lr": LR, "batch_size": BATCH, "dropout": 0.0,
                        "params": sum(p.numel() for p in model.parameters())})


def _keep_busy(meet: Rendezvous | None) -> None:
    """The peer's share of `quality.keep_loaded`: spin a core until the other run is done."""
    if meet is None:
        return
    meet.arrive("done")
    deadline = time.monotonic() + meet.timeout_s
    work = torch.randn(64, 64)
    while not meet.everyone("done") and time.monotonic() < deadline:
        for _ in range(50):
            work = torch.tanh(work @ work)


def _row(job: PeerJob, curve, seconds: float, tokens: int, together: bool, steps: int, recipe: dict) -> dict[str, Any]:
    return {"arch": job.arch, "corpus": job.corpus, "steps": steps, "train_seconds": seconds,
            "tokens_per_sec": tokens / seconds if seconds else 0.0, "curve": curve, "recipe": recipe,
            "started_together": together, "curve_val_names": job.curve_val_limit, "finished": time.time()}
