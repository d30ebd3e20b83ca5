"""How far the estimates (benchmarks.services.estimates) are from what a card measures:
hold one card out, estimate it from the others, compare.

No database: the data are generated. Each dataset draws a "true" speed and peak memory for
every catalog card and standard configuration from a model of its own, deliberately unlike
the estimator's: efficiency that depends on the architecture, on each card (clocks, power
limits, cooling: +-7%) and on the configuration (ComfyUI faster, FP8 storage's upcasts
slower, model offload paying PCIe transfers that depend on the bus generation); memory with
a CUDA context per architecture, allocator slack, activation constants other than the
estimator's, and ComfyUI unloading the text encoder before the transformer runs. A few
results per group, each +-4%, give the summary's median. A configuration whose true peak
exceeds the card's memory ran out of memory there (no figures); 30% of the rest are left
unmeasured, as on a young site.

For every card and configuration that has figures, the card's own are removed and the
estimate is compared with them, at three levels of data: as generated (estimates from
cards of the same architecture where there are any), with the card's architecture removed
(only other architectures), and with the configuration removed everywhere (the
architecture alone). Run: `make perf PERF_ARGS=estimates` or `python perf/estimates.py`.
"""

from __future__ import annotations

import random
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from klein_bench.contract.models import KLEIN_4B  # noqa: E402

from benchmarks.catalog_data import CONFIGURATIONS, GPUS  # noqa: E402
from benchmarks.services import estimates as est  # noqa: E402

DATASETS = 40
MISSING_SHARE = 0.3
RESULT_NOISE = 0.04
CARD_NOISE = 0.07
MEMORY_NOISE = 0.015
# The generator's truths, unknown to the estimator.
ARCHITECTURE_EFFICIENCY = {"Ampere": 0.55, "Ada Lovelace": 0.60, "Blackwell": 0.52, "Hopper": 0.36}
CONTEXT_MIB = {"Ampere": 380, "Ada Lovelace": 460, "Blackwell": 540, "Hopper": 600}
PCIE_GBS = {"Ampere": 24.0, "Ada Lovelace": 24.0, "Blackwell": 48.0, "Hopper": 48.0}
RUNTIME_EFFICIENCY = {"diffusers": 1.0, "comfyui": 1.10}
PRECISION_EFFICIENCY = {"bf16": 1.0, "fp8-storage": 0.88, "fp8-compute": 1.0}
FIXED_SECONDS = 0.08  # scheduler, Python and image conversion per image


def cards() -> list[est.Card]:
    return [
        est.Card(
            g["slug"],
            g["name"],
            g["architecture"],
            g["vram_mb"],
            g["bf16_tflops"],
            g["fp8_tflops"],
            g["memory_bandwidth_gbs"],
        )
        for g in GPUS
        if g["bf16_tflops"]
    ]


def setups() -> list[est.Setup]:
    return [
        est.Setup(c["runtime"], c["precision"], c["offload"], 1024, 1024, 4) for c in CONFIGURATIONS
    ]


def true_seconds(card: est.Card, setup: est.Setup, card_factor: float) -> float:
    work = KLEIN_4B.work(width=setup.width, height=setup.height, steps=setup.steps)
    efficiency = (
        ARCHITECTURE_EFFICIENCY[card.architecture]
        * card_factor
        * RUNTIME_EFFICIENCY[setup.runtime]
        * PRECISION_EFFICIENCY[setup.precision]
    )
    seconds = work.total_flop / (card.bf16_tflops * 1e12 * efficiency) + FIXED_SECONDS
    if setup.offload == "model":
        weights = sum(n * 2 for n in KLEIN_4B.architecture.parameters.values())
        seconds += weights / (PCIE_GBS[card.architecture] * 1e9)
    return seconds


def true_peak_mib(card: est.Card, setup: est.Setup) -> float:
    sizes = est.storage_bytes(setup.precision)
    parts = {
        name: n * sizes[name] / est.MIB for name, n in KLEIN_4B.architecture.parameters.items()
    }
    if setup.offload == "model":
        weights = max(parts.values())
    elif setup.runtime == "comfyui":
        weights = max(parts["text_encoder"], parts["transformer"] + parts["vae"])
    else:
        weights = sum(parts.values())
    tokens = 64 * 64 + 512
    activations = max(tokens * 3072 * 40, 1024 * 1024 * 1800) / est.MIB
    return weights * 1.06 + activations + CONTEXT_MIB[card.architecture]


