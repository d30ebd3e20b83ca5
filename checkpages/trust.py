"""What the pages show about how far to trust a figure: results kept apart from the
medians (other settings, or an image that strays from the consensus), reports typed into
the form, a result's reproductions, and the badge and feed a recipe page can link to.
Reads only; the rules are benchmarks'.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import escape
from klein_bench.contract import comparability, consensus

from benchmarks.models import Gpu, ImageModel, Result, SelfReport
from benchmarks.services import reproductions
from benchmarks.site import absolute
from checkpages import formatting

APART_RESULTS = 10
REPORTS = 20


def why_apart(result: Result) -> str:
    """Why the summaries leave this accepted result out, in one sentence; empty if they
    count it."""
    reasons = []
    if result.comparability != comparability.PROTOCOL_EXACT:
        listed = result.deviations if isinstance(result.deviations, list) else []
        reasons.append("other settings: " + ("; ".join(listed) or "not the standard protocol"))
    if result.image_differs:
        reasons.append(consensus.STRAYS)
    return (". ".join(reasons) + ".") if reasons else ""


def apart_results(model: ImageModel, gpu: Gpu) -> list[Result]:
    return list(
        Result.objects.for_pair(model, gpu)
        .apart()
        .select_related("configuration", "submission", "gpu")
        .defer("thumbnail_png", "submission__body", "submission__response", "telemetry")
        .order_by("-created_at", "-id")[:APART_RESULTS]
    )


@dataclass
class Reproduction:
    result: Result
    same_card: bool
    same_contributor: bool
    agrees: bool | None
    words: str


def _words(original: Result, copy: Result, found: reproductions.Agreement) -> str:
    if found.agrees is None:
        return f"on another card ({formatting.short_gpu_name(copy.gpu.name)}): not compared"
    if copy.outcome != original.outcome:
        return f"{copy.get_outcome_display()}; the original: {original.get_outcome_display()}"
    if found.apart is None:
        return f"the same outcome ({copy.get_outcome_display()})"
    verdict = (
        "agrees" if found.agrees else f"more than {reproductions.REPRODUCED_TOLERANCE:.0%} apart"
    )
    return (
        f"{formatting.seconds(copy.seconds_median)} per image, {found.apart:.0%} from the "
        f"original's {formatting.seconds(original.seconds_median)} ({verdict})"
    )


def reproductions_of(original: Result) -> list[Reproduction]:
    """The results that reproduce this one, oldest first, and whether each agrees."""
    return [
        Reproduction(
            copy,
            copy.gpu_id == original.gpu_id,
            copy.contributor_id == original.contributor_id,
            found.agrees,
            _words(original, copy, found),
        )
        for copy, found in reproductions.of(original)
    ]


def reports(model: ImageModel, gpu: Gpu) -> list[SelfReport]:
    return list(SelfReport.objects.shown().for_pair(model, gpu)[:REPORTS])


@dataclass
class Embed:
    """The badge and the feed of a pair, as a recipe page would link them. The snippet
    gives the height only: the badge's width follows its figures."""

    badge_url: str
    page_url: str
    feed_url: str
    alt: str
    height: int = 20

    @property
    def markdown(self) -> str:
        return f"[![{self.alt}]({self.badge_url})]({self.page_url})"

    @property
    def html(self) -> str:
        return (
            f'<a href="{escape(self.page_url)}"><img src="{escape(self.badge_url)}" '
            f'alt="{escape(self.alt)}" height="{self.height}"></a>'
        )


def embed_for(model: ImageModel, gpu: Gpu, request: HttpRequest | None) -> Embed:
    return Embed(
        badge_url=absolute(reverse("checkpages:badge", args=[model.slug, gpu.slug]), request),
        page_url=absolute(reverse("checkpages:pair", args=[model.slug, gpu.slug]), request),
        feed_url=feed_url(model, gpu, request),
        alt=f"{model.name} on the {formatting.short_gpu_name(gpu.name)}: klein-bench",
    )


@dataclass
class PairTrust:
    apart: list[Result]
    reports: list[SelfReport]
    embed: Embed


def pair_trust(model: ImageModel, gpu: Gpu, request: HttpRequest | None) -> PairTrust:
    return PairTrust(apart_results(model, gpu), reports(model, gpu), embed_for(model, gpu, request))


def feed_url(model: ImageModel, gpu: Gpu, request: HttpRequest | None) -> str:
    return absolute(reverse("checkpages:feed", args=[model.slug, gpu.slug]), request)
