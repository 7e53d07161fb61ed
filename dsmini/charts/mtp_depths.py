"""The MTP page's table of teacher-forced accuracy per depth (probes.mtp.depth_accuracy): the main
model beside every MTP module, each on its own target (depth k: the character k + 1 ahead)."""

from __future__ import annotations

import pandas as pd

from dsmini.i18n import t
from dsmini.probes.mtp import DepthAccuracy


def depth_accuracy_table(depths: list[DepthAccuracy], lang: str = "en") -> pd.DataFrame:
    """One row per depth: who predicts, what, how often right, over how many positions."""
    def who(depth: int) -> str:
        return t("mtp.depth_main", lang) if depth == 0 else t("mtp.depth_module", lang, depth=depth)

    return pd.DataFrame([
        {
            t("mtp.col_depth", lang): who(d.depth),
            t("mtp.col_predicts", lang): t("mtp.depth_target", lang, ahead=d.depth + 1),
            t("mtp.col_accuracy", lang): f"{d.rate:.1%}",
            t("mtp.col_positions", lang): d.total,
        }
        for d in depths
    ])
