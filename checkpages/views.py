"""The check pages: read summaries, build a context, render. Nothing here writes.

Pages are kept by cache_page until the data changes (benchmarks.caching); a plot is kept
under a digest of what it draws, so it is drawn again only when that changes.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

from django.core.cache import cache
from django.db.models import Count, Sum
from django.http import HttpRequest, HttpResponse, HttpResponsePermanentRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import escape
from django.views.decorators.http import require_safe
from klein_bench.contract.figures import PHASES

from benchmarks.caching import cached_until_data_changes
from benchmarks.models import (
    Contributor,
    Gpu,
    ImageModel,
    Preset,
    Result,
    SubmissionStatus,
    Summary,
)
from benchmarks.site import site_url
from checkpages import formatting, install, plots, presentation, queries, trust
from checkpages.contribute import collected_fields
from checkpages.formatting import count


def _page(request: HttpRequest, template: str, context: dict, status: int = 200) -> HttpResponse:
    return HttpResponse(render_to_string(template, context, request), status=status)


PLOT_SECONDS = 24 * 3600


def _plot(draw: Callable[..., str], name: str, *drawn: object, alt: str) -> str:
    """draw(name, *drawn, alt), kept under a digest of what it draws: the same data, the
    same SVG. The text alternative (which counts results) is not drawn, so it is set in the
    kept SVG's <title> rather than drawing the plot again when only the text changed."""
    digest = hashlib.sha256(repr((draw.__name__, name, drawn)).encode()).hexdigest()
    svg = cache.get_or_set(f"plot:{digest}", lambda: draw(name, *drawn, ""), PLOT_SECONDS)
    # Wide and narrow drawings each have one: '<title id="speed-title">',
    # '<title id="speed-narrow-title">'.
    return svg.replace('-title"></title>', f'-title">{escape(alt)}</title>')


# -- finding what the URL names ----------------------------------------------------------------


# The largest primary key PostgreSQL's bigint holds; a longer number in /r/<id> is no result.
MAX_ID = 2**63 - 1


@dataclass
class Suggestion:
    label: str
    url: str


def _not_found(
    request: HttpRequest, title: str, message: str, suggestions: list[Suggestion]
) -> HttpResponse:
    return _page(
        request,
        "checkpages/not_found.html",
        {
            "title": title,
            "message": message,
            "suggestions": suggestions,
            "models": ImageModel.objects.public(),
        },
        status=404,
    )


def _canonical(queryset, slug: str):
    """The entry with this slug, also when typed in another case ('RTX-4090')."""
    return queryset.filter(slug=slug).first() or queryset.filter(slug__iexact=slug).first()


def _pair_suggestions(model_slug: str, gpu_slug: str | None) -> list[Suggestion]:
    all_models = {m.slug: m.name for m in ImageModel.objects.all()}
    model_slugs = (
        [model_slug] if model_slug in all_models else queries.close_slugs(model_slug, all_models)
    )
    if gpu_slug is None:
        return [
            Suggestion(all_models[slug], reverse("checkpages:model", args=[slug]))
            for slug in model_slugs
        ]
    all_gpus = {g.slug: g.name for g in Gpu.objects.all()}
    gpu_slugs = [gpu_slug] if gpu_slug in all_gpus else queries.close_slugs(gpu_slug, all_gpus)
    return [
        Suggestion(f"{all_models[m]} on the {all_gpus[g]}", reverse("checkpages:pair", args=[m, g]))
        for m, g in product(model_slugs[:2], gpu_slugs[:3])
    ]


def _unknown_model(request: HttpRequest, slug: str, gpu_slug: str | None = None):
    return _not_found(
        request,
        "No such model",
        f"We have no model called “{slug}” in the catalog.",
        _pair_suggestions(slug, gpu_slug),
    )


# -- pages ---------------------------------------------------------------------------------------


