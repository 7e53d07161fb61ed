"""Training: one loop for the CLI, the app's live runs, the benchmark and the tests.

`Trainer(model_cfg, train_cfg, data).run()` is a generator of `StepMetrics`, one per optimizer
step, so every caller sees the same numbers as they happen and can stop between steps
(`trainer.request_stop()` or a `threading.Event`). `trainer.save(root, name)` writes a
checkpoint that resumes exactly: weights, optimizer moments, RNG states and history.
"""

from __future__ import annotations

import dataclasses
import math
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator

import torch

from dsmini.checkpoint import Checkpoint, corpus_reference, load_best_state, load_checkpoint, save_checkpoint
from dsmini.config import ModelConfig, TrainConfig
from dsmini.data import CorpusData, EncodedSplit, count_target_tokens, get_batch
from dsmini.decoding import generate, score_rows
from dsmini.model import DSMini

from .device import autocast, pick_device, synchronize
from .muon import Muon
from .qk_clip import qk_clip, track_max_logits

# The live I(domain; expert) curve, given by whoever wants it (`probes.domains.live_domain_mi`: the app's jobs,
# the CLI, the benchmark): for a run's config and data, a measure of the model on an eval step -> (bits per main
# MoE layer, the same config untrained), or None when the run has nothing to measure. The loop never imports the
# explorer; the measure must draw no RNG, so a run trains the same with it or without it.
DomainMI = Callable[[ModelConfig, CorpusData], Callable[[DSMini], tuple[list[float], list[float]]] | None]
# Validation names per `eval_batches`: an evaluation reads the first eval_batches × EVAL_BATCH_NAMES names
# of the (shuffled, so fairly sampled) val split, the same names at every evaluation whatever the
# batch size, so runs of different batch sizes are compared on the same names (0: the whole split).
EVAL_BATCH_NAMES = 256
# Steps in the moving average of tokens/s: one step's value swings several-fold with the names drawn
# and the machine's other work; 50 steps smooth that and still follow a real change within seconds.
THROUGHPUT_WINDOW = 50


@dataclass
class StepMetrics:
    step: int  # optimizer steps done (1-based)
    loss: float  # total: main + lambda * MTP + aux
    main_loss: float  # next-character cross-entropy, nats/char
    mtp_losses: list[float]  # per depth k = 1..D
    aux_loss: float
    lr: float
    grad_norm: float
    tokens: int  # real (non-padding) target tokens in this step
    tokens_per_sec: float  # this step alone (swings with the names drawn; see the averages)
    elapsed: float  # seconds since this run (not the checkpoint) started
    expert_load: list[list[int]]  # per MoE layer (main, then MTP): assignments per expert
    dropped: list[int]  # per MoE layer: assignments over capacity
    val_loss: float | None = None  # main loss on the fixed validation subset, on eval steps
    samples: list[str] | None = None  # names sampled on sample steps
    # I(domain; expert) in bits per main MoE layer (layer order), on eval steps of a run given a `DomainMI` that
    # measures it (a corpus with domains, an MoE model); else None
    domain_mi: list[float] | None = None
    domain_mi_initial: list[float] | None = None  # the same names through the same config untrained (constant)
    tokens_per_sec_avg: float = 0.0  # over the last THROUGHPUT_WINDOW steps: tokens / their step time
    tokens_per_sec_run: float = 0.0  # over every step of this run: tokens / step time (evaluations excluded)
    # muonclip (dsmini.training.qk_clip): attention heads rescaled after this step, the largest pre-softmax
    # logit of the step before rescaling, and the smallest factor γ = τ / max logit applied (1 = none)
    qk_clipped: int = 0
    qk_max_logit: float | None = None
    qk_min_gamma: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TrainState:
    """What a checkpoint must hold, beyond the weights, to resume exactly."""

    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    stop_reason: str | None = None
    best_step: int | None = None  # the evaluation whose weights are `Trainer.best_state`
    best_val_loss: float | None = None
    final: dict[str, Any] | None = None  # `Trainer.final_report()`, once computed for this step


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup, then cosine decay to lr * min_lr_ratio at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(1, cfg.steps - cfg.warmup_steps)
    progress = min(1.0, (step - cfg.warmup_steps) / span)
    floor = cfg.lr * cfg.min_lr_ratio
    return floor + 0.5 * (cfg.lr - floor) * (1 + math.cos(math.pi * progress))


