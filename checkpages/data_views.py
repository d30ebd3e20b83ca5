"""/data/: the open-data snapshots (benchmarks.services.snapshots). The index page lists
the newest snapshot's files with their sums and the licence; each file is served with
its media type and Content-Length, and /data/latest/<file> redirects to the newest."""

from __future__ import annotations

from django.http import FileResponse, Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.cache import patch_cache_control
from django.views.decorators.http import require_safe

from benchmarks.services import snapshots

# A snapshot never changes once written; its index and /latest/ move nightly.
FILE_SECONDS = 7 * 24 * 3600
INDEX_SECONDS = 300


@require_safe
def index(request: HttpRequest) -> HttpResponse:
    names = snapshots.snapshots()
    latest = snapshots.manifest(names[0]) if names else None
    context = {
        "latest": latest,
        "name": names[0] if names else None,
        "older": names[1:],
        "keep_days": snapshots.KEEP_DAYS,
        "licence": snapshots.LICENCE,
        "licence_url": snapshots.LICENCE_URL,
    }
    response = HttpResponse(render_to_string("checkpages/data.html", context, request))
    patch_cache_control(response, public=True, max_age=INDEX_SECONDS)
    return response


@require_safe
def latest(request: HttpRequest, filename: str) -> HttpResponse:
    names = snapshots.snapshots()
    if not names or snapshots.file_path(names[0], filename) is None:
        raise Http404("No such file in the newest snapshot.")
    response = HttpResponseRedirect(reverse("checkpages:data-file", args=[names[0], filename]))
    patch_cache_control(response, public=True, max_age=INDEX_SECONDS)
    return response


@require_safe
def snapshot_file(request: HttpRequest, name: str, filename: str) -> FileResponse:
    path = snapshots.file_path(name, filename)
    if path is None:
        raise Http404("No such snapshot file.")
    response = FileResponse(
        path.open("rb"),
        content_type=snapshots.media_type(filename),
        as_attachment=filename != "manifest.json" and not filename.endswith(".txt"),
        filename=f"klein-bench-{name}-{filename}",
    )
    # FileResponse sets Content-Length from the file; say it for HEAD too.
    response["Content-Length"] = str(path.stat().st_size)
    patch_cache_control(response, public=True, max_age=FILE_SECONDS, immutable=True)
    return response
