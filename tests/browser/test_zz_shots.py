import pytest
from django.test import Client
from tests.pages_data import fill_rtx_4090, fill_rtx_5070, fill_tiny_on_cpu

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
URLS = ["/", "/check/", "/check/flux-2-klein-4b/", "/check/flux-2-klein-4b/rtx-5070/",
        "/check/flux-2-klein-4b/rtx-4080/", "/contribute",
        "/compare/flux-2-klein-4b/?gpu=rtx-5070&gpu=rtx-4090&gpu=rtx-4080", "/results/", "/r/1", "/r/12", "/api/docs/"]

def test_shots(site, browser):
    c = Client(); fill_rtx_5070(c); fill_rtx_4090(c); fill_tiny_on_cpu(c)
    for width in (1366, 390):
        ctx = browser.new_context(viewport={"width": width, "height": 900}, java_script_enabled=False)
        page = ctx.new_page()
        for i, url in enumerate(URLS):
            page.goto(site.url + url)
            sw = page.evaluate("document.documentElement.scrollWidth")
            print(width, url, sw)
            page.screenshot(path=f"/tmp/shots/{width}-{i:02d}.png", full_page=True)
        ctx.close()
