import pytest

from config.celery import app as celery_app

# Unit tests run tasks in-process; tests of the real worker start one in a subprocess.
celery_app.conf.task_always_eager = True
celery_app.conf.task_eager_propagates = True


@pytest.fixture
def catalog(db):
    """The catalog as `loadcatalog` writes it."""
    from benchmarks.services.catalog import load_catalog

    load_catalog()


@pytest.fixture(autouse=True)
def empty_cache():
    """Every test starts with an empty cache: no page, data version or queued update left
    by another test (they share the Redis database)."""
    from django.core.cache import cache

    cache.clear()
