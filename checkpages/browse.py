"""Every result in a table (/results/), for people who would rather not use the API:
filtered by model, card, configuration, driver and outcome, sorted, a page at a time."""

from __future__ import annotations

from urllib.parse import urlencode

from django import forms
from django.core.paginator import Page, Paginator
from django.db.models import F, QuerySet

from benchmarks.models import Gpu, ImageModel, Outcome, Preset, Result, Runtime
from checkpages.formatting import card_name

PAGE_SIZE = 50
SORTS = {
    "newest": ("Newest first", [F("created_at").desc(), F("id").desc()]),
    "oldest": ("Oldest first", [F("created_at").asc(), F("id").asc()]),
    "fastest": ("Fastest first", [F("seconds_median").asc(nulls_last=True), F("id").desc()]),
    "slowest": ("Slowest first", [F("seconds_median").desc(nulls_last=True), F("id").desc()]),
    "memory": ("Least memory first", [F("peak_process_mb").asc(nulls_last=True), F("id").desc()]),
}
STATUSES = {"counted": "Counted in summaries", "all": "Every status"}


def _choices(blank: str, pairs) -> list[tuple[str, str]]:
    return [("", blank), *pairs]


class ResultsFilter(forms.Form):
    model = forms.ChoiceField(required=False)
    gpu = forms.ChoiceField(required=False, label="Card")
    preset = forms.ChoiceField(required=False, label="Configuration")
    runtime = forms.ChoiceField(required=False)
    driver = forms.CharField(required=False, max_length=32)
    outcome = forms.ChoiceField(required=False)
    status = forms.ChoiceField(required=False, choices=list(STATUSES.items()))
    sort = forms.ChoiceField(
        required=False, choices=[(name, label) for name, (label, _) in SORTS.items()]
    )

    def __init__(self, data, *args, **kwargs):
        super().__init__(data, *args, **kwargs)
        self.fields["model"].choices = _choices(
            "Every model", ImageModel.objects.values_list("slug", "name")
        )
        self.fields["gpu"].choices = _choices(
            "Every card",
            [(gpu.slug, card_name(gpu)) for gpu in Gpu.objects.order_by("sort_order", "slug")],
        )
        self.fields["preset"].choices = _choices("Every configuration", Preset.choices)
        self.fields["runtime"].choices = _choices("Every runtime", Runtime.choices)
        self.fields["outcome"].choices = _choices("Every outcome", Outcome.choices)

    def results(self) -> QuerySet[Result]:
        """The filtered, sorted results; test models only when asked for by name."""
        data = self.cleaned_data
        found = Result.objects.select_related("model", "gpu", "configuration", "submission").defer(
            "runs", "environment", "telemetry", "thumbnail_png", "error_message"
        )
        if data.get("status") != "all":
            found = found.counted()
        if data.get("model"):
            found = found.filter(model__slug=data["model"])
        else:
            found = found.filter(model__is_test_model=False)
        for name, field in (
            ("gpu", "gpu__slug"),
            ("preset", "configuration__preset"),
            ("runtime", "configuration__runtime"),
            ("driver", "driver_version"),
            ("outcome", "outcome"),
        ):
            if data.get(name):
                found = found.filter(**{field: data[name]})
        return found.order_by(*SORTS[data.get("sort") or "newest"][1])


def filtered(form: ResultsFilter) -> bool:
    """Whether any filter is chosen (the sort order is no filter)."""
    return any(value for name, value in form.cleaned_data.items() if name != "sort")


def page_of(form: ResultsFilter, number: str | None) -> Page:
    return Paginator(form.results(), PAGE_SIZE).get_page(number)


def query(form: ResultsFilter, **changes) -> str:
    """The form's query string with some values changed (for page and sort links)."""
    values = {k: v for k, v in form.cleaned_data.items() if v}
    values.update({k: v for k, v in changes.items() if v})
    return "?" + urlencode(values) if values else "?"


def api_query(form: ResultsFilter) -> str:
    """The same filters for /api/v1/results (CSV or JSON)."""
    data = form.cleaned_data
    values = {
        name: data[name]
        for name in ("model", "gpu", "preset", "runtime", "driver", "outcome")
        if data.get(name)
    }
    if data.get("status") != "all":
        values["status"] = "accepted"
    return urlencode(values)
