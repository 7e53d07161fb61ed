"""ForwardOptions: the switches of one forward pass, built once by `DSMini.forward` and handed
whole to every block, so a new switch is one field here rather than one more argument threaded
through the model, the blocks, attention, MoE and MTP."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import torch

if TYPE_CHECKING:
    from .moe import ExpertAblation


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
