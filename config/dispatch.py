"""One URL, a view per HTTP method, from different apps.

`/contribute` is a page for people (GET, checkpages) and the submission API for the
agent (POST, benchmarks); the URL configuration is where the two apps meet.
"""

from __future__ import annotations

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt


def by_method(otherwise: str | None = None, **views: str) -> Callable[..., HttpResponse]:
    """A view that calls views[method] (dotted paths, imported on first use), and
    `otherwise` for every other method (by default an empty 405)."""
    methods = {method.upper(): path for method, path in views.items()}
    if "GET" in methods:
        methods.setdefault("HEAD", methods["GET"])

    # The POST target is a signed API that authenticates by signature, not by cookie.
    @csrf_exempt
    def dispatch(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        path = methods.get(request.method or "", otherwise)
        if path is None:
            return HttpResponseNotAllowed(sorted(methods))
        return import_string(path)(request, *args, **kwargs)

    return dispatch