def dataset(seed: int) -> tuple[list[est.Observation], dict]:
    """Observations as a site would have them, and every card's true answer."""
    rng = random.Random(seed)
    observed: list[est.Observation] = []
    truth: dict[tuple[str, est.Setup], est.Observation] = {}
    for card in cards():
        card_factor = rng.lognormvariate(0, CARD_NOISE)
        memory_factor = rng.lognormvariate(0, MEMORY_NOISE)
        for setup in setups():
            peak = true_peak_mib(card, setup) * memory_factor
            if peak > card.vram_mb:
                continue  # out of memory: no figures
            seconds = true_seconds(card, setup, card_factor)
            results = [
                seconds * rng.lognormvariate(0, RESULT_NOISE) for _ in range(rng.randint(1, 8))
            ]
            obs = est.Observation(card, setup, statistics.median(results), peak)
            truth[(card.slug, setup)] = obs
            if rng.random() >= MISSING_SHARE:
                observed.append(obs)
    return observed, truth


@dataclass
class Errors:
    """Relative errors (estimate / measured - 1) and whether the range held the measurement."""

    errors: list[float]
    inside: list[bool]

    def line(self, name: str) -> str:
        if not self.errors:
            return f"{name:<44} {'-':>6}"
        absolute = sorted(abs(e) for e in self.errors)
        p90 = absolute[min(len(absolute) - 1, int(0.9 * len(absolute)))]
        return (
            f"{name:<44} {len(self.errors):>6} {statistics.median(absolute) * 100:>8.1f}% "
            f"{p90 * 100:>8.1f}% {statistics.median(self.errors) * 100:>+8.1f}% "
            f"{sum(self.inside) / len(self.inside) * 100:>8.0f}%"
        )

    def summary(self) -> dict:
        absolute = sorted(abs(e) for e in self.errors)
        return {
            "n": len(self.errors),
            "median_abs_error": statistics.median(absolute) if absolute else None,
            "p90_abs_error": absolute[int(0.9 * (len(absolute) - 1))] if absolute else None,
            "bias": statistics.median(self.errors) if self.errors else None,
            "range_coverage": sum(self.inside) / len(self.inside) if self.inside else None,
        }


def evaluate(datasets: int = DATASETS) -> dict[str, Errors]:
    levels = {
        "speed, same architecture measured": Errors([], []),
        "speed, only other architectures measured": Errors([], []),
        "speed, architecture alone": Errors([], []),
        "memory, configuration measured elsewhere": Errors([], []),
        "memory, architecture alone": Errors([], []),
    }
    fit_agree = []
    for seed in range(datasets):
        observed, truth = dataset(seed)
        for card in cards():
            for setup in setups():
                actual = truth.get((card.slug, setup))
                datas = {
                    "as generated": observed,
                    "other architectures": [
                        o for o in observed if o.card.architecture != card.architecture
                    ],
                    "architecture alone": [o for o in observed if o.setup != setup],
                }
                for data_name, data in datas.items():
                    found = est.estimate(KLEIN_4B, card, setup, data)
                    if data_name == "as generated":
                        fit_agree.append((found.memory.fit == est.DOES_NOT_FIT) == (actual is None))
                    if actual is None:
                        continue
                    memory = found.memory
                    key = {
                        est.MEASURED: "memory, configuration measured elsewhere",
                        est.ARCHITECTURE_ONLY: "memory, architecture alone",
                    }[memory.basis]
                    if data_name != "other architectures":
                        _add(levels[key], memory.mib, actual.peak_mib)
                    speed = est.estimate_speed(KLEIN_4B, card, setup, data)
                    key = {
                        est.SAME_ARCHITECTURE: "speed, same architecture measured",
                        est.OTHER_ARCHITECTURES: "speed, only other architectures measured",
                        est.ARCHITECTURE_ONLY: "speed, architecture alone",
                    }[speed.basis]
                    if data_name == "as generated" or speed.basis != est.SAME_ARCHITECTURE:
                        _add(levels[key], speed.seconds, actual.seconds)
    levels["fit verdict agrees with out of memory or not"] = Errors(
        [0.0 if ok else 1.0 for ok in fit_agree], fit_agree
    )
    return levels


def _add(errors: Errors, estimate: est.Range, actual: float) -> None:
    errors.errors.append(estimate.value / actual - 1)
    errors.inside.append(estimate.low <= actual <= estimate.high)


def run(datasets: int = DATASETS) -> dict:
    levels = evaluate(datasets)
    print(f"  {datasets} generated datasets, {len(cards())} cards, {len(setups())} configurations")
    print(f"  {'':<44} {'n':>6} {'median':>9} {'p90':>9} {'bias':>9} {'in range':>9}")
    for name, errors in levels.items():
        if name.startswith("fit"):
            agree = sum(errors.inside) / len(errors.inside) * 100
            print(f"  {name}: {agree:.0f}% of {len(errors.inside)} card-configurations")
        else:
            print("  " + errors.line(name))
    same = levels["speed, same architecture measured"].summary()
    memory = levels["memory, configuration measured elsewhere"].summary()
    return {
        "levels": {name: errors.summary() for name, errors in levels.items()},
        "headline": (
            f"speed {same['median_abs_error'] * 100:.0f}% median error (same architecture), "
            f"memory {memory['median_abs_error'] * 100:.1f}%"
        ),
        "met": True,
    }


if __name__ == "__main__":
    run()
