"""The report form at /contribute/report: for people who will not run the agent. A GET
shows the form; a POST checks it (benchmarks.reports), keeps the report for moderation and
redirects to the form with a thank-you. Every address may send REPORT_RATE_PER_IP."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods

from benchmarks import reports
from benchmarks.api.contribute import client_address
from benchmarks.services import ratelimit
from benchmarks.site import site_url
from checkpages import install


def _page(
    request: HttpRequest, form: reports.ReportForm, status: int = 200, **extra
) -> HttpResponse:
    site = site_url(request)
    context = {
        "form": form,
        "sent": request.GET.get("sent") == "1" and request.method == "GET",
        "command": f"klein-bench submit --preset bf16-resident{install.server_option(site)}",
        "install": install.install(site),
        **extra,
    }
    return HttpResponse(render_to_string("checkpages/report.html", context, request), status=status)


@never_cache
@require_http_methods(["GET", "HEAD", "POST"])
def report(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return _page(request, reports.ReportForm())
    try:
        ratelimit.count(
            "report-ip", ratelimit.address_key(client_address(request)), settings.REPORT_RATE_PER_IP
        )
    except ratelimit.RateLimited as exc:
        response = _page(
            request,
            reports.ReportForm(request.POST),
            status=429,
            problem=f"Too many reports from your address: wait {exc.retry_after} s and send "
            "the form again (what you typed is still here).",
        )
        response["Retry-After"] = str(exc.retry_after)
        return response
    form = reports.ReportForm(request.POST)
    if not form.is_valid():
        form.data = form.data.copy()
        form.data["started"] = form.stamp_for_resend()
        return _page(request, form, status=400)
    reports.store(form)
    return HttpResponseRedirect(reverse("report") + "?sent=1", status=303)
