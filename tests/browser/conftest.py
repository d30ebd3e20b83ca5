"""Headless Chromium for the end-to-end tests: Debian's /usr/bin/chromium driven by
Playwright for Python (never `playwright install`).

Without Chromium the browser tests are skipped with the reason, unless
KLEIN_BENCH_REQUIRE_BROWSER=1 (as in CI), where a missing browser is a failure.
JavaScript is switched off: every page must work without it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache

CHROMIUM = Path(os.environ.get("KLEIN_BENCH_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "screenshots"


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        reason = (
            f"Chromium is not installed at {CHROMIUM}; install Debian's chromium package "
            "(make browser) to run the browser tests."
        )
        if os.environ.get("KLEIN_BENCH_REQUIRE_BROWSER") == "1":
            pytest.fail(reason + " KLEIN_BENCH_REQUIRE_BROWSER=1 makes this a failure.")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop running in this thread; the tests' own
    # database calls are ordinary synchronous code, so Django must not refuse them.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            launched = playwright.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )
            yield launched
            launched.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def page(browser) -> Iterator:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, java_script_enabled=False
    )
    opened = context.new_page()
    yield opened
    context.close()


@pytest.fixture
def screenshot(page):
    """Save a full-page screenshot under artifacts/screenshots/ (kept by CI)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)

    def take(name: str) -> Path:
        path = SCREENSHOTS / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path

    return take


@pytest.fixture
def site(live_server, settings):
    """A live server with the catalog loaded and submissions welcome."""
    from benchmarks.services.catalog import load_catalog

    settings.CONTRIBUTE_RATE_PER_IP = "100000/hour"
    settings.CONTRIBUTE_RATE_PER_KEY = "100000/hour"
    cache.clear()
    load_catalog()
    yield live_server
    cache.clear()
