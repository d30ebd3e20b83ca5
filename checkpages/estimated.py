"""Estimates (benchmarks.services.estimates) in words: always called estimates, with what
they rest on and their range, and never mixed with measured figures."""

from __future__ import annotations

from dataclasses import dataclass

from klein_bench.contract.catalog import preset_for

from benchmarks.models import Offload, Precision, Runtime
from benchmarks.services import answers
from benchmarks.services import estimates as est
from checkpages import formatting
from checkpages.presentation import colour

# The verdict pills' colours: an estimate borrows the look of the measured verdict it
# anticipates (dashed, with the word "estimate" beside it).
PILL = {
    est.EXPECTED_TO_FIT: "runs",
    est.NEEDS_OFFLOAD: "needs_offload",
    est.MAY_NOT_FIT: "tight",
    est.EXPECTED_NOT_TO_FIT: "does_not_fit",
}


def _list(names: list[str]) -> str:
    if len(names) <= 2:
        return " and ".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


@dataclass
class EstimateRow:
    estimate: est.Estimate
    card_names: dict[str, str]  # slug: short name
    architectures: dict[str, str]  # slug: architecture
    capacity_mib: float | None
    usable_mib: float | None

    @property
    def setup(self) -> est.Setup:
        return self.estimate.setup

    @property
    def name(self) -> str:
        s = self.setup
        preset = preset_for(s.precision, s.offload)
        return preset.name if preset else f"{s.runtime}-{s.precision}-{s.offload}"

    @property
    def preset(self) -> str:
        preset = preset_for(self.setup.precision, self.setup.offload)
        return preset.name if preset else ""

    @property
    def label(self) -> str:
        return f"{self.name} ({Runtime(self.setup.runtime).label})"

    @property
    def words(self) -> str:
        s = self.setup
        precision = Precision(s.precision).label
        if s.resident:
            return f"{precision}, fully on the GPU ({Runtime(s.runtime).label})"
        return f"{precision} with {Offload(s.offload).label} ({Runtime(s.runtime).label})"

    @property
    def colour(self) -> str:
        s = self.setup
        return colour(s.runtime, s.precision, s.offload)

    @property
    def fit(self) -> str:
        return self.estimate.memory.fit

    @property
    def verdict(self) -> str:
        return est.configuration_verdict(self.estimate)

    @property
    def verdict_label(self) -> str:
        return answers.CONFIGURATION_LABELS.get(self.verdict, "")

    @property
    def pill(self) -> str:
        return PILL.get(self.verdict, "unknown")

    @property
    def memory(self) -> str:
        m = self.estimate.memory.mib
        return f"about {formatting.gb(m.value)} ({formatting.gb_range(m.low, m.high)})"

    @property
    def fit_reason(self) -> str:
        """Why the fit is what it is: 'more than the card's 12 GiB', 'within the card's
        12 GiB, but close to or above the about 10.5 GiB left when it drives a display'."""
        card = formatting.card_gb(self.capacity_mib)
        if self.fit == est.DOES_NOT_FIT:
            return f"more than the card's {card}"
        if self.fit == est.TIGHT:
            if self.usable_mib:
                return (
                    f"within the card's {card}, but close to or above the about "
                    f"{formatting.gb(self.usable_mib)} left when it drives a display"
                )
            return f"close to the card's {card}"
        if self.fit == est.FITS:
            return f"within the card's {card}"
        return ""

    @property
    def memory_sentence(self) -> str:
        """'about 9.9 GiB (9.4-10.4 GiB) at the peak: more than the card's 8 GiB'."""
        text = f"{self.memory} at the peak"
        reason = self.fit_reason
        if not reason:
            return text
        return f"{text}, {reason}" if self.fit == est.FITS else f"{text}: {reason}"

    @property
    def architecture_only(self) -> bool:
        """Nobody has measured this configuration on any card."""
        return self.estimate.memory.basis == est.ARCHITECTURE_ONLY

    @property
    def memory_basis(self) -> str:
        memory = self.estimate.memory
        if memory.basis == est.MEASURED:
            cards = _list([self.card_names.get(slug, slug) for slug in memory.cards])
            return f"memory from {self.label} measured on the {cards}"
        return "memory from the architecture alone: nobody has measured this configuration yet"

    @property
    def short_basis(self) -> str:
        """What the row rests on, in a few words (the method is said once, above)."""
        memory = self.estimate.memory
        if memory.basis == est.MEASURED:
            cards = _list([self.card_names.get(slug, slug) for slug in memory.cards])
            parts = [f"memory measured on the {cards}"]
        else:
            parts = ["memory from the architecture alone"]
        speed = self.estimate.speed
        if speed is not None and speed.basis == est.ARCHITECTURE_ONLY:
            parts.append(
                f"speed from the architecture alone ({speed.efficiency.low * 100:.0f}"
                f"\u2013{speed.efficiency.high * 100:.0f}% of the tensor peak)"
            )
        elif speed is not None:
            cards = _list([self.card_names.get(slug, slug) for slug in speed.cards])
            kind = (
                "the same architecture"
                if speed.basis == est.SAME_ARCHITECTURE
                else "other architectures, so a wide range"
            )
            parts.append(f"speed scaled from the {cards} ({kind})")
        return "; ".join(parts)

    @property
    def seconds(self) -> str:
        speed = self.estimate.speed
        if speed is None:
            return formatting.MISSING
        s = speed.seconds
        return (
            f"about {formatting.seconds(s.value)} per image "
            f"({formatting.seconds_range(s.low, s.high)})"
        )

    @property
    def speed_basis(self) -> str:
        speed = self.estimate.speed
        if speed is None:
            return ""
        cards = [
            f"{self.card_names.get(slug, slug)} ({self.architectures.get(slug) or 'unknown'})"
            for slug in speed.cards
        ]
        if speed.basis == est.SAME_ARCHITECTURE:
            return (
                f"speed scaled from the {_list(cards)} by tensor throughput and memory "
                "bandwidth: the same architecture"
            )
        if speed.basis == est.OTHER_ARCHITECTURES:
            return (
                f"speed scaled from the {_list(cards)} by tensor throughput and memory "
                "bandwidth: other architectures, so the range is wide"
            )
        return (
            "speed from the architecture alone, assuming "
            f"{speed.efficiency.low * 100:.0f}\u2013{speed.efficiency.high * 100:.0f}% of the "
            "card's tensor peak: nobody has measured this configuration yet"
        )

    @property
    def basis(self) -> str:
        parts = [self.memory_basis, self.speed_basis]
        text = "; ".join(part for part in parts if part)
        return text[0].upper() + text[1:] + "."