def _is_muon_param(name: str, ndim: int, scope: str) -> bool:
    """Muon orthogonalises hidden weight matrices (2-D, and the stacked (E, h, d) routed experts,
    one matrix per expert, unless `scope` is "dense"); embeddings, the head, router weights and
    norms stay with AdamW (as in Keller Jordan's and Moonshot's recipes). Why "dense" exists:
    Newton-Schulz costs the same for an expert's matrix as for any other, while an expert sees only
    k/E of the tokens, so on a small model the experts' share of Muon's time far exceeds their share
    of the work (BENCHMARKS.md section 8)."""
    if ndim < 2 or name.startswith(("embed.", "head.")) or ".gate." in name:
        return False
    return scope == "all" or ".experts." not in name


# Devices whose fused AdamW kernel exists (one kernel for every parameter instead of ~10 ops
# each: the full small model's step 4.2 -> 0.8 ms on CPU) and whose foreach clipping pays.
FUSED_DEVICES = ("cpu", "cuda")


def build_optimizers(model: DSMini, cfg: TrainConfig) -> dict[str, torch.optim.Optimizer]:
    """AdamW with decay groups (no decay on norms, biases, embeddings); optionally Muon.

    AdamW is fused where the model's device has the kernel (`FUSED_DEVICES`); same update rule,
    so a run may resume from the other kind's state (`Trainer.restore`)."""
    params = dict(model.named_parameters())
    split = _optimizer_groups([(name, p.ndim) for name, p in params.items()], cfg)
    decay, no_decay = ([params[name] for name in group] for group in split["adamw"])
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    fused = model.head.weight.device.type in FUSED_DEVICES
    optimizers: dict[str, torch.optim.Optimizer] = {
        "adamw": torch.optim.AdamW(groups, lr=cfg.lr, betas=cfg.betas, fused=fused or None)
    }
    if split["muon"]:
        # match_rms_adamw scales Muon's update to AdamW's RMS, so one LR schedule serves both
        optimizers["muon"] = Muon(
            [params[name] for name in split["muon"][0]], lr=cfg.lr, weight_decay=cfg.weight_decay,
            adjust_lr_fn="match_rms_adamw",
        )
    return optimizers


def _optimizer_groups(named: list[tuple[str, int]], cfg: TrainConfig) -> dict[str, list[str]]:
    """`build_optimizers`' split of (name, ndim) pairs: optimizer -> its param names, group by group."""
    muon, decay, no_decay = [], [], []
    for name, ndim in named:
        if cfg.optimizer in ("muon", "muonclip") and _is_muon_param(name, ndim, cfg.muon_params):
            muon.append(name)
        elif ndim >= 2 and not name.startswith("embed."):
            decay.append(name)
        else:
            no_decay.append(name)
    return {"adamw": [decay, no_decay], "muon": [muon] if muon else []}


def _per_expert_names(model: DSMini) -> list[tuple[str, int, str]]:
    """Each parameter as an older dsmini named it: a stacked expert weight `...experts.w1` (E, h, d)
    was E 2-D weights `...experts.{e}.w1.weight`, in module order (expert by expert, w1 w2 w3 each).
    (name then, ndim then, name now)."""
    legacy, stacked = [], []
    for name, p in model.named_parameters():
        if ".experts.w" not in name:
            legacy += [(name, p.ndim, name)]
            continue
        stacked.append((name, p))
        if name.endswith("w3"):  # a layer's three weights are in: expert by expert, as nn.ModuleList held them
            prefix = name[: -len(".w3")]
            legacy += [(f"{prefix}.{e}.{n[-2:]}.weight", 2, n) for e in range(p.size(0)) for n, _ in stacked]
            stacked = []
    return legacy


