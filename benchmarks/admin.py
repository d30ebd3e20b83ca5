"""The moderators' admin: the catalog, keys, signed submissions and their results.

Submissions and results are read-only records of what was signed; moderators change
only their status, through actions that ask for a reason first.
"""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.html import format_html
from klein_bench.contract.figures import PEAK_VRAM_FIGURES

from benchmarks.models import (
    Configuration,
    Contributor,
    Gpu,
    ImageModel,
    PublishedClaim,
    Result,
    SelfReport,
    Submission,
    SubmissionStatus,
    Summary,
)
from benchmarks.services import moderation
from benchmarks.trust_models import ReportStatus

# The moderators' site says whose it is (Django's default reads "Django administration").
admin.site.site_header = "klein-bench moderation"
admin.site.site_title = "klein-bench admin"
admin.site.index_title = "Results, keys and the catalog"


class ReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=2000,
        help_text="Shown on the result's page and to its contributor.",
    )


class RevokeForm(ReasonForm):
    reject_results = forms.BooleanField(
        required=False,
        label="Also reject every accepted result these keys sent",
    )


def _ask_reason(modeladmin, request, queryset, *, title, form_class, apply):
    """Show a form for the reason, then apply the action to the selected objects."""
    if "apply" in request.POST:
        form = form_class(request.POST)
        if form.is_valid():
            changed = apply(queryset, form.cleaned_data)
            for obj in queryset:
                modeladmin.log_change(request, obj, f"{title}: {form.cleaned_data['reason']}")
            modeladmin.message_user(request, f"{title}: {changed} changed.", messages.SUCCESS)
            return None
    else:
        form = form_class()
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "form": form,
        "queryset": queryset,
        "opts": modeladmin.model._meta,
        "action": request.POST.get("action", ""),
        "selected": request.POST.getlist(ACTION_CHECKBOX_NAME),
        "action_checkbox_name": ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/benchmarks/reason_form.html", context)


def _status_action(status: str, title: str, description: str, submissions_of):
    def action(modeladmin, request: HttpRequest, queryset: QuerySet):
        return _ask_reason(
            modeladmin,
            request,
            queryset,
            title=title,
            form_class=ReasonForm,
            apply=lambda qs, data: moderation.set_status(
                submissions_of(qs), status, data["reason"]
            ),
        )

    action.__name__ = f"mark_{status}"
    return admin.action(description=description, permissions=["moderate"])(action)


def _submissions_of_results(results: QuerySet) -> QuerySet:
    return Submission.objects.filter(result__in=results)


def _itself(submissions: QuerySet) -> QuerySet:
    return submissions


def _pretty_json(text: str) -> str:
    try:
        pretty = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pretty = text
    return format_html('<pre style="white-space: pre-wrap">{}</pre>', pretty)


class ReadOnlyRecordAdmin(admin.ModelAdmin):
    """Records of what was signed: viewable, never added, edited or deleted by hand.
    Moderators (users with the change permission) act on them through actions."""

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_moderate_permission(self, request) -> bool:
        opts = self.model._meta
        return request.user.has_perm(f"{opts.app_label}.change_{opts.model_name}")


