import os
import sys

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# DjangoTask gives every task delay_on_commit(), so tasks queue only after the
# transaction that made their work commits.
app = Celery("klein_bench", task_cls="celery.contrib.django.task:DjangoTask")


def _configure() -> None:
    from config.env import ConfigurationError

    try:
        app.config_from_object("django.conf:settings", namespace="CELERY")
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - loads settings now so errors surface here
    except ConfigurationError as exc:
        sys.exit(f"klein-bench: {exc}")
    app.autodiscover_tasks()


_configure()
