"""One model on a few cards side by side (/compare/<model>/?gpu=a&gpu=b): each card's
verdict, then every configuration measured on any of them, or estimated where a card has
no result in it (labelled as an estimate)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from benchmarks.models import Gpu, ImageModel, Summary
from benchmarks.services import answers
from checkpages import estimated
from checkpages.presentation import ConfigSummary
from checkpages.queries import Estimator, rows_for
from checkpages.verdicts import AnswerView

MAX_CARDS = 4


@dataclass
class Slot:
    """One configuration on one card: measured, estimated, run with random weights only,
    or none of these."""

    measured: ConfigSummary | None = None
    estimate: estimated.EstimateRow | None = None
    synthetic: ConfigSummary | None = None


@dataclass
class Family:
    key: tuple[str, str, str]  # runtime, precision, offload
    label: str
    colour: str
    slots: list[Slot]


@dataclass
class Column:
    gpu: Gpu
    answer: AnswerView
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


def _by_family(rows: list[ConfigSummary]) -> dict[tuple[str, str, str], ConfigSummary]:
    """Each configuration at the standard size, its best summary (rows come best first)."""
    found: dict[tuple[str, str, str], ConfigSummary] = {}
    for row in rows:
        c = row.configuration
        if row.default_size:
            found.setdefault((c.runtime, c.precision, c.offload), row)
    return found


def comparison(model: ImageModel, gpus: list[Gpu]) -> Comparison:
    summaries = Summary.objects.filter(model=model, gpu__in=gpus).select_related(
        "configuration", "gpu"
    )
    by_gpu: dict[int, list[Summary]] = defaultdict(list)
    for summary in summaries:
        by_gpu[summary.gpu_id].append(summary)
    usable = answers.usable_by_pair([model], gpus)
    estimator = Estimator.for_model(model)
    columns: list[Column] = []
    cells: list[tuple[dict, dict, dict]] = []
    labels: dict[tuple, tuple[str, str]] = {}
    for gpu in gpus:
        found = estimator.answer(gpu, by_gpu.get(gpu.pk, []), usable[(model.pk, gpu.pk)])
        measured = _by_family(found.rows)
        synthetic = _by_family(
            rows_for([s for s in by_gpu.get(gpu.pk, []) if s.synthetic], model, gpu)
        )
        estimates = {
            row.setup.family: row for row in (found.estimate.rows if found.estimate else [])
        }
        for key, row in [*measured.items(), *synthetic.items()]:
            labels.setdefault(key, (row.label, row.colour))
        for key, row in estimates.items():
            labels.setdefault(key, (row.label, row.colour))
        columns.append(Column(gpu, found.answer, found.estimate))
        cells.append((measured, estimates, synthetic))
    families = [
        Family(
            key,
            label,
            colour,
            [
                Slot(measured.get(key), estimates.get(key), synthetic.get(key))
                for measured, estimates, synthetic in cells
            ],
        )
        for key, (label, colour) in labels.items()
    ]
    # Configurations measured somewhere first.
    families.sort(key=lambda f: not any(slot.measured for slot in f.slots))
    return Comparison(model, columns, families)