@admin.register(Contributor)
class ContributorAdmin(ReadOnlyRecordAdmin):
    list_display = ["key_id", "display_name", "created_at", "revoked_at", "n_submissions"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["key_id", "display_name"]
    actions = ["revoke_keys"]

    @admin.display(description="submissions")
    def n_submissions(self, obj: Contributor) -> int:
        return obj.submissions.count()

    @admin.action(description="Revoke the selected keys…", permissions=["moderate"])
    def revoke_keys(self, request, queryset):
        return _ask_reason(
            self,
            request,
            queryset,
            title="Revoke keys",
            form_class=RevokeForm,
            apply=lambda qs, data: moderation.revoke(
                qs, data["reason"], reject_results=data["reject_results"]
            ),
        )


_SUBMISSION_ACTIONS = [
    (SubmissionStatus.REJECTED, "Reject", "Reject the selected results…"),
    (SubmissionStatus.FLAGGED, "Flag", "Flag the selected results…"),
    (SubmissionStatus.ACCEPTED, "Restore (accept)", "Restore the selected results…"),
]


@admin.register(Submission)
class SubmissionAdmin(ReadOnlyRecordAdmin):
    list_display = ["id", "contributor", "status", "created_at", "received_at", "result_link"]
    list_filter = ["status"]
    search_fields = ["contributor__key_id", "client_submission_id"]
    readonly_fields = ["signed_document"]
    exclude = ["body"]
    actions = [_status_action(s, t, d, _itself) for s, t, d in _SUBMISSION_ACTIONS]

    @admin.display(description="signed document (verbatim)")
    def signed_document(self, obj: Submission) -> str:
        return _pretty_json(obj.body)

    @admin.display(description="result")
    def result_link(self, obj: Submission) -> str:
        result = getattr(obj, "result", None)
        if result is None:
            return "-"
        return format_html('<a href="{}">{}</a>', result.get_absolute_url(), result.pk)


def _short_configuration(configuration: Configuration) -> str:
    """'bf16-resident, diffusers' (plus the size when it is not the standard one)."""
    name = configuration.preset or f"{configuration.precision} {configuration.offload}"
    return f"{name}, {configuration.get_runtime_display()}"


def _gib(mib: float | None) -> str:
    return "-" if mib is None else f"{mib / 1024:.1f} GiB"


class GroupColumns:
    """The short columns a result and a summary share: what ran where, and how fast."""

    @admin.display(description="model", ordering="model__slug")
    def model_slug(self, obj: Result | Summary) -> str:
        return obj.model.slug

    @admin.display(description="GPU", ordering="gpu__slug")
    def gpu_slug(self, obj: Result | Summary) -> str:
        return obj.gpu.slug

    @admin.display(description="configuration", ordering="configuration")
    def config(self, obj: Result | Summary) -> str:
        return _short_configuration(obj.configuration)

    @admin.display(description="median s/image", ordering="seconds_median")
    def seconds(self, obj: Result | Summary) -> str:
        return "-" if obj.seconds_median is None else f"{obj.seconds_median:.2f}"


@admin.register(Result)
class ResultAdmin(GroupColumns, ReadOnlyRecordAdmin):
    # Short columns, so the list fits a laptop screen without cutting any off.
    list_display = [
        "id",
        "model_slug",
        "gpu_slug",
        "config",
        "outcome",
        "seconds",
        "peak",
        "status",
        "is_outlier",
        "synthetic",
        "created_at",
    ]
    list_filter = ["submission__status", "outcome", "synthetic", "is_outlier", "model", "gpu"]
    list_select_related = ["model", "gpu", "configuration", "submission"]
    search_fields = ["id", "contributor__key_id", "driver_version"]
    exclude = ["thumbnail_png"]
    actions = [_status_action(s, t, d, _submissions_of_results) for s, t, d in _SUBMISSION_ACTIONS]

    @admin.display(description="status", ordering="submission__status")
    def status(self, obj: Result) -> str:
        return obj.submission.status

    @admin.display(description="peak VRAM", ordering="peak_vram_mb")
    def peak(self, obj: Result) -> str:
        return _gib(next((getattr(obj, f) for f in PEAK_VRAM_FIGURES if getattr(obj, f)), None))


@admin.register(Summary)
class SummaryAdmin(GroupColumns, ReadOnlyRecordAdmin):
    list_display = ["model_slug", "gpu_slug", "config", "synthetic", "verdict", "n_results",
                    "seconds", "peak", "exact", "computed_at"]  # fmt: skip
    list_filter = ["verdict", "synthetic", "exact", "model", "gpu"]
    list_select_related = ["model", "gpu", "configuration"]

    @admin.display(description="largest peak", ordering="peak_vram_mb_max")
    def peak(self, obj: Summary) -> str:
        return _gib(
            next(
                (getattr(obj, f"{f}_max") for f in PEAK_VRAM_FIGURES if getattr(obj, f"{f}_max")),
                None,
            )
        )


@admin.register(ImageModel)
class ImageModelAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "is_test_model", "default_steps", "sort_order"]


@admin.register(Gpu)
class GpuAdmin(admin.ModelAdmin):
    list_display = ["slug", "name", "family", "vram_mb", "is_flagged", "sort_order"]
    list_filter = ["is_flagged", "family"]
    search_fields = ["slug", "name"]
    actions = ["approve"]

    @admin.action(description="Approve the selected flagged GPUs", permissions=["change"])
    def approve(self, request, queryset):
        count = queryset.update(is_flagged=False)
        self.message_user(request, f"{count} GPUs approved.", messages.SUCCESS)


@admin.register(Configuration)
class ConfigurationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "runtime", "precision", "offload", "width", "height", "steps"]
    readonly_fields = ["preset"]


@admin.register(PublishedClaim)
class PublishedClaimAdmin(admin.ModelAdmin):
    list_display = ["model", "gpu_label", "path", "figure", "source"]
    list_filter = ["model", "source"]


class OptionalReasonForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 80}),
        max_length=2000,
        required=False,
        help_text="Kept with the report for the other moderators.",
    )


def _report_action(status: str, title: str, description: str):
    def action(modeladmin, request: HttpRequest, queryset: QuerySet):
        return _ask_reason(
            modeladmin,
            request,
            queryset,
            title=title,
            form_class=OptionalReasonForm,
            apply=lambda qs, data: moderation.set_report_status(qs, status, data["reason"]),
        )

    action.__name__ = f"report_{status}"
    return admin.action(description=description, permissions=["moderate"])(action)


@admin.register(SelfReport)
class SelfReportAdmin(ReadOnlyRecordAdmin):
    """Reports typed into /contribute/report: shown on the check page once approved."""

    list_display = ["id", "model", "gpu", "runtime", "outcome", "seconds_per_image",
                    "peak_vram_gb", "status", "submitted_at"]  # fmt: skip
    list_filter = ["status", "outcome", "runtime", "model", "gpu"]
    list_select_related = ["model", "gpu"]
    search_fields = ["settings", "notes", "runtime_version"]
    actions = [
        _report_action(ReportStatus.APPROVED, "Approve", "Approve the selected reports…"),
        _report_action(ReportStatus.REJECTED, "Reject", "Reject the selected reports…"),
    ]
