"""One model on a few cards side by side (/compare/<model>/?gpu=a&gpu=b): each card's
verdict, then every configuration measured on any of them, or estimated where a card has
no result in it (labelled as an estimate)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from benchmarks.models import Gpu, ImageModel, Summary
from checkpages import estimated
from checkpages.presentation import ConfigSummary, PairVerdict, describe_pair
from checkpages.queries import Estimator, capacity, rows_for

MAX_CARDS = 4


@dataclass
class Slot:
    """One configuration on one card: measured, estimated, or neither."""

    measured: ConfigSummary | None = None
    estimate: estimated.EstimateRow | None = None


@dataclass
class Family:
    key: tuple[str, str, str]  # runtime, precision, offload
    label: str
    colour: str
    slots: list[Slot]


@dataclass
class Column:
    gpu: Gpu
    verdict: PairVerdict
    estimate: estimated.PairEstimateView | None


@dataclass
class Comparison:
    model: ImageModel
    columns: list[Column]
    families: list[Family]

    @property
    def cards(self) -> list[tuple[Column, list[tuple[Family, Slot]]]]:
        """Card by card, each with its configurations: the layout that stacks on a phone."""
        return [
            (column, [(family, family.slots[i]) for family in self.families])
            for i, column in enumerate(self.columns)
        ]


def comparison(model: ImageModel, gpus: list[Gpu]) -> Comparison:
    summaries = Summary.objects.filter(model=model, gpu__in=gpus).select_related(
        "configuration", "gpu"
    )
    by_gpu: dict[int, list[Summary]] = defaultdict(list)
    # Configurations run with random weights on a card need no estimate there either.
    synthetic: dict[int, set[tuple[str, str, str]]] = defaultdict(set)
    for summary in summaries:
        c = summary.configuration
        if summary.synthetic:
            synthetic[summary.gpu_id].add((c.runtime, c.precision, c.offload))
        else:
            by_gpu[summary.gpu_id].append(summary)
    estimator = Estimator.for_model(model)
    columns: list[Column] = []
    measured: list[dict[tuple, ConfigSummary]] = []
    estimates: list[dict[tuple, estimated.EstimateRow]] = []
    labels: dict[tuple, tuple[str, str]] = {}
    for gpu in gpus:
        rows = rows_for(by_gpu.get(gpu.pk, []), model, gpu)
        standard = {}
        for row in rows:
            c = row.configuration
            key = (c.runtime, c.precision, c.offload)
            if row.default_size and key not in standard:
                standard[key] = row
                labels.setdefault(key, (row.label, row.colour))
        estimate = estimator.pair(gpu, exclude=set(standard) | synthetic[gpu.pk])
        found = {}
        for row in estimate.rows if estimate else []:
            found[row.setup.family] = row
            labels.setdefault(row.setup.family, (row.label, row.colour))
        columns.append(Column(gpu, describe_pair(rows, capacity(gpu)), estimate))
        measured.append(standard)
        estimates.append(found)
    families = [
        Family(
            key,
            label,
            colour,
            [Slot(measured[i].get(key), estimates[i].get(key)) for i in range(len(gpus))],
        )
        for key, (label, colour) in labels.items()
    ]
    # Configurations measured somewhere first.
    families.sort(key=lambda f: not any(slot.measured for slot in f.slots))
    return Comparison(model, columns, families)
