"""Hindsight settings, read from the environment (see README, "Configuration")."""

from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from csp.constants import NONCE
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)

# The development key lets `make run` (DEBUG=1) work with no configuration. With DEBUG off a real key is
# required: starting with a key everyone can read in this file would let anyone forge sessions and
# password-reset links. The web server refuses to start without one (`require_secret_key`, called by
# config/wsgi.py and config/asgi.py); commands that sign nothing (migrations, checks) still run, and
# `check --deploy` names the missing key. (The test suite sets its own key: tests/environment.py.)
SECRET_KEY = env("SECRET_KEY", default="")
if not SECRET_KEY and DEBUG:
    SECRET_KEY = "django-insecure-hindsight-development-only-key"


def require_secret_key() -> None:
    """Refuse to serve without a secret key of this installation's own."""
    if not SECRET_KEY:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. With DEBUG=0 Hindsight needs a secret key of its own: set SECRET_KEY to "
            '50 random characters (python -c "import secrets; print(secrets.token_urlsafe(50))"), in the '
            "environment or in .env beside manage.py; or set DEBUG=1 on a development machine."
        )


ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# The timeline import's accept form posts six fields for each of up to 1,000 candidate events
# (integrations/timeline_import.py MAX_CANDIDATES); Django's default of 1,000 fields would refuse it.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 7000

INSTALLED_APPS = [
    "accounts",
    "postmortems",
    "integrations",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "crispy_forms",
    "crispy_bootstrap5",
    "markdownx",
    "taggit",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "mozilla_django_oidc",
    "axes",
    "csp",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Before anything reads the body (CSRF reads POST): refuse what is too big or holds NUL bytes.
    "config.middleware.RequestLimitsMiddleware",
    "csp.middleware.CSPMiddleware",
    "config.middleware.SecurityHeadersMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "config.middleware.SessionIdleMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "accounts.security.PermissionDeniedLogMiddleware",
    # Last, as django-axes asks: it turns a lockout into the "too many attempts" page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"

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
                "csp.context_processors.nonce",
            ],
        },
    },
]

WSGI_APPLICATION = "config.wsgi.application"


def database_from_url(url: str) -> dict:
    """DATABASE_URL as a DATABASES entry. Empty (``DATABASE_URL=`` in .env) means the SQLite file beside
    manage.py; what cannot be a database URL stops start-up with a message naming the variable (without its
    value, which may hold a password)."""
    url = url.strip() or f"sqlite:///{BASE_DIR / 'db.sqlite3'}"
    scheme = urlsplit(url).scheme
    if scheme not in environ.Env.DB_SCHEMES:
        found = f"the scheme {scheme!r} is not a database" if scheme else "it has no scheme"
        raise ImproperlyConfigured(
            f"DATABASE_URL is not a database URL: {found}. Use e.g. "
            "postgres://user:password@host:5432/hindsight or sqlite:///path/to/db.sqlite3, "
            "or leave it empty for SQLite."
        )
    try:
        config = environ.Env.db_url_config(url)
    except ValueError as error:  # a port that is not a number, or out of range
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {error}.") from None
    if not config["NAME"]:
        raise ImproperlyConfigured("DATABASE_URL names no database, e.g. postgres://host:5432/hindsight.")
    return config


DATABASES = {"default": database_from_url(env.str("DATABASE_URL", default=""))}
# Keeping connections open triples throughput over reconnecting for every request.
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # JIT compiles a plan's expressions once it looks costly: on the action-item counts and insights
    # aggregates over 100,000 incidents it added ~300 ms to queries that run in 10-100 ms without it.
    # Parallel workers: starting one cost more than it saved on every list query measured (three tags:
    # 19 ms with, 10 without), and under load the cores are busy serving other requests anyway.
    options = DATABASES["default"].setdefault("OPTIONS", {})
    tuning = "-c jit=off -c max_parallel_workers_per_gather=0"
    options["options"] = f"{options.get('options', '')} {tuning}".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
FORMS_URLFIELD_ASSUME_HTTPS = True  # Django 6 behaviour: a URL typed without a scheme means https.

