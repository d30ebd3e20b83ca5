"""klein-bench settings: one module, read from the environment.

With no environment set it runs on embedded defaults: SQLite in ./data, Celery tasks run
eagerly, and a local-memory cache. DATABASE_URL and REDIS_URL switch to PostgreSQL and
Redis. With DJANGO_DEBUG off it refuses to start without SECRET_KEY, ALLOWED_HOSTS and
both URLs.
"""

from pathlib import Path

from celery.schedules import crontab

from config.env import (
    ConfigurationError,
    database_from_url,
    env_bool,
    env_int,
    env_list,
    env_rate,
    env_str,
    redis_url,
)

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = Path(env_str("KLEIN_BENCH_DATA_DIR") or BASE_DIR / "data")

DEBUG = env_bool("DJANGO_DEBUG", default=True)
# Django's technical 404 page (every URL pattern) instead of the site's own, in debug only.
TECHNICAL_404 = DEBUG and env_bool("DJANGO_TECHNICAL_404", default=False)

SECRET_KEY = env_str("SECRET_KEY")
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if DEBUG:
    SECRET_KEY = SECRET_KEY or "django-insecure-development-only-key-do-not-use-in-production"
    ALLOWED_HOSTS = ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]", "testserver"]
else:
    # The same test as Django's deploy check (security.W009), so a key that passes here
    # passes `check --deploy` too.
    if (
        len(SECRET_KEY) < 50
        or len(set(SECRET_KEY)) < 5
        or SECRET_KEY.startswith("django-insecure-")
    ):
        raise ConfigurationError(
            "SECRET_KEY must be set to a random string of at least 50 characters when "
            "DJANGO_DEBUG is off (for example: python -c 'import secrets; "
            "print(secrets.token_urlsafe(50))')."
        )
    if not ALLOWED_HOSTS:
        raise ConfigurationError(
            "ALLOWED_HOSTS must list the site's host names, comma-separated "
            "(for example: klein-bench.org,www.klein-bench.org), when DJANGO_DEBUG is off."
        )

# The public address of the site, for permalinks in answers and the commands pages show.
# Unset: the address each request came to (benchmarks.site.site_url), and without a
# request http://127.0.0.1:PORT, where `make run` serves.
SITE_URL = env_str("SITE_URL").rstrip("/")
PORT = env_int("PORT", 8000, minimum=1)
# The platform the agent talks to without --server (klein_bench.upload.DEFAULT_SERVER, which
# the server may not import; a test keeps the two equal). Commands the pages show add
# --server SITE_URL when the site is another one.
AGENT_DEFAULT_SERVER = "https://klein-bench.org"
# Where the open-data snapshots are written (`manage.py snapshot`, nightly) and served from.
SNAPSHOT_DIR = Path(env_str("SNAPSHOT_DIR") or DATA_DIR / "snapshots")
# Where `manage.py buildagent` puts the agent's wheel, served at /agent/<wheel file>.
AGENT_WHEEL_DIR = Path(env_str("AGENT_WHEEL_DIR") or BASE_DIR / "build" / "agent")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "benchmarks",
    "checkpages",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise, which serves its own precompressed static files. Against BREACH,
    # Django masks the CSRF token afresh in every response (only the admin's forms carry one).
    "benchmarks.middleware.GZipMiddleware",
    # An ETag on every answer, and 304 for a matching If-None-Match.
    "django.middleware.http.ConditionalGetMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Outside CommonMiddleware, so a missing slash is still redirected first.
    "checkpages.middleware.ProductNotFoundMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it is the first to see a view's exception: database down -> 503.
    "benchmarks.middleware.DatabaseUnavailableMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL and not DEBUG:
    raise ConfigurationError(
        "DATABASE_URL must be set when DJANGO_DEBUG is off, like "
        "postgres://USER:PASSWORD@HOST:5432/DBNAME (the SQLite default is for development)."
    )
if DATABASE_URL:
    DATABASES = {"default": database_from_url("DATABASE_URL", DATABASE_URL)}
else:
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "klein-bench.sqlite3",
            "OPTIONS": {
                # Concurrent submissions wait for the write lock instead of failing at once:
                # a transaction takes the lock when it begins (IMMEDIATE), so two of them
                # never both read and then deadlock on upgrading to write, which SQLite
                # answers with "database is locked" at once, whatever the timeout. WAL lets
                # pages read while a submission writes.
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
        }
    }

REDIS_URL = env_str("REDIS_URL")
if not REDIS_URL and not DEBUG:
    raise ConfigurationError(
        "REDIS_URL must be set when DJANGO_DEBUG is off, like redis://HOST:6379/0 (without "
        "it every web process would keep its own cache and run tasks itself)."
    )
