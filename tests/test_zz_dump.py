import pathlib
import pytest
from tests.contribute_support import _fresh_rate_limits  # noqa
from tests.pages_data import fill_rtx_4090, fill_rtx_5070, fill_tiny_on_cpu, visible_text

pytestmark = pytest.mark.django_db

URLS = ["/", "/check/", "/check/flux-2-klein-4b/", "/check/flux-2-klein-4b/rtx-5070/",
        "/check/flux-2-klein-4b/rtx-4090/", "/check/flux-2-klein-4b/rtx-4080/",
        "/check/flux-2-klein-4b/rtx-5070/?preset=bf16-resident", "/check/flux-2-klein-4b/rtx-4090/?preset=fp8-storage",
        "/check/flux-2-klein-4b/cpu/", "/check/klein-tiny-random/cpu/", "/contribute",
        "/compare/flux-2-klein-4b/?gpu=rtx-5070&gpu=rtx-4090&gpu=rtx-4080", "/results/", "/r/1", "/r/13",
        "/check/flux-2-klein-base-4b/rtx-4090/"]

def test_dump(client, catalog):
    fill_rtx_5070(client); fill_rtx_4090(client); fill_tiny_on_cpu(client)
    out = pathlib.Path("/tmp/pages"); out.mkdir(exist_ok=True)
    for i, url in enumerate(URLS):
        r = client.get(url)
        (out / f"{i:02d}.html").write_bytes(r.content)
        (out / f"{i:02d}.txt").write_text(f"{url} {r.status_code}\n" + visible_text(r).replace(". ", ".\n"))
