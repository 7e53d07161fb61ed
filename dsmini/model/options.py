"""ForwardOptions: the switches of one forward pass, built once by `DSMini.forward` and handed
whole to every block, so a new switch is one field here rather than one more argument threaded
through the model, the blocks, attention, MoE and MTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch

ABLATION_MODES = ("reroute", "drop")


@dataclass(frozen=True)
class ExpertAblation:
    """What the explorer switches off in one MoE layer; why three ways: dsmini.model.moe's docstring."""

    blocked: torch.Tensor | None = None  # (E,) bool: routed experts switched off
    mode: str = "reroute"  # how `blocked` acts: "reroute" (never chosen) or "drop" (output removed)
    mask_top: int = 0  # r: mask each token's r highest-scoring experts, choose top-k from the rest
    shared_off: bool = False  # the shared experts' output removed too

    def check(self, n_experts: int, top_k: int) -> None:
        """ValueError unless every token still has k experts to choose from."""
        if self.mode not in ABLATION_MODES:
            raise ValueError(f"ablation mode must be one of {ABLATION_MODES}, got {self.mode!r}")
        if self.blocked is not None and tuple(self.blocked.shape) != (n_experts,):
            raise ValueError(f"blocked must be an ({n_experts},) bool mask, got shape {tuple(self.blocked.shape)}")
        rerouted = self.n_blocked if self.mode == "reroute" else 0
        unavailable = self.mask_top + rerouted
        if self.mask_top < 0 or unavailable > n_experts - top_k:
            raise ValueError(
                f"cannot take {unavailable} of {n_experts} experts out of the choice: each token still needs "
                f"top_k={top_k} (masked top-r={self.mask_top}, rerouted around {rerouted})"
            )

    @property
    def n_blocked(self) -> int:
        return 0 if self.blocked is None else int(self.blocked.sum())

    def choice_blocked(self) -> torch.Tensor | None:
        """(E,) experts the router may not choose: the blocked ones when rerouting."""
        return self.blocked if self.mode == "reroute" else None

    def output_blocked(self) -> torch.Tensor | None:
        """(E,) experts that are chosen but whose output is removed: the blocked ones when dropping."""
        return self.blocked if self.mode == "drop" else None



@dataclass(frozen=True, eq=False)
class ForwardOptions:
    """need_weights: attention probabilities per layer (the explorer; the slower unfused path).
    absorb: MLA's weight-absorbed path (decoding); the same numbers as the naive path.
    ablation: {layer_id: ExpertAblation} experts switched off (the explorer only; see dsmini.model.moe).
    valid: (b, s) bool, False at padding (targets == IGNORE_INDEX): MoE leaves padding out of its
        load and aux loss. None = every position is real (no targets, as when sampling).
    causal: (s, t) bool, True = may attend: the causal mask of a pass of s > 1 new positions over a
        cache, built once per pass rather than once per layer (a verify pass at batch 1 pays per op).
        None = each layer builds its own where it needs one."""

    need_weights: bool = False
    absorb: bool = False
    ablation: Mapping[int, ExpertAblation] = field(default_factory=dict)
    valid: torch.Tensor | None = None
    causal: torch.Tensor | None = None

    def for_mtp_depth(self, k: int) -> ForwardOptions:
        """The options of MTP depth k, whose module sees positions k.. of the batch (V3 §2.2). Its
        attention maps are never shown, so it keeps the fused attention path."""
        valid = None if self.valid is None else self.valid[:, k:]
        return dataclasses.replace(self, need_weights=False, valid=valid, causal=None)
