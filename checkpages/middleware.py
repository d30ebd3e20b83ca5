"""The site's own 404 page in development too.

With DJANGO_DEBUG on (as `make run` serves), Django answers an address that matches no
route, or a view's Http404, with its technical page listing every URL pattern. A
newcomer's first run should look like the product; DJANGO_TECHNICAL_404=1 brings Django's
page back for whoever is debugging the routes. (Without debug, Django renders 404.html
itself.)
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse
from django.views.defaults import page_not_found


class ProductNotFoundMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    @staticmethod
    def _replaces() -> bool:
        return settings.DEBUG and not settings.TECHNICAL_404

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        # No route matched (request.resolver_match is set only when one did): the answer
        # is Django's technical page. A view's own 404 page is left as it is.
        if response.status_code == 404 and request.resolver_match is None and self._replaces():
            return page_not_found(request, Http404())
        return response

    def process_exception(self, request: HttpRequest, exception: Exception):
        if isinstance(exception, Http404) and self._replaces():
            return page_not_found(request, exception)
        return None
