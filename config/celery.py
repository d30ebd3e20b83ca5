import os

from celery import Celery
from celery.signals import beat_init, celeryd_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# DjangoTask gives every task delay_on_commit(), so tasks queue only after the
# transaction that made their work commits.
app = Celery("klein_bench", task_cls="celery.contrib.django.task:DjangoTask")


def _configure() -> None:
    from config.env import ConfigurationError, stop

    try:
        app.config_from_object("django.conf:settings", namespace="CELERY")
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 - loads settings now so errors surface here
    except ConfigurationError as exc:
        stop(exc)
    app.autodiscover_tasks()


@celeryd_init.connect
@beat_init.connect
def _require_a_broker(**_kwargs) -> None:
    # Without REDIS_URL the broker is in-process memory: a worker or beat started that way
    # would wait forever for tasks no one else can send it.
    if app.conf.broker_url.startswith("memory://"):
        from config.env import ConfigurationError, stop

        stop(
            ConfigurationError(
                "REDIS_URL must be set to run a Celery worker or beat, like "
                "redis://HOST:6379/0 (without it, tasks run inside the web process)."
            )
        )


_configure()
