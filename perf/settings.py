"""The production settings plus the perf-only URLs (a bare view to compare against).

Selected with DJANGO_SETTINGS_MODULE=perf.settings by the benchmarks alone; the site's
own URL configuration never has the bare view.
"""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "perf.urls"
