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
def _no_agent_wheel(settings, tmp_path_factory):
    """Pages show the clone's install command unless a test serves a built wheel (the
    worktree's own build/agent must not change what tests see)."""
    settings.AGENT_WHEEL_DIR = tmp_path_factory.mktemp("no-agent-wheel")


@pytest.fixture(autouse=True)
def empty_cache():
    """Every test starts with an empty cache: no page, data version or queued update left
    by another test (they share the Redis database)."""
    from django.core.cache import cache

    cache.clear()