def home_page(request: HttpRequest, problem: str = "", status: int = 200) -> HttpResponse:
    """The home page; with `problem`, the card picker's answer to a choice left out."""
    totals = (
        Summary.objects.real()
        .filter(model__is_test_model=False)
        .aggregate(results=Sum("n_results"), cards=Count("gpu", distinct=True))
    )
    return _page(
        request,
        "checkpages/home.html",
        {
            "models": ImageModel.objects.public(),
            "n_results": totals["results"] or 0,
            "n_cards": totals["cards"],
            "examples": Gpu.objects.filter(slug__in=["rtx-4090", "rtx-5070", "rtx-4070"]),
            "groups": queries.ordered_gpus(Gpu.objects.listed()),
            "problem": problem,
        },
        status=status,
    )


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    return home_page(request)


def preset_parameter(request: HttpRequest) -> tuple[str, str]:
    """The ?preset= asked for, and a sentence when it names no configuration."""
    preset = request.GET.get("preset", "")
    if preset and preset not in Preset.values:
        return "", f"There is no configuration called “{preset}”; showing all configurations."
    return preset, ""


@require_safe
@cached_until_data_changes
def index(request: HttpRequest) -> HttpResponse:
    preset, problem = preset_parameter(request)
    models, groups = queries.matrix(preset)
    return _page(
        request,
        "checkpages/index.html",
        {
            "models": models,
            "groups": groups,
            "preset": preset,
            "preset_label": Preset(preset).label if preset else "",
            "presets": Preset.choices,
            "problem": problem,
        },
    )


def _ranking_plot(page: queries.ModelPage) -> str:
    if not page.ranked:
        return ""
    bars = [
        plots.RankedBar(
            formatting.short_gpu_name(entry.gpu.name),
            entry.row.summary.seconds_median,
            entry.row.summary.seconds_p10,
            entry.row.summary.seconds_p90,
            entry.row.colour,
        )
        for entry in page.ranked
    ]
    fastest = page.ranked[0]
    alt = (
        f"Bar chart of median seconds per image for {page.model.name} on "
        f"{count(len(bars), 'card')}, each in "
        + (f"{page.preset}" if page.preset else "the configuration its users should run")
        + f"; fastest: {formatting.short_gpu_name(fastest.gpu.name)} in {fastest.row.label} at "
        f"{formatting.seconds(fastest.row.summary.seconds_median)} per image. The table "
        "below lists every value."
    )
    return _plot(plots.ranking, "ranking", bars, alt=alt)


@require_safe
@cached_until_data_changes
def model_page(request: HttpRequest, model: str) -> HttpResponse:
    found = _canonical(ImageModel.objects, model)
    if found is None:
        return _unknown_model(request, model)
    if found.slug != model:
        return HttpResponsePermanentRedirect(reverse("checkpages:model", args=[found.slug]))
    preset, problem = preset_parameter(request)
    page = queries.model_page(found, preset)
    return _page(
        request,
        "checkpages/model.html",
        {
            "page": page,
            "model": found,
            "plot": _ranking_plot(page),
            "agent_measures": install.agent_measures(found),
            "presets": Preset.choices,
            "preset": preset,
            "problem": problem,
        },
    )


# Dots per configuration in the speed plot: at the plot's width more of them only overlap,
# and each one costs the page about 120 bytes of SVG.
MAX_DOTS = 200


def _dots(values: list[float]) -> list[float]:
    """At most MAX_DOTS of the values, evenly spaced through them in sorted order."""
    ordered = sorted(values)
    if len(ordered) <= MAX_DOTS:
        return ordered
    step = (len(ordered) - 1) / (MAX_DOTS - 1)
    return [ordered[round(i * step)] for i in range(MAX_DOTS)]


