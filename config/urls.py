from django.contrib import admin
from django.urls import include, path

from benchmarks.views import healthz
from config.dispatch import by_method

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path(
        "contribute",
        by_method(
            get="checkpages.views.contribute_page",
            # POST, and the JSON 405 for any other method.
            otherwise="benchmarks.api.contribute.contribute",
        ),
        name="contribute",
    ),
    path("", include("benchmarks.urls")),
    path("", include("checkpages.urls")),
]