@dataclass
class PairEstimateView:
    pair: est.PairEstimate
    rows: list[EstimateRow]

    @property
    def verdict(self) -> str:
        return self.pair.verdict

    @property
    def label(self) -> str:
        return self.pair.label

    @property
    def pill(self) -> str:
        return PILL.get(self.pair.verdict, "unknown")

    @property
    def lead(self) -> EstimateRow | None:
        return self.row_for(self.pair.lead)

    def row_for(self, estimate: est.Estimate | None) -> EstimateRow | None:
        return next((row for row in self.rows if row.estimate is estimate), None)

    @property
    def unmeasured_anywhere(self) -> bool:
        """Whether some configuration here was measured on no card at all."""
        return any(row.architecture_only for row in self.rows)

    @property
    def headline(self) -> str:
        lead = self.lead
        if self.pair.verdict == est.EXPECTED_NOT_TO_FIT:
            smallest = min(self.rows, key=lambda row: row.estimate.memory.mib.value)
            return (
                "Estimate: expected not to fit in any configuration; the smallest, "
                f"{smallest.label}, needs {smallest.memory_sentence}."
            )
        if lead is None:
            return ""
        speed = f", {lead.seconds}" if lead.estimate.speed else ""
        if self.pair.verdict == est.MAY_NOT_FIT:
            return (
                "Estimate: may not fit; the best chance is "
                f"{lead.label}, {lead.memory_sentence}{speed}."
            )
        how = "fully on the GPU" if lead.setup.resident else "only with offload"
        return f"Estimate: {self.label}, {how}, in {lead.label}: {lead.memory_sentence}{speed}."


def preset_headline(row: EstimateRow) -> str:
    """The answer for a configuration nobody measured on the card (a ?preset= link)."""
    speed = f", {row.seconds}" if row.estimate.speed else ""
    return (
        f"Nobody has measured {row.label} on this card yet. Estimate: {row.verdict_label}, "
        f"{row.memory_sentence}{speed}."
    )


def view(
    pair: est.PairEstimate | None,
    card_names: dict[str, str],
    architectures: dict[str, str],
    capacity_mib: float | None,
    usable_mib: float | None,
) -> PairEstimateView | None:
    if pair is None or not pair.estimates:
        return None
    rows = [
        EstimateRow(e, card_names, architectures, capacity_mib, usable_mib) for e in pair.estimates
    ]
    return PairEstimateView(pair, rows)