def _pair_plots(page: queries.PairPage) -> dict:
    """The pair's plots as SVG, each kept under a digest of what it draws."""
    where = f"{page.model.name} on the {page.gpu.name}"
    drawn: dict = {"trends": []}

    speed_rows = page.speed_rows
    if speed_rows:
        groups = [
            plots.Distribution(
                row.label,
                _dots(row.summary.seconds_values or [row.summary.seconds_median]),
                row.summary.seconds_median,
                row.summary.seconds_p10,
                row.summary.seconds_p90,
                row.colour,
            )
            for row in speed_rows
        ]
        alt = f"Seconds per image for {where}, one dot per result: " + "; ".join(
            f"{row.label}: median {formatting.seconds(row.summary.seconds_median)} over "
            f"{count(row.n_timed, 'result')}"
            + (
                f", 80% between {formatting.seconds(row.summary.seconds_p10)} and "
                f"{formatting.seconds(row.summary.seconds_p90)}"
                if row.n_timed > 1
                else ""
            )
            for row in speed_rows
        )
        drawn["speed"] = _plot(plots.seconds_distribution, "speed", groups, alt=alt + ".")

    memory_rows = page.memory_rows
    if memory_rows:
        bars = [
            plots.MemoryBar(
                row.label,
                row.peak_mb,
                row.peak_max_mb,
                row.colour,
            )
            for row in memory_rows
        ]
        usable = page.usable.mib if page.usable else None
        capacity = (
            f" against the card's {formatting.card_gb(page.capacity_mib)}"
            if page.capacity_mib
            else ""
        )
        alt = (
            f"Peak GPU memory for {where}{capacity}: "
            + "; ".join(
                f"{row.label}: median {formatting.gb(row.peak_mb)}, largest "
                f"{formatting.gb(row.peak_max_mb)}"
                for row in memory_rows
            )
            + (
                f". Usable with a display attached: about {formatting.gb(usable)}."
                if usable
                else "."
            )
        )
        drawn["memory"] = _plot(
            plots.memory_against_capacity, "memory", bars, page.capacity_mib, usable, alt=alt
        )

    drawn_trends = []
    for trend in page.trends:
        name = f"trend-{trend.dimension}"
        lines = [plots.Line(series.label, series.points, series.colour) for series in trend.series]
        alt = f"Median seconds per image by {trend.dimension} version for {where}: " + "; ".join(
            f"{series.label}: "
            + ", ".join(f"{v} {formatting.seconds(s)}" for v, s in series.points)
            for series in trend.series
        )
        svg = _plot(
            plots.version_trend, name, trend.dimension, trend.versions, lines, alt=alt + "."
        )
        drawn_trends.append((trend, svg))
    drawn["trends"] = drawn_trends
    return drawn


@require_safe
@cached_until_data_changes
def pair(request: HttpRequest, model: str, gpu: str) -> HttpResponse:
    preset, problem = preset_parameter(request)
    found_model = _canonical(ImageModel.objects, model)
    found_gpu = _canonical(Gpu.objects, gpu)
    if found_model is None:
        return _unknown_model(request, model, gpu)
    if found_gpu is None:
        return _not_found(
            request,
            "No such GPU",
            f"We have no GPU called “{gpu}” in the catalog.",
            _pair_suggestions(found_model.slug, gpu),
        )
    if (found_model.slug, found_gpu.slug) != (model, gpu):
        query = f"?{request.GET.urlencode()}" if request.GET else ""
        return HttpResponsePermanentRedirect(
            reverse("checkpages:pair", args=[found_model.slug, found_gpu.slug]) + query
        )
    page = queries.pair_page(found_model, found_gpu, preset, site_url(request))
    return _page(
        request,
        "checkpages/pair.html",
        {
            "page": page,
            "model": found_model,
            "gpu": found_gpu,
            "plots": _pair_plots(page),
            "api_url": reverse("benchmarks:api-check", args=[found_model.slug, found_gpu.slug]),
            "problem": problem,
            "trust": trust.pair_trust(found_model, found_gpu, request),
        },
    )


@dataclass
class Signature:
    key_id: str
    public_key: str
    signature: str
    created_at: str
    nonce: str
    submission_id: str
    valid: bool | None
    problem: str = ""