if REDIS_URL:
    redis_url("REDIS_URL", REDIS_URL)
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "TIMEOUT": 3600,
            "OPTIONS": {
                # The cache only saves work: while Redis is down every read misses and
                # every write is dropped, so pages keep answering (/healthz reports it).
                "IGNORE_EXCEPTIONS": True,
                # Each cache call waits this long at most for a Redis that does not answer.
                "SOCKET_CONNECT_TIMEOUT": 0.5,
                "SOCKET_TIMEOUT": 0.5,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# Celery: eager without Redis, so the embedded platform needs no broker or worker.
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 1, "socket_timeout": 2}
CELERY_TIMEZONE = "UTC"
RECONCILE_INTERVAL_SECONDS = env_int("RECONCILE_INTERVAL_SECONDS", 300)
CELERY_BEAT_SCHEDULE = {
    "reconcile-summaries": {
        "task": "benchmarks.tasks.reconcile_summaries",
        "schedule": RECONCILE_INTERVAL_SECONDS,
    },
    "reconcile-consensus": {
        "task": "benchmarks.tasks.reconcile_consensus",
        "schedule": RECONCILE_INTERVAL_SECONDS,
    },
    # The open-data snapshot at /data/, nightly.
    "snapshot-data": {
        "task": "benchmarks.tasks.write_snapshot",
        "schedule": crontab(hour=3, minute=0),
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env_str("STATIC_ROOT") or BASE_DIR / "staticfiles")
# Only production collects static files; in development and tests STATIC_ROOT may not
# exist, and WhiteNoise would warn about it on every start.
WHITENOISE_AUTOREFRESH = DEBUG
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Contributions
CONTRIBUTE_CLOCK_SKEW_SECONDS = env_int("CONTRIBUTE_CLOCK_SKEW_SECONDS", 300, minimum=0)
CONTRIBUTE_MAX_BYTES = env_int("CONTRIBUTE_MAX_BYTES", 256 * 1024, minimum=1024)
CONTRIBUTE_RATE_PER_KEY = env_rate("CONTRIBUTE_RATE_PER_KEY", "60/hour")
CONTRIBUTE_RATE_PER_IP = env_rate("CONTRIBUTE_RATE_PER_IP", "120/hour")
# Reports typed into /contribute/report, per client address.
REPORT_RATE_PER_IP = env_rate("REPORT_RATE_PER_IP", "10/hour")
# How many reverse proxies in front of the site append to X-Forwarded-For: the client's
# address is the entry that many places from the right. 0 (the default) trusts no header
# and takes the connection's address; the compose deployment, behind one proxy, sets 1.
TRUSTED_PROXY_HOPS = env_int("TRUSTED_PROXY_HOPS", 0, minimum=0)
# django-ratelimit counts in the default cache; a cache that is down lets requests
# through (losing a measurement is worse than letting a burst in).
RATELIMIT_USE_CACHE = "default"
RATELIMIT_FAIL_OPEN = True
DATA_UPLOAD_MAX_MEMORY_SIZE = max(CONTRIBUTE_MAX_BYTES * 2, 2_621_440)

REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "benchmarks.api.renderers.FormatNegotiation",
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"],
    "UNAUTHENTICATED_USER": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "klein-bench API",
    "DESCRIPTION": (
        "Community measurements of image models on GPUs: seconds per image, peak VRAM and "
        "whether a configuration fits. Results are Ed25519-signed; see docs/protocol.md. "
        "Summaries count protocol-exact results whose image agrees with the consensus, by "
        "independent contributors (docs/trust.md). Beside this API: /data/ (nightly open-data "
        "snapshots: CSV, Parquet, signed documents as JSON Lines, a manifest with SHA-256 "
        "sums; CC BY 4.0), /check/{model}/{gpu}/badge.svg (a live badge), "
        "/check/{model}/{gpu}/feed.atom (new results, Atom) and /contribute/report (a form "
        "for self-reported results, shown apart)."
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Swagger UI from the installed package, not a CDN, so /api/docs/ works offline.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Fields without a value are null (never ""), so no "BlankEnum" component is needed.
    "ENUM_ADD_EXPLICIT_BLANK_NULL_CHOICE": False,
    # The measured verdict, apart from the estimated one (benchmarks.services.estimates).
    "ENUM_NAME_OVERRIDES": {
        "VerdictEnum": "benchmarks.models.Verdict",
        "EstimateVerdictEnum": "benchmarks.services.estimates.VERDICT_ORDER",
    },
    # The signed POST and DELETE /contribute are plain Django views; this adds them.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "benchmarks.api.schemas.contribution_endpoints",
    ],
}

# Production hardening (manage.py check --deploy is clean with DJANGO_DEBUG off).
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Django's default config gives its loggers a console handler of their own in debug;
    # without this every request warning would be printed twice.
    "loggers": {"django": {"handlers": [], "propagate": True}},
}
