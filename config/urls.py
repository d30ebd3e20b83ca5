from django.contrib import admin
from django.urls import include, path

from benchmarks.views import healthz
from checkpages.report_views import report
from checkpages.tool_views import agent_wheel
from config.dispatch import by_method

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # The agent's wheel, at an address pip can install from (no hashed static file name).
    path("agent/<str:filename>", agent_wheel, name="agent-wheel"),
    path(
        "contribute",
        by_method(
            get="checkpages.views.contribute_page",
            # POST, and the JSON 405 for any other method.
            otherwise="benchmarks.api.contribute.contribute",
        ),
        name="contribute",
    ),
    # A page, before benchmarks' JSON answers for everything else under /contribute/.
    path("contribute/report", report, name="report"),
    path("", include("benchmarks.urls")),
    path("", include("checkpages.urls")),
]