def stacked_expert_state(state: dict[str, Any], optimizer: torch.optim.Optimizer, model: DSMini,
                         cfg: TrainConfig) -> dict[str, Any]:
    """An optimizer state saved before routed experts were stacked (one entry per expert weight),
    rebuilt for today's stacked parameters: each expert's moments become its slice of the stack
    (zeros for an expert that had none yet) and AdamW's step the largest of theirs, since the
    stack is stepped as one tensor. A state that already fits comes back unchanged."""
    fits = [len(g["params"]) for g in state["param_groups"]] == [len(g["params"]) for g in optimizer.param_groups]
    if fits:
        return state
    which = "muon" if "momentum" in optimizer.defaults else "adamw"
    legacy = _per_expert_names(model)
    old_groups = _optimizer_groups([(old, ndim) for old, ndim, _ in legacy], cfg)[which]
    if [len(g) for g in old_groups] != [len(g["params"]) for g in state["param_groups"]]:
        raise ValueError("the saved optimizer state does not fit this model, stacked or not")
    old_ids = {old: i for i, old in enumerate(old for group in old_groups for old in group)}
    current = {old: now for old, _, now in legacy}
    names = {id(p): name for name, p in model.named_parameters()}
    new_state, groups, next_id = {}, [], 0
    for saved, group in zip(state["param_groups"], optimizer.param_groups):
        ids = []
        for p in group["params"]:
            parts = [state["state"].get(old_ids[old]) for old, now in current.items() if now == names[id(p)]]
            merged = _stack_states(parts) if len(parts) > 1 else parts[0]
            if merged is not None:
                new_state[next_id] = merged
            ids.append(next_id)
            next_id += 1
        groups.append({**saved, "params": ids})
    return {"state": new_state, "param_groups": groups}


def _stack_states(parts: list[dict[str, Any] | None]) -> dict[str, Any] | None:
    """Per-expert optimizer states -> one for the stack; None when no expert had one."""
    present = [p for p in parts if p is not None]
    if not present:
        return None
    merged = {}
    for key, value in present[0].items():
        if key == "step":
            merged[key] = max((p[key] for p in present), key=float)
        else:
            merged[key] = torch.stack([value.new_zeros(value.shape) if p is None else p[key] for p in parts])
    return merged


def with_kernel_choice(state: dict[str, Any], optimizer: torch.optim.Optimizer) -> dict[str, Any]:
    """A saved optimizer state whose param groups take `optimizer`'s kernel switches (fused,
    foreach). `load_state_dict` adopts the saved groups whole, so without this a state saved by
    the unfused AdamW (older checkpoints, another device) would switch a fused run back, or a
    fused state would ask for a kernel this device lacks; the moments and steps are the same."""
    switches = ("fused", "foreach")
    groups = [
        {**saved, **{key: ours[key] for key in switches if key in ours}}
        for saved, ours in zip(state["param_groups"], optimizer.param_groups)
    ]
    return {**state, "param_groups": groups}


def evaluate(model: DSMini, split: EncodedSplit, batch_size: int = 256, limit: int | None = None) -> float:
    """Mean next-character cross-entropy (nats/char) over the first `limit` names of the split (all:
    None), counting every real target token (`dsmini.decoding.scoring`: each character and the end token).

    Eval mode and no autograd inside; the caller's mode comes back (the trainer's: train mode)."""
    rows = len(split.x) if limit is None else min(limit, len(split.x))
    nats, tokens = score_rows(model, split.x[:rows], split.y[:rows], batch_size)
    return float(nats.sum()) / max(int(tokens.sum()), 1)


def eval_limit(cfg: TrainConfig) -> int | None:
    """How many val names a periodic evaluation reads (None: all): see EVAL_BATCH_NAMES."""
    return cfg.eval_batches * EVAL_BATCH_NAMES if cfg.eval_batches else None


