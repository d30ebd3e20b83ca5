"""What other sites embed: a pair's live badge (badge.svg) and its Atom feed of new
results (feed.atom). Both are kept like the pages, until the data changes."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.feedgenerator import Atom1Feed
from django.views.decorators.http import require_safe

from benchmarks.caching import cached_until_data_changes
from benchmarks.models import Gpu, ImageModel, Result, SubmissionStatus
from benchmarks.site import absolute
from checkpages import badges, formatting, trust
from checkpages.views import preset_parameter

FEED_ITEMS = 50
SVG = "image/svg+xml"


def _pair(model: str, gpu: str) -> tuple[ImageModel | None, Gpu | None]:
    return ImageModel.objects.filter(slug=model).first(), Gpu.objects.filter(slug=gpu).first()


@require_safe
@cached_until_data_changes
def badge(request: HttpRequest, model: str, gpu: str) -> HttpResponse:
    found_model, found_gpu = _pair(model, gpu)
    if found_model is None or found_gpu is None:
        missing = badges.Badge(
            "klein-bench", "not in the catalog", "unknown", f"No {model} on {gpu} in the catalog"
        )
        return HttpResponse(badges.svg(missing), content_type=SVG, status=404)
    preset, _ = preset_parameter(request)
    drawn = badges.badge_for(found_model, found_gpu, preset)
    return HttpResponse(badges.svg(drawn), content_type=SVG)


def _entry_title(result: Result) -> str:
    c = result.configuration
    name = c.preset or c.slug
    if result.outcome == "success" and result.seconds_median is not None:
        what = f"{formatting.seconds(result.seconds_median)} per image"
    else:
        what = result.get_outcome_display()
    return f"#{result.pk}: {what}, {name} ({c.get_runtime_display()})"


def _entry_body(result: Result) -> str:
    parts = [f"{result.model.name} on the {result.gpu.name}, {result.configuration.label}."]
    peak = result.peak_vram_mb if result.peak_vram_mb is not None else result.peak_process_mb
    if peak is not None:
        parts.append(f"Peak VRAM {formatting.gb(peak)}.")
    apart = trust.why_apart(result)
    parts.append(f"Kept apart from the medians: {apart}" if apart else "Counted in the medians.")
    return " ".join(parts)


@require_safe
@cached_until_data_changes
def feed(request: HttpRequest, model: str, gpu: str) -> HttpResponse:
    found_model, found_gpu = _pair(model, gpu)
    if found_model is None or found_gpu is None:
        return HttpResponse(
            "No such model or GPU in the catalog.\n", status=404, content_type="text/plain"
        )
    page = absolute(reverse("checkpages:pair", args=[model, gpu]), request)
    atom = Atom1Feed(
        title=f"klein-bench: {found_model.name} on the {found_gpu.name}",
        link=page,
        description=f"New signed results for {found_model.name} on the {found_gpu.name}",
        feed_url=trust.feed_url(found_model, found_gpu, request),
        language="en",
    )
    results = (
        Result.objects.for_pair(found_model, found_gpu)
        .filter(submission__status=SubmissionStatus.ACCEPTED)
        .select_related("model", "gpu", "configuration")
        .defer("thumbnail_png", "runs", "environment", "telemetry", "kernels")
        .order_by("-created_at", "-id")[:FEED_ITEMS]
    )
    for result in results:
        link = absolute(reverse("checkpages:result", args=[result.pk]), request)
        atom.add_item(
            title=_entry_title(result),
            link=link,
            description=_entry_body(result),
            unique_id=link,
            pubdate=result.created_at,
            updateddate=result.created_at,
        )
    response = HttpResponse(content_type="application/atom+xml; charset=utf-8")
    atom.write(response, "utf-8")
    return response