AUTH_USER_MODEL = "accounts.User"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# Sign-in: passwords (unless PASSWORD_SIGN_IN=0) and, with OIDC_* settings, single sign-on (OpenID
# Connect, mozilla-django-oidc; integrations/sso.py makes the account from the claims).
PASSWORD_SIGN_IN = env.bool("PASSWORD_SIGN_IN", default=True)
OIDC_RP_CLIENT_ID = env("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env("OIDC_RP_CLIENT_SECRET", default="")
OIDC_OP_AUTHORIZATION_ENDPOINT = env("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env("OIDC_OP_JWKS_ENDPOINT", default="")
OIDC_RP_SIGN_ALGO = env("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env("OIDC_RP_SCOPES", default="openid email profile")
OIDC_PROVIDER_NAME = env("OIDC_PROVIDER_NAME", default="single sign-on")
OIDC_GROUPS_CLAIM = env("OIDC_GROUPS_CLAIM", default="groups")
OIDC_STAFF_GROUPS = env.list("OIDC_STAFF_GROUPS", default=[])
OIDC_CREATE_TEAMS = env.bool("OIDC_CREATE_TEAMS", default=False)
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID and OIDC_OP_AUTHORIZATION_ENDPOINT)
LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/?sso=failed"
# django-axes first: it refuses a locked-out username and address before any password is checked (it
# checks, but never signs anyone in itself).
AUTHENTICATION_BACKENDS = [
    *(["integrations.sso.SsoBackend"] if OIDC_ENABLED else []),
    *(["django.contrib.auth.backends.ModelBackend"] if PASSWORD_SIGN_IN else []),
]
if not AUTHENTICATION_BACKENDS:
    raise ImproperlyConfigured("PASSWORD_SIGN_IN=0 needs single sign-on: set the OIDC_* variables.")
AUTHENTICATION_BACKENDS.insert(0, "axes.backends.AxesStandaloneBackend")
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "postmortems:list"
LOGOUT_REDIRECT_URL = "accounts:login"

# Sign-in throttling (django-axes), on the site's and the admin's sign-in and on password-reset requests:
# after SIGN_IN_FAILURE_LIMIT failures for one username from one address, that pair is locked out for
# SIGN_IN_COOLOFF_MINUTES (a failure during the cool-off starts it again). Attempts live in the database,
# so every web process agrees.
AXES_FAILURE_LIMIT = env.int("SIGN_IN_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("SIGN_IN_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.views.locked_out"
AXES_CLIENT_IP_CALLABLE = "accounts.security.client_address"
# The security log (accounts.SecurityEvent) records sign-ins; axes keeps only what a lockout needs.
AXES_DISABLE_ACCESS_LOG = True
AXES_VERBOSE = False
# Behind proxies that append the client's address to X-Forwarded-For, how many of them there are (the
# address is read that many entries from the right); 0: the connection's own address (REMOTE_ADDR).
FORWARDED_FOR_PROXIES = env.int("FORWARDED_FOR_PROXIES", default=0)

# Sessions end after this long without a request (the expiry moves forward at most every few minutes).
SESSION_COOKIE_AGE = int(env.float("SESSION_IDLE_HOURS", default=12) * 3600)
# The security log (sign-ins, failures, lockouts, password changes and resets, exports, refusals).
SECURITY_LOG_RETENTION_DAYS = env.int("SECURITY_LOG_RETENTION_DAYS", default=365)

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_URL = "media/"
MEDIA_ROOT = env.path("MEDIA_ROOT", default=BASE_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}

# Cache: per process by default; CACHE_URL (e.g. redis://127.0.0.1:6379/1) shares it between processes.
# It holds only figures over public published incidents, keyed by a version read from the database
# (postmortems/aggregates.py), so every process agrees at once either way. A Redis that is down or hung must
# never fail a page: with django-redis, an error reaching it is logged (DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS,
# logger "django_redis.cache") and read as a miss, within half a second per operation even when Redis
# accepts connections but never answers (without the timeouts a request waited for ever).
CACHES = {"default": env.cache_url("CACHE_URL", default="locmemcache://")}
if CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache":
    CACHES["default"]["OPTIONS"] = {
        "IGNORE_EXCEPTIONS": True,
        "SOCKET_CONNECT_TIMEOUT": 0.5,
        "SOCKET_TIMEOUT": 0.5,
        **CACHES["default"].get("OPTIONS", {}),
    }
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True
# Sessions live in the database alone: signing in and staying signed in never depend on the cache.
SESSION_ENGINE = "django.contrib.sessions.backends.db"

# Email: console by default, SMTP (or any backend django-environ knows) from EMAIL_URL.
if "EMAIL_URL" in env:
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
# An SMTP server that stops answering fails a send after this many seconds (the notification waits for
# the next catch-up) instead of holding a worker until the task's time limit.
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="Hindsight <hindsight@localhost>")
SITE_URL = env("SITE_URL", default="http://127.0.0.1:8000")

# Celery: with no broker configured, tasks run in-process when they are enqueued.
CELERY_BROKER_URL = env("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_TIME_LIMIT = 120
CELERY_TASK_SOFT_TIME_LIMIT = 90
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = TIME_ZONE
# A broker that is down or hung must not hold the request that enqueues: the notification is recorded
# already and the catch-up sends it (postmortems/notifications.py), so one quick retry is enough, and the
# socket timeouts end a wait on a broker that accepts connections but never answers (without them a
# publish waited for ever). socket_timeout stays above the worker's 1 s BRPOP.
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 1,
    "interval_start": 0,
    "interval_step": 0.2,
    "interval_max": 0.2,
}
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2, "socket_timeout": 3}
# A worker or beat started, or left, without a broker waits for it however long it takes (Celery's default
# gives up after 100 attempts, about 45 minutes), then the worker's start sends what waited.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
# Every morning: action items due soon or overdue, reviews pending for days (postmortems/reminders.py).
# Safe to run more often: each person gets one email of each kind per day.
CELERY_BEAT_SCHEDULE = {
    "daily-reminders": {
        "task": "postmortems.tasks.send_daily_reminders",
        "schedule": crontab(hour=env.int("REMINDER_HOUR", default=7), minute=0),
    },
    # Notifications the broker did not take when their change committed (postmortems/notifications.py).
    # A run that waited past the next one is dropped: the next one does the same work.
    "pending-notifications": {
        "task": "postmortems.tasks.send_pending_notifications",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    # Webhook deliveries the broker did not take, and retries that are due (integrations/webhooks.py).
    "pending-webhooks": {
        "task": "integrations.tasks.send_pending_webhooks",
        "schedule": 60.0,
        "options": {"expires": 55},
    },
    "overdue-webhooks": {
        "task": "integrations.tasks.send_overdue_webhooks",
        "schedule": crontab(hour=env.int("REMINDER_HOUR", default=7), minute=5),
    },
    # Images uploaded more than a day ago that no postmortem shows (postmortems/uploads.py).
    "daily-unused-uploads": {
        "task": "postmortems.tasks.delete_unused_uploads",
        "schedule": crontab(hour=3, minute=30),
    },
    "daily-security-log-retention": {
        "task": "accounts.tasks.prune_security_log",
        "schedule": crontab(hour=3, minute=45),
    },
}

# The REST API (integrations/api/): personal tokens, throttled per token, cursor-paginated, JSON errors.
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["integrations.api.authentication.TokenAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["integrations.api.authentication.TokenAccessPermission"],
    "DEFAULT_THROTTLE_CLASSES": ["integrations.api.authentication.TokenRateThrottle"],
    "DEFAULT_THROTTLE_RATES": {"token": env("API_THROTTLE_RATE", default="600/minute")},
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "integrations.api.views.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Hindsight API",
    "DESCRIPTION": "Postmortems, their review workflow and action items, as the person whose token is sent.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "IncidentStatusEnum": "postmortems.models.Status",
        "ActionItemStatusEnum": "postmortems.models.ActionItemStatus",
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
}

# Webhooks (integrations/webhooks.py): attempts at WEBHOOK_RETRY_SECONDS × 1, 2, 4 … apart.
WEBHOOK_TIMEOUT_SECONDS = env.float("WEBHOOK_TIMEOUT_SECONDS", default=5.0)
WEBHOOK_MAX_ATTEMPTS = env.int("WEBHOOK_MAX_ATTEMPTS", default=8)
WEBHOOK_RETRY_SECONDS = env.float("WEBHOOK_RETRY_SECONDS", default=30.0)
WEBHOOK_RETRY_MAX_SECONDS = env.float("WEBHOOK_RETRY_MAX_SECONDS", default=6 * 60 * 60)
# Issue trackers (integrations/trackers.py): a tracker that is down is tried again TRACKER_RETRY_SECONDS
# × 1, 2, 4 … later (a rate limit's Retry-After wins).
TRACKER_RETRY_SECONDS = env.float("TRACKER_RETRY_SECONDS", default=60.0)

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

TAGGIT_CASE_INSENSITIVE = True

# markdownx's own preview does not sanitise: every preview goes through the project's renderer.
MARKDOWNX_MARKDOWNIFY_FUNCTION = "postmortems.markdown.render_markdown"
# Hosts whose images Markdown may show (e.g. grafana.example.com); any other image shows as a link, so a
# postmortem cannot make its readers' browsers call a tracking pixel. Empty: only images uploaded here.
MARKDOWN_IMAGE_HOSTS = env.list("MARKDOWN_IMAGE_HOSTS", default=[])

# Request bodies. A form post (a step of a postmortem with long log pastes) may be up to
# REQUEST_MAX_MB; an image upload up to UPLOAD_MAX_MB. Bigger bodies are refused from their
# Content-Length before a byte is read (config/middleware.py); put the same limit on the proxy.
DATA_UPLOAD_MAX_MEMORY_SIZE = int(env.float("REQUEST_MAX_MB", default=10) * 1024 * 1024)
UPLOAD_MAX_BYTES = int(env.float("UPLOAD_MAX_MB", default=5) * 1024 * 1024)
# An accepted upload stays in memory (it is bounded above), never in a temporary file.
FILE_UPLOAD_MAX_MEMORY_SIZE = UPLOAD_MAX_BYTES + 64 * 1024
# An image upload is one file; a Slack export for the timeline import is a file per day.
DATA_UPLOAD_MAX_NUMBER_FILES = 100
# Images per person per hour; the pixels an image may have (its header is read before any decoding).
UPLOADS_PER_HOUR = env.int("UPLOADS_PER_HOUR", default=30)
UPLOAD_MAX_PIXELS = env.int("UPLOAD_MAX_PIXELS", default=25_000_000)
# What decoding one image may cost a worker: WebP decodes dearly, so it gets fewer pixels (uploads.py).
UPLOAD_MEMORY_MB = env.int("UPLOAD_MEMORY_MB", default=300)

# The review workflow and follow-through (DESIGN.md sections 5 and 8).
POSTMORTEM_MIN_REVIEWERS = env.int("POSTMORTEM_MIN_REVIEWERS", default=1)
ACTION_ITEM_SLO_DAYS = {"P1": 28, "P2": 56, "P3": 90, "P4": 180} | env.json(
    "ACTION_ITEM_SLO_DAYS", default={}
)

# Security. Behind a TLS-terminating proxy set SECURE_PROXY_SSL_HEADER_ENABLED=1.
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=not DEBUG)
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0 if DEBUG else 60 * 60 * 24 * 365)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
# Content-Security-Policy (django-csp): scripts only from here or with this request's nonce, nothing
# inline; images from here (Bootstrap's icons are data: URIs) and the MARKDOWN_IMAGE_HOSTS.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'", NONCE],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", *(f"https://{host}" for host in MARKDOWN_IMAGE_HOSTS)],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    },
}
PERMISSIONS_POLICY = (
    "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), "
    "payment=(), usb=()"
)
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
# Covering indexes (INCLUDE) are a PostgreSQL optimisation; SQLite builds the same index without them.
SILENCED_SYSTEM_CHECKS += ["models.W040"]
if env.bool("SECURE_PROXY_SSL_HEADER_ENABLED", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

# Real public postmortems (DESIGN.md section 11), used by seed_demo, tests and the benchmark when present.
PUBLIC_POSTMORTEMS_DIR = env.path(
    "PUBLIC_POSTMORTEMS_DIR", default=BASE_DIR.parent / "shared" / "data" / "public-postmortems"
)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    # Django's own console handler (DEBUG only) printed each of its records a second time beside the root's:
    # its records go to the root handler alone, once, with DEBUG on or off.
    "loggers": {
        "django": {"handlers": [], "propagate": True},
        # urllib3 logs each request's full URL at DEBUG: a chat webhook's URL is its secret (webhooks, SSO).
        "urllib3": {"level": "WARNING"},
        # django-axes reports every sign-in at INFO; the security log (accounts.SecurityEvent) has them.
        "axes": {"level": "WARNING"},
    },
}
