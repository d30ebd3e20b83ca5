import os

from django.core.wsgi import get_wsgi_application

from config.env import ConfigurationError, stop

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

try:
    application = get_wsgi_application()
except ConfigurationError as exc:
    stop(exc)
