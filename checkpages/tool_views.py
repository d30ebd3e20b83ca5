"""Pages beside the checks: cards side by side, every result in a table, the home page's
card picker, and the agent's wheel. Read only, like every page."""

from __future__ import annotations

from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_safe

from benchmarks.models import Gpu, ImageModel, Result
from checkpages import browse, install, queries
from checkpages.compare import MAX_CARDS, comparison
from checkpages.views import _canonical, _not_found, _page, _unknown_model, home_page


@require_safe
def compare(request: HttpRequest, model: str) -> HttpResponse:
    found = _canonical(ImageModel.objects, model)
    if found is None:
        return _unknown_model(request, model)
    wanted = list(dict.fromkeys(slug for slug in request.GET.getlist("gpu") if slug))
    gpus = {g.slug: g for g in Gpu.objects.filter(slug__in=wanted[:MAX_CARDS])}
    unknown = [slug for slug in wanted[:MAX_CARDS] if slug not in gpus]
    chosen = [gpus[slug] for slug in wanted[:MAX_CARDS] if slug in gpus]
    problems = []
    if unknown:
        problems.append(
            "Not in the catalog, so left out: " + ", ".join(f"“{slug}”" for slug in unknown) + "."
        )
    if len(wanted) > MAX_CARDS:
        problems.append(f"At most {MAX_CARDS} cards side by side; the first {MAX_CARDS} are shown.")
    listed = [gpu for _, cards in queries.ordered_gpus(Gpu.objects.listed()) for gpu in cards]
    selects = [chosen[i].slug if i < len(chosen) else "" for i in range(MAX_CARDS)]
    return HttpResponse(
        render_to_string(
            "checkpages/compare.html",
            {
                "model": found,
                "comparison": comparison(found, chosen) if chosen else None,
                "problems": problems,
                "listed": listed,
                "selects": selects,
                "models": ImageModel.objects.public(),
            },
            request,
        ),
        status=200,
    )


@require_safe
def results(request: HttpRequest) -> HttpResponse:
    form = browse.ResultsFilter(request.GET)
    if not form.is_valid():
        return _page(
            request,
            "checkpages/results.html",
            {"form": form, "page": None, "problem": True},
            status=400,
        )
    page = browse.page_of(form, request.GET.get("page"))
    return _page(
        request,
        "checkpages/results.html",
        {
            "form": form,
            "page": page,
            "pages": {
                "previous": browse.query(form, page=page.previous_page_number())
                if page.has_previous()
                else "",
                "next": browse.query(form, page=page.next_page_number()) if page.has_next() else "",
            },
            "api_query": browse.api_query(form),
            "sorts": {name: browse.query(form, sort=name) for name in browse.SORTS},
            "filtered": browse.filtered(form),
            "stored": Result.objects.exists(),
        },
    )


@require_safe
def pick(request: HttpRequest) -> HttpResponse:
    """The home page's card picker, a plain GET form: to the pair's page."""
    problems = []
    chosen = {}
    for name, queryset, noun in (
        ("model", ImageModel.objects, "a model"),
        ("gpu", Gpu.objects, "your card"),
    ):
        slug = request.GET.get(name, "")
        chosen[name] = _canonical(queryset, slug) if slug else None
        if not slug:
            problems.append(f"Choose {noun} to see whether it runs.")
        elif chosen[name] is None:
            problems.append(
                f"There is no {name} “{slug}” in the catalog: choose {noun} from the list."
            )
    model, gpu = chosen["model"], chosen["gpu"]
    if model is None or gpu is None:
        return home_page(request, " ".join(problems), status=400)
    return HttpResponseRedirect(reverse("checkpages:pair", args=[model.slug, gpu.slug]))


@require_safe
def agent_wheel(request: HttpRequest, filename: str) -> HttpResponse:
    """The agent's wheel, built from this site's own checkout (manage.py buildagent)."""
    built = install.wheel()
    if built is None or filename != built.name:
        return _not_found(
            request,
            "No such file",
            "This site serves one agent wheel; the install command on the contribute page "
            "names it.",
            [],
        )
    response = FileResponse(built.open("rb"), as_attachment=True, filename=built.name)
    response["Content-Type"] = "application/octet-stream"
    response["Cache-Control"] = "public, max-age=3600"
    return response
