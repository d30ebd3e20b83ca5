"""The read-only REST API, /api/v1/. Views build querysets from QuerySet methods and
hand them to serializers; every response is documented in the OpenAPI schema."""

from __future__ import annotations

from django.utils.cache import patch_cache_control
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import generics
from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from benchmarks.api.errors import ErrorSerializer, api_exception_handler
from benchmarks.api.filters import ResultFilter
from benchmarks.api.pagination import ResultCursorPagination
from benchmarks.api.renderers import CSVRenderer
from benchmarks.api.serializers import (
    CheckSerializer,
    GpuSerializer,
    ImageModelSerializer,
    ResultDetailSerializer,
    ResultSerializer,
)
from benchmarks.api.trust_serializers import ConsensusSerializer
from benchmarks.caching import PAGE_SECONDS
from benchmarks.models import Gpu, ImageModel, Preset, Result
from benchmarks.services import answers, consensus

# What people coming from other APIs try, and what this one calls it.
ALIASES = {
    "limit": " (page_size sets how many results a page holds)",
    "offset": " (follow the next link, which carries a cursor)",
    "page": " (follow the next link, which carries a cursor)",
}
NOT_MODIFIED = OpenApiResponse(description="Not modified: the If-None-Match ETag still matches")
NOT_FOUND = OpenApiResponse(ErrorSerializer, description="No such object")
BAD_QUERY = OpenApiResponse(ErrorSerializer, description="A query parameter is not valid")


class ApiViewMixin:
    """Errors as JSON whatever format was asked for; successful reads may be kept by a
    proxy or CDN for a minute (ConditionalGetMiddleware adds their ETag). A query
    parameter the endpoint does not have is a 400 naming it, never silently ignored."""

    # The query parameters this endpoint reads, besides ?format=.
    parameters: tuple[str, ...] = ()

    def get_exception_handler(self):
        return api_exception_handler

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        known = {"format", *self.parameters}
        unknown = sorted(set(request.query_params) - known)
        if unknown:
            listed = ", ".join(sorted(known))
            raise ValidationError(
                {
                    name: f"is not a parameter of this endpoint{ALIASES.get(name, '')}; it "
                    f"reads {listed}"
                    for name in unknown
                }
            )

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400 and isinstance(
            getattr(response, "accepted_renderer", None), CSVRenderer
        ):
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = JSONRenderer.media_type
        if request.method in ("GET", "HEAD") and response.status_code == 200:
            patch_cache_control(response, public=True, max_age=PAGE_SECONDS)
        return response


@extend_schema(
    tags=["catalog"], responses={200: ImageModelSerializer(many=True), 304: NOT_MODIFIED}
)
class ModelList(ApiViewMixin, generics.ListAPIView):
    """Every model in the catalog; is_test_model marks the tiny test pipeline."""

    serializer_class = ImageModelSerializer
    queryset = ImageModel.objects.all()


@extend_schema(tags=["catalog"], responses={200: GpuSerializer(many=True), 304: NOT_MODIFIED})
class GpuList(ApiViewMixin, generics.ListAPIView):
    """Every GPU in the catalog, including flagged entries made from unknown names."""

    serializer_class = GpuSerializer
    queryset = Gpu.objects.all()


class Check(ApiViewMixin, APIView):
    parameters = ("preset",)

    @extend_schema(
        tags=["checks"],
        operation_id="checks_retrieve",
        parameters=[
            OpenApiParameter(
                "preset",
                OpenApiTypes.STR,
                enum=list(Preset.values),
                description="Answer for this configuration only, like the check page's "
                "?preset=: measured, else estimated, else none",
            )
        ],
        responses={200: CheckSerializer, 304: NOT_MODIFIED, 400: BAD_QUERY, 404: NOT_FOUND},
    )
    def get(self, request: Request, model: str, gpu: str) -> Response:
        """Will this model run on this GPU? Summaries by configuration, the verdict, and
        the published claims beside them."""
        image_model = _by_slug(ImageModel, model)
        if image_model is None:
            raise NotFound(f"There is no model {model!r} in the catalog.")
        card = _by_slug(Gpu, gpu)
        if card is None:
            raise NotFound(f"There is no GPU {gpu!r} in the catalog.")
        found = answers.check(image_model, card, preset_of(request))
        data = {
            "model": image_model,
            "gpu": card,
            "verdict": found.verdict,
            "answer": found.answer,
            "summaries": found.summaries,
            "claims": found.claims,
            "estimate": found.estimate,
        }
        context = {"request": request, "capacity_mib": answers.capacity(card)}
        return Response(CheckSerializer(data, context=context).data)