def _signature(body: str, contributor: Contributor) -> Signature:
    """The envelope's identity fields, and whether the signature still checks out."""
    from klein_bench.contract import wire

    try:
        document = wire.parse_document(body)
    except wire.WireError as exc:
        return Signature("", "", "", "", "", "", False, f"the stored body does not parse: {exc}")
    public_key = document.public_key or bytes.fromhex(contributor.public_key)
    try:
        document.verify(public_key)
        valid, problem = True, ""
    except wire.BadSignature as exc:
        valid, problem = False, str(exc)
    return Signature(
        key_id=document.key_id,
        public_key=public_key.hex(),
        signature=document.signature.hex(),
        created_at=document.envelope["created_at"],
        nonce=document.nonce,
        submission_id=document.submission_id,
        valid=valid,
        problem=problem,
    )


@require_safe
def result(request: HttpRequest, pk: int) -> HttpResponse:
    found = (
        Result.objects.select_related("model", "gpu", "configuration", "contributor", "submission")
        .filter(pk=pk)
        .first()
        if pk <= MAX_ID
        else None
    )
    if found is None:
        return _not_found(
            request,
            "No such result",
            f"There is no result with id {pk}. Result ids are the numbers in the links the "
            "agent prints after a submission (…/r/ID).",
            [],
        )
    submission = found.submission
    environment = found.environment if isinstance(found.environment, dict) else {}
    row_context = {
        "result": found,
        "model": found.model,
        "gpu": found.gpu,
        "configuration": found.configuration,
        "configuration_words": presentation.configuration_words(
            found.configuration, queries.is_cpu(found.gpu)
        ),
        "submission": submission,
        "status": SubmissionStatus(submission.status),
        "signature": _signature(submission.body, found.contributor),
        "withdrawal": (
            _signature(submission.withdrawal_body, found.contributor)
            if submission.withdrawal_body
            else None
        ),
        "body": submission.body,
        "thumbnail": (
            base64.b64encode(bytes(found.thumbnail_png)).decode() if found.thumbnail_png else ""
        ),
        "runs": found.runs if isinstance(found.runs, list) else [],
        "environment": sorted(
            (name, value) for name, value in environment.items() if name != "gpu"
        ),
        "reported_gpu": sorted((environment.get("gpu") or {}).items()),
        "telemetry": formatting.telemetry(
            found.telemetry if isinstance(found.telemetry, dict) else {}
        ),
        "phases": _phase_rows(found),
        "kernels": formatting.kernels(found.kernels if isinstance(found.kernels, dict) else {}),
        "capacity_flag": presentation.peak_flag(found),
        "apart": trust.why_apart(found) if submission.status == SubmissionStatus.ACCEPTED else "",
        "reproductions": trust.reproductions_of(found),
        "server": install.server_option(site_url(request)),
    }
    return _page(request, "checkpages/result.html", row_context)


@require_safe
def result_with_slash(request: HttpRequest, pk: int) -> HttpResponse:
    return HttpResponsePermanentRedirect(reverse("checkpages:result", args=[pk]))


def _phase_rows(found: Result) -> list[tuple[str, dict]]:
    """(phase words, its peaks) in run order, for the result page's memory table."""
    phases = found.memory_phases if isinstance(found.memory_phases, dict) else {}
    return [
        (words, phases[name])
        for name, words in PHASES.items()
        if isinstance(phases.get(name), dict)
    ]


@require_safe
def contribute_page(request: HttpRequest) -> HttpResponse:
    model = ImageModel.objects.public().first()
    site = site_url(request)
    return _page(
        request,
        "checkpages/contribute.html",
        {
            "model": model,
            "presets": list(install.PRESETS.values()),
            "collected": collected_fields(),
            "install": install.install(site),
            "cpu_install": install.install(site, on_cpu=True),
            "server": install.server_option(site),
        },
    )
