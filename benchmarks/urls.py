"""Routes of the benchmarks app: signed withdrawal, the REST API and the schemas.

POST /contribute is routed in config/urls.py, where it shares its address with the
contribute page.
"""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from benchmarks.api import contribute, errors, schemas, views
from benchmarks.caching import cached_until_data_changes

app_name = "benchmarks"

urlpatterns = [
    path("contribute/<int:result_id>", contribute.withdraw, name="withdraw"),
    # Anything else under /contribute/ (/contribute/-1, /contribute/abc) is a JSON 404.
    re_path(r"^contribute/", contribute.not_found),
    path("api/v1/models", views.ModelList.as_view(), name="api-models"),
    path("api/v1/gpus", views.GpuList.as_view(), name="api-gpus"),
    path(
        "api/v1/checks/<str:model>/<str:gpu>",
        cached_until_data_changes(views.Check.as_view()),
        name="api-check",
    ),
    path(
        "api/v1/consensus/<str:model>",
        cached_until_data_changes(views.Consensus.as_view()),
        name="api-consensus",
    ),
    path("api/v1/results", views.ResultList.as_view(), name="api-results"),
    path("api/v1/results/", views.ResultListWithSlash.as_view()),
    path("api/v1/results/<str:id>", views.ResultDetail.as_view(), name="api-result"),
    path("api/v1/results/<str:id>/", views.ResultDetailWithSlash.as_view()),
    path("schemas/result-v1.json", schemas.result_schema_view, name="result-schema"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/docs/",
        SpectacularSwaggerView.as_view(
            url_name="benchmarks:api-schema", template_name="benchmarks/swagger_ui.html"
        ),
        name="api-docs",
    ),
    # Anything else under /api/ answers a JSON 404 like the endpoints do.
    re_path(r"^api/", errors.not_found),
]