def preset_of(request: Request) -> str:
    """The ?preset= asked for ("" for none); a name that is no preset is a 400."""
    preset = request.query_params.get("preset", "")
    if preset and preset not in Preset.values:
        raise ValidationError(
            {"preset": f"is not a configuration; use one of {', '.join(Preset.values)}"}
        )
    return preset


class Consensus(ApiViewMixin, APIView):
    @extend_schema(
        tags=["checks"],
        operation_id="consensus_retrieve",
        responses={200: ConsensusSerializer, 304: NOT_MODIFIED, 404: NOT_FOUND},
    )
    def get(self, request: Request, model: str) -> Response:
        """The image most independent contributors' runs make, per protocol, runtime and
        precision: a result whose image hash lies further from it is flagged and left out
        of the summaries (the agent checks against it before uploading)."""
        image_model = _by_slug(ImageModel, model)
        if image_model is None:
            raise NotFound(f"There is no model {model!r} in the catalog.")
        data = {"model": image_model.slug, "images": consensus.for_model(image_model)}
        return Response(ConsensusSerializer(data).data)


def _by_slug(model_class, slug: str):
    # The database cannot compare text holding NUL, and no slug has one.
    if "\x00" in slug:
        return None
    return model_class.objects.filter(slug=slug).first()


@extend_schema(
    tags=["results"],
    parameters=[
        OpenApiParameter(
            "format",
            OpenApiTypes.STR,
            enum=["json", "csv"],
            description="csv: the same page as CSV, the next page in the Link header",
        )
    ],
    responses={
        (200, "application/json"): ResultSerializer(many=True),
        (200, "text/csv"): OpenApiResponse(
            OpenApiTypes.STR, description="With format=csv: a header row, then one row per result"
        ),
        304: NOT_MODIFIED,
        (400, "application/json"): BAD_QUERY,
        (404, "application/json"): OpenApiResponse(
            ErrorSerializer,
            description="The model or GPU named is not in the catalog, or the cursor is not valid",
        ),
    },
)
class ResultList(ApiViewMixin, generics.ListAPIView):
    """Results, newest first, every status (only accepted ones count in summaries). Test
    models' results (the tiny random pipeline) are listed only when `model` names one."""

    serializer_class = ResultSerializer
    renderer_classes = [JSONRenderer, CSVRenderer]
    parameters = (
        *ResultFilter.base_filters,
        ResultCursorPagination.cursor_query_param,
        ResultCursorPagination.page_size_query_param,
    )
    pagination_class = ResultCursorPagination
    filter_backends = [DjangoFilterBackend]
    filterset_class = ResultFilter
    queryset = Result.objects.select_related(
        "model", "gpu", "configuration", "submission", "contributor"
    ).defer("runs", "environment", "telemetry", "thumbnail_png", "error_message")

    def get_queryset(self):
        params = self.request.query_params
        # A slug that names nothing is a 404, as for the checks, not an empty list.
        for name, model_class, noun in (("model", ImageModel, "model"), ("gpu", Gpu, "GPU")):
            slug = params.get(name)
            if slug and _by_slug(model_class, slug) is None:
                raise NotFound(f"There is no {noun} {slug!r} in the catalog.")
        queryset = super().get_queryset()
        if not params.get("model"):
            queryset = queryset.filter(model__is_test_model=False)
        return queryset


@extend_schema(exclude=True)
class ResultListWithSlash(ResultList):
    """/api/v1/results/ answers like /api/v1/results (left out of the schema)."""


@extend_schema(
    tags=["results"],
    parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH)],
    responses={200: ResultDetailSerializer, 304: NOT_MODIFIED, 404: NOT_FOUND},
)
class ResultDetail(ApiViewMixin, generics.RetrieveAPIView):
    """One result with every figure, and its signed document and public key."""

    serializer_class = ResultDetailSerializer
    queryset = Result.objects.select_related(
        "model", "gpu", "configuration", "submission", "contributor"
    )

    def get_object(self) -> Result:
        raw = self.kwargs["id"]
        result = None
        if raw.isascii() and raw.isdigit() and int(raw) < 2**63:
            result = self.get_queryset().filter(pk=int(raw)).first()
        if result is None:
            raise NotFound(f"There is no result {raw}.")
        return result


@extend_schema(exclude=True)
class ResultDetailWithSlash(ResultDetail):
    """/api/v1/results/<id>/ answers like /api/v1/results/<id> (left out of the schema)."""
