"""The site's URLs and /perf/bare: a Django view that does nothing, the baseline that the
pages' throughput is compared with (same server, same middleware, same run)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from config.urls import urlpatterns as site_urlpatterns


def bare(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


urlpatterns = [path("perf/bare", bare), *site_urlpatterns]
