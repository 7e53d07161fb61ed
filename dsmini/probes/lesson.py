"""The guided lesson's settings and the few readings of existing results that only it needs: which
shipped models it uses and the exact command that trains each again, who wins the router shoot-out,
and when the live I(domain; expert) curve first left the untrained line.

Every chart of the lesson is computed by the probes the other pages use, with the other pages'
default settings, so a class on the lesson shares their cached results.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .generation import GenerateSettings
from .specialisation import RouterRun, RouterShootout

PREFIX = "Крас"  # steps 1-2: the README's example, a prefix of many Russian surnames
# step 1's names: the Generate page's defaults but the prefix, so its button shows the same names (one cache entry)
NAMES = GenerateSettings(prefix=PREFIX)
N_NAMES, TEMPERATURE, SEED = NAMES.n, NAMES.temperature, NAMES.seed
DROP_DOMAIN, DROP_TOP_N = "ru", 2  # step 4: the Experts page's one-click "top 2 of Russian" in every layer
NAMES_MODEL = "ru-names"  # steps 1-2 and 7
SHOOTOUT = ("ru-en-names", "ru-en-softmax", "ru-en-noisy")  # step 5: trained alike, only the router differs

_COMMON = ("--preset small --steps {steps} --warmup-steps 100 --eval-every {every} --sample-every 1000 --threads 1 "
           "--out checkpoints --name {name} --no-optimizer-state")
_MIXED = "python -m dsmini train --corpus ru-en-names --router {router} --aux-loss-coef {aux} " + _COMMON
# how each model the lesson uses was trained (checkpoints/README.md), for a teacher who deleted one
TRAIN_COMMANDS = {
    "ru-names": ("python -m dsmini train --corpus ru-names " + _COMMON).format(steps=3000, every=250, name="ru-names"),
    # every 50 steps: its history is the domain curve step 6 shows
    "ru-en-names": _MIXED.format(router="sigmoid_bias", aux=0, steps=2000, every=50, name="ru-en-names"),
    # trained when softmax_topk renormalised its top k (DeepSeek-V2 does not, today's default): said explicitly
    "ru-en-softmax": _MIXED.format(router="softmax_topk --norm-topk-prob", aux=0.01, steps=2000, every=250,
                                   name="ru-en-softmax"),
    "ru-en-noisy": _MIXED.format(router="noisy_topk", aux=0.01, steps=2000, every=250, name="ru-en-noisy"),
}


def clearest_router(shootout: RouterShootout) -> tuple[RouterRun, int]:
    """The run whose experts separate the domains most in any layer, and that layer: the lesson
    names the winner from the data, so its text holds whichever router wins on a retrained set."""
    run = max(shootout.runs, key=lambda r: max(r.mi.values()))
    return run, max(run.layers, key=lambda layer: run.mi[layer])


@dataclass(frozen=True)
class FirstRise:
    """The first eval step at which some layer's I(domain; expert) was above every untrained layer's."""

    step: int
    seconds: float  # since the run started


def first_rise(history: list[dict[str, Any]]) -> FirstRise | None:
    """When a training history's domain curve first cleared the untrained line (the grey line of
    `charts.training.domain_mi_curve`, the highest untrained layer); None if it never did or the
    history does not measure it."""
    for row in history:
        if row.get("domain_mi") and max(row["domain_mi"]) > max(row["domain_mi_initial"]):
            return FirstRise(step=row["step"], seconds=float(row["elapsed"]))
    return None