class Trainer:
    """Owns a model, its optimizers and RNGs; `run()` yields one StepMetrics per optimizer step."""

    def __init__(
        self,
        model_cfg: ModelConfig,
        train_cfg: TrainConfig,
        data: CorpusData,
        model: DSMini | None = None,
        state: TrainState | None = None,
        domain_mi: DomainMI | None = None,
    ):
        self.device = pick_device(train_cfg.device)
        data.tokenizer.check_model(model_cfg)
        if model_cfg.block_size < data.block_size:
            raise ValueError(f"model block_size {model_cfg.block_size} < corpus block_size {data.block_size}")
        self.model_cfg, self.cfg, self.data = model_cfg, train_cfg, data
        if model is None:
            torch.manual_seed(train_cfg.seed)  # the same seed gives the same initial weights
            model = DSMini(model_cfg)
        self.model = model.to(self.device).train()
        self.optimizers = build_optimizers(self.model, train_cfg)
        self.qk_clip = train_cfg.optimizer == "muonclip"
        track_max_logits(self.model, self.qk_clip)  # attention keeps each head's max logit while training
        self._params = list(self.model.parameters())  # walking the module tree each step costs ~0.2 ms
        self.batch_rng = torch.Generator().manual_seed(train_cfg.seed)
        self.state = state or TrainState()
        self._stop = threading.Event()
        self._domain_mi = domain_mi(model_cfg, data) if domain_mi is not None else None
        # the best evaluation's weights, on the CPU (a copy per improvement: ~1 ms for the small preset)
        self.best_state: dict[str, torch.Tensor] | None = None
        self._recent: deque[tuple[int, float]] = deque(maxlen=THROUGHPUT_WINDOW)  # (tokens, seconds) per step
        self._run_tokens, self._run_seconds = 0, 0.0

    @classmethod
    def resume(cls, path, data: CorpusData, steps: int | None = None, domain_mi: DomainMI | None = None) -> "Trainer":
        """Continue a saved run exactly where it stopped (optionally with a new step budget)."""
        ckpt = load_checkpoint(path, load_optimizer=True)
        train_cfg = (None if steps is None or ckpt.train_config is None
                     else dataclasses.replace(ckpt.train_config, steps=steps))
        return cls.from_checkpoint(ckpt, data, train_cfg, domain_mi)

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, data: CorpusData, train_cfg: TrainConfig | None = None,
                        domain_mi: DomainMI | None = None) -> "Trainer":
        """`resume` for a checkpoint loaded with load_optimizer=True, so a caller can compare it with
        what it was given (the CLI refuses another corpus or conflicting flags) before going on.
        `train_cfg` replaces the saved one (default: the saved one)."""
        if ckpt.train_config is None or ckpt.optimizer_states is None:
            raise ValueError(f"{ckpt.path} holds no optimizer state (saved for inference only); it cannot be resumed")
        best = load_best_state(ckpt)
        summary = ckpt.summary or {}
        state = TrainState(ckpt.step, list(ckpt.history))
        if best is not None:  # the run's best so far stays its best until beaten
            state.best_step, state.best_val_loss = summary.get("best_step"), summary.get("best_val_loss")
        trainer = cls(ckpt.model_config, train_cfg or ckpt.train_config, data, model=ckpt.model, state=state,
                      domain_mi=domain_mi)
        trainer.best_state = best
        trainer.restore(ckpt.optimizer_states, ckpt.rng_states)
        return trainer

    # control ------------------------------------------------------------------------------
    def request_stop(self) -> None:
        """Finish the current step, then end `run()` (the weights stay consistent)."""
        self._stop.set()

    @property
    def step(self) -> int:
        return self.state.step

    @property
    def run_tokens_per_sec(self) -> float:
        """Tokens per second of step time over the last (or current) run() so far; 0 before a step."""
        return self._run_tokens / self._run_seconds if self._run_seconds else 0.0

    # the loop -----------------------------------------------------------------------------
    def run(self, stop: threading.Event | None = None) -> Iterator[StepMetrics]:
        """Train until cfg.steps; a stop request ends this run only (a later run() resumes)."""
        self._stop.clear()
        start = time.perf_counter()
        self._recent.clear()
        self._run_tokens, self._run_seconds = 0, 0.0
        while self.state.step < self.cfg.steps:
            if self._stop.is_set() or (stop is not None and stop.is_set()):
                self.state.stop_reason = f"stopped on request at step {self.state.step}"
                return
            metrics = self._train_step(start)
            if metrics is None:
                return
            self.state.history.append(metrics.to_dict())
            yield metrics
        self.state.stop_reason = "completed"
        self.final_report()  # so every completed run's checkpoint records its test loss

    def _train_step(self, run_start: float) -> StepMetrics | None:
        """One optimizer step (grad_accum micro-batches). Returns None if the loss is not finite:
        the update is skipped, so the weights stay those of the last good step."""
        cfg, model = self.cfg, self.model
        step = self.state.step
        lr = lr_at(step, cfg)
        for opt in self.optimizers.values():
            for group in opt.param_groups:
                group["lr"] = lr
        t0 = time.perf_counter()
        sums = {"loss": 0.0, "main": 0.0, "aux": 0.0}
        mtp_sums = [0.0] * self.model_cfg.mtp_depth
        loads: torch.Tensor | None = None  # (L, E) summed over micro-batches, read once per step
        dropped: list[int] | None = None
        tokens = 0
        for _ in range(cfg.grad_accum):
            x, y = get_batch(self.data.train.x, self.data.train.y, cfg.batch_size, self.batch_rng)
            x, y = x.to(self.device), y.to(self.device)
            with autocast(self.device):
                out = model(x, y)
            # every loss of the micro-batch in one host transfer (one sync on a GPU, not one per loss)
            loss, main, aux, *mtp = torch.stack([out.loss, out.main_loss, out.aux_loss, *out.mtp_losses]).tolist()
            if not math.isfinite(loss):
                self.state.stop_reason = (f"loss became {loss} at step {step + 1}; stopped, weights kept from "
                                          f"step {step}")
                return None
            (out.loss / cfg.grad_accum).backward()
            tokens += count_target_tokens(y)
            sums["loss"] += loss / cfg.grad_accum
            sums["main"] += main / cfg.grad_accum
            sums["aux"] += aux / cfg.grad_accum
            for k, mtp_loss in enumerate(mtp):
                mtp_sums[k] += mtp_loss / cfg.grad_accum
            step_loads = torch.stack([r.load for r in out.routing]) if out.routing else None
            loads = step_loads if loads is None else loads + step_loads
            step_dropped = [r.n_dropped for r in out.routing]
            dropped = step_dropped if dropped is None else [a + b for a, b in zip(dropped, step_dropped)]
        grad_norm = self._clip_gradients()
        if not math.isfinite(grad_norm):
            self._zero_grad()
            self.state.stop_reason = (
                f"gradient norm became {grad_norm} at step {step + 1}; stopped, weights kept from step {step}"
            )
            return None
        for opt in self.optimizers.values():
            opt.step()
        clip = qk_clip(model, cfg.qk_clip_tau) if self.qk_clip else None  # MuonClip: after the update (K2 Alg. 1)
        self._zero_grad()
        if loads is not None:
            model.update_router_biases(list(loads))  # aux-loss-free balancing: once per optimizer step
        self.state.step = step + 1
        synchronize(self.device)  # on a GPU the step's kernels are still queued: read the clock after them
        elapsed = time.perf_counter() - t0
        self._recent.append((tokens, elapsed))
        self._run_tokens, self._run_seconds = self._run_tokens + tokens, self._run_seconds + elapsed
        metrics = StepMetrics(
            step=self.state.step, loss=sums["loss"], main_loss=sums["main"], mtp_losses=mtp_sums,
            aux_loss=sums["aux"], lr=lr, grad_norm=grad_norm, tokens=tokens,
            tokens_per_sec=tokens / max(elapsed, 1e-9), elapsed=time.perf_counter() - run_start,
            expert_load=[] if loads is None else loads.tolist(), dropped=dropped or [],
            tokens_per_sec_avg=sum(t for t, _ in self._recent) / max(sum(e for _, e in self._recent), 1e-9),
            tokens_per_sec_run=self._run_tokens / max(self._run_seconds, 1e-9),
        )
        if clip is not None:
            metrics.qk_clipped, metrics.qk_max_logit = clip.clipped, clip.max_logit
            metrics.qk_min_gamma = clip.min_gamma
        self._periodic(metrics)
        return metrics

    def _clip_gradients(self) -> float:
        """Total gradient norm before clipping (one host sync); one foreach kernel per op where it pays."""
        params = [p for p in self._params if p.grad is not None]
        max_norm = self.cfg.grad_clip if self.cfg.grad_clip > 0 else float("inf")
        foreach = self.device.type in FUSED_DEVICES or None
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm, foreach=foreach))

    def _zero_grad(self) -> None:
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)

    def _periodic(self, metrics: StepMetrics) -> None:
        step, cfg = metrics.step, self.cfg
        if step % cfg.eval_every == 0 or step == cfg.steps:
            metrics.val_loss = evaluate(self.model, self.data.val, limit=eval_limit(cfg))
            self._keep_if_best(step, metrics.val_loss)
            if self._domain_mi is not None:
                metrics.domain_mi, metrics.domain_mi_initial = self._domain_mi(self.model)
        if cfg.sample_every and (step % cfg.sample_every == 0 or step == cfg.steps):
            names = generate(self.model, self.data.tokenizer, n=cfg.n_samples, seed=cfg.seed + step)
            metrics.samples = [g.text for g in names]

    def _keep_if_best(self, step: int, val_loss: float) -> None:
        """Copy the weights when this evaluation is the best so far (ties keep the earlier)."""
        if self.state.best_val_loss is None or val_loss < self.state.best_val_loss:
            self.state.best_step, self.state.best_val_loss = step, val_loss
            self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def final_report(self) -> dict[str, Any]:
        """The whole val split and the test split, each scored once with the last weights (nats/char;
        test None when the run has no test names); computed once per step reached, kept in the summary.
        The periodic evaluations read a fixed subset (`eval_limit`); this reads every name."""
        if self.state.final is None or self.state.final["step"] != self.state.step:
            test = self.data.test
            self.state.final = {
                "step": self.state.step,
                "val_loss": evaluate(self.model, self.data.val),
                "val_names": len(self.data.val.names),
                "test_loss": evaluate(self.model, test) if test.names else None,
                "test_names": len(test.names),
            }
        return dict(self.state.final)

    # checkpoints --------------------------------------------------------------------------
    def rng_states(self) -> dict[str, torch.Tensor]:
        """Batch order and the global RNG (noisy-router noise, dropout): both needed to resume exactly."""
        return {"batches": self.batch_rng.get_state(), "torch": torch.get_rng_state()}

    def restore(self, optimizer_states: dict[str, dict] | None, rng_states: dict[str, torch.Tensor] | None) -> None:
        for name, state in (optimizer_states or {}).items():
            if name not in self.optimizers:
                raise ValueError(f"checkpoint has state for optimizer {name!r}, this run uses "
                                 f"{sorted(self.optimizers)}")
            optimizer = self.optimizers[name]
            state = stacked_expert_state(state, optimizer, self.model, self.cfg)
            optimizer.load_state_dict(with_kernel_choice(state, optimizer))
        if rng_states:
            self.batch_rng.set_state(rng_states["batches"])
            torch.set_rng_state(rng_states["torch"])

    def summary(self) -> dict[str, Any]:
        """Headline numbers for the checkpoint card."""
        vals = [h["val_loss"] for h in self.state.history if h.get("val_loss") is not None]
        final = self.state.final if self.state.final and self.state.final["step"] == self.state.step else {}
        return {
            "steps": self.state.step,
            "val_loss": vals[-1] if vals else None,
            "best_val_loss": min(vals) if vals else None,
            "best_step": self.state.best_step if self.best_state is not None else None,  # of best.safetensors
            "eval_names": min(eval_limit(self.cfg) or len(self.data.val.names), len(self.data.val.names)),
            "final_val_loss": final.get("val_loss"),  # the whole val split, last weights
            "test_loss": final.get("test_loss"),  # the test split, once, last weights
            "test_names": final.get("test_names"),
            "train_seconds": sum(h["tokens"] / h["tokens_per_sec"] for h in self.state.history if h["tokens_per_sec"]),
            "stop_reason": self.state.stop_reason,
        }

    def save(self, root, name: str, include_optimizer: bool = True, overwrite: bool = False,
             forward_only: bool = False):
        return save_checkpoint(
            root, name, self.model, self.data.tokenizer,
            train_config=self.cfg,
            corpus=corpus_reference(self.data),
            history=self.state.history, summary=self.summary(), step=self.state.step,
            optimizer_states={k: o.state_dict() for k, o in self.optimizers.items()} if include_optimizer else None,
            rng_states=self.rng_states() if include_optimizer else None,
            best_state=self.best_state,
            overwrite=overwrite,
            forward_only=forward_only,
        )

    def weights_are_finite(self) -> bool:
        """Whether every parameter and buffer is finite. A diverged update (an lr far too high) can
        leave NaN in the weights before any loss shows it; such weights must never be saved."""
        return all(bool(torch.isfinite(t).all()) for t in self.model.state_dict().values() if t.is_floating_point())


def train(model_cfg: ModelConfig, train_cfg: TrainConfig, data: CorpusData, stop=None,
          domain_mi: DomainMI | None = None) -> Iterator[StepMetrics]:
    """The one training generator: `for m in train(...): print(m.step, m.loss)`."""
    yield from Trainer(model_cfg, train_cfg, data, domain_mi=domain_mi).run(stop)
