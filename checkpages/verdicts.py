"""The answer (benchmarks.services.answers) as every page shows it: the pill and its word,
the headline, and the configuration it rests on. The check page, the overview's cells,
the model page, the compare page and the titles all render an AnswerView, so they say
the same thing as each other and as the API."""

from __future__ import annotations

from dataclasses import dataclass

from benchmarks.services import answers
from checkpages import estimated
from checkpages.presentation import ConfigSummary, PairVerdict, describe_pair, describe_row


@dataclass
class AnswerView:
    answer: answers.Answer
    headline: str
    # The measured configuration it rests on (as the pages show rows), if one.
    row: ConfigSummary | None = None
    # That configuration when it works: the figures the headline quotes.
    best: ConfigSummary | None = None
    # The estimated configuration it rests on, if one.
    estimate_row: estimated.EstimateRow | None = None
    # The measured answer in words (describe_pair or describe_row), when measured.
    words: PairVerdict | None = None

    @property
    def source(self) -> str:
        return self.answer.source

    @property
    def verdict(self) -> str:
        return self.answer.verdict

    @property
    def label(self) -> str:
        return self.answer.label

    @property
    def measured(self) -> bool:
        return self.answer.measured

    @property
    def estimated(self) -> bool:
        return self.answer.estimated

    @property
    def pill(self) -> str:
        """The verdict's colour class: an estimate looks like what it anticipates."""
        if self.answer.estimated:
            return estimated.PILL[self.answer.verdict]
        return self.answer.verdict

    @property
    def configuration_label(self) -> str:
        if self.row is not None:
            return self.row.label
        if self.estimate_row is not None:
            return self.estimate_row.label
        return ""

    @property
    def title(self) -> str:
        """For the page title and links: 'runs', 'expected to fit (estimate)'."""
        return f"{self.label} (estimate)" if self.answer.estimated else self.label


def _measured(
    answer: answers.Answer, rows: list[ConfigSummary], capacity_mib: float | None
) -> AnswerView:
    row = next((row for row in rows if row.summary is answer.summary), None)
    words = describe_row(row, capacity_mib) if answer.preset and row else None
    words = words or describe_pair(rows, capacity_mib)
    return AnswerView(answer, words.headline, row=row, best=words.best, words=words)


def view(
    answer: answers.Answer,
    rows: list[ConfigSummary],
    estimate: estimated.PairEstimateView | None,
    capacity_mib: float | None,
) -> AnswerView:
    """The answer in words, from the rows and the estimate it was decided on."""
    if answer.measured:
        return _measured(answer, rows, capacity_mib)
    if answer.estimated and estimate is not None:
        row = estimate.row_for(answer.estimate)
        if answer.preset and row is not None:
            return AnswerView(answer, estimated.preset_headline(row), estimate_row=row)
        return AnswerView(answer, estimate.headline, estimate_row=row)
    if answer.preset:
        return AnswerView(
            answer,
            f"Nobody has measured {answer.preset} on this card yet, and there is no "
            "estimate for it here.",
        )
    return AnswerView(answer, describe_pair(rows, capacity_mib).headline)
