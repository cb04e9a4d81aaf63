"""Settings for every process (web, worker, beat, commands), read from the environment (README, Configuration).

`DJANGO_DEBUG` defaults to false: the secret key, allowed hosts and encryption keys are then mandatory.
`bin/serve` sets `DJANGO_DEBUG=true` for the embedded set-up: SQLite in the project folder, executions in a
background thread of the web process, a secret key and an encryption key generated once into `.local/`.
"""

import hashlib
import hmac
import logging
import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_choice, env_int, env_list, env_str
from config.local_secret import local_secret
from credentials.crypto import KeyConfigError, load_or_create_local_keys, parse_keys
from monitoring.logs import LOG_FORMATS, logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
LOCAL_DIR = BASE_DIR / ".local"

DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = env_str("DJANGO_SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_SECRET_KEY is required when DJANGO_DEBUG=false (the default; bin/serve sets DJANGO_DEBUG=true)."
        )
    SECRET_KEY = local_secret(LOCAL_DIR / "secret.key")  # random, generated once; never a committed constant

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS is required when DJANGO_DEBUG=false.")
    ALLOWED_HOSTS = ["localhost", "127.0.0.1", "[::1]", "testserver"]

INSTALLED_APPS = [
    "console.apps.ConsoleAdminConfig",  # django.contrib.admin with the console's site as admin.site
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "core",
    "workspaces",
    "contacts",
    "connectors",
    "executions",
    "triggers",
    "webhooks",
    "batches",
    "credentials",
    "templates_market",
    "console",
    "monitoring",
    "usage",
    "audit",
    "alerts",
]

MIDDLEWARE = [
    "monitoring.middleware.RequestMetricsMiddleware",
    "core.middleware.ApiErrorMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "core.security.ContentSecurityPolicyMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "core.middleware.RequestSizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.security.AdminLoginThrottleMiddleware",
    "audit.context.AuditRequestMiddleware",
]

APPEND_SLASH = True
ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
AUTH_USER_MODEL = "workspaces.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    # Django's backend, with health checks that poll the socket before any round trip (core/postgresql).
    DATABASES["default"]["ENGINE"] = "core.postgresql"
    # Fail fast while PostgreSQL is unreachable (the API answers 503, workers retry) instead of hanging on
    # the operating system's connect timeout.
    DATABASES["default"].setdefault("OPTIONS", {}).setdefault("connect_timeout", 5)
# The connection pool of a worker process (executions.worker_pool turns it on there): its 200 threads each need a
# connection only for the few milliseconds of a claim, a checkpoint or a finish (executions.runtime hands it
# back in between), so a few connections serve them all. Web processes keep one persistent connection per
# gunicorn thread instead (cheaper per request, and bounded by the thread count anyway).
DATABASE_POOL_MAX_SIZE = env_int("DATABASE_POOL_MAX_SIZE", 10, minimum=1)
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Several threads (the embedded executor) write to the file: wait for the lock instead of failing. A
    # transaction takes the write lock when it begins (IMMEDIATE): one that read first and wrote later (a claim)
    # while another thread held the write lock could otherwise only fail ("database is locked"), not wait.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=20, transaction_mode="IMMEDIATE")
    DATABASES["default"]["CONN_MAX_AGE"] = 0

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
STATIC_ROOT = BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Request limits (docs/api.md §13) ---
MAX_REQUEST_BODY_BYTES = env_int("API_MAX_REQUEST_BYTES", 2 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BODY_BYTES

# --- Cache: shared through Redis when there is one, so throttles hold across processes (core.cache: Django's
# Redis cache, reusing one client per connection pool) ---
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL")
if CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": CELERY_BROKER_URL}}
    if CELERY_BROKER_URL.startswith("redis://"):  # rediss:// keeps kombu's own transport and its TLS set-up
        CELERY_BROKER_TRANSPORT = "config.broker:Transport"  # kombu's, with one Redis client per channel
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- REST API ---
REST_FRAMEWORK = {
    # API keys (cnk_...) first: simplejwt would reject one as a malformed token.
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "workspaces.authentication.ApiKeyAuthentication",
        "workspaces.tokens.VersionedJWTAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "core.pagination.PageNumberPagination",
    "PAGE_SIZE": 20,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["core.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "core.exceptions.api_exception_handler",
    "DEFAULT_THROTTLE_CLASSES": [
        "core.throttling.UserRateThrottle",
        "core.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env_str("API_THROTTLE_USER", "2000/min"),
        "anon": env_str("API_THROTTLE_ANON", "300/min"),
        "auth": env_str("API_THROTTLE_AUTH", "60/min"),
        "execute": env_str("API_THROTTLE_EXECUTE", "2000/min"),
        "test_run": env_str("API_THROTTLE_TEST_RUN", "10/min"),
        "webhook": env_str("API_THROTTLE_WEBHOOK", "600/min"),
    },
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    # Throttles key anonymous callers by address. X-Forwarded-For is only believed for this many proxies in
    # front of the app (0: never), or any client could pick a fresh address per request.
    "NUM_PROXIES": env_int("API_TRUSTED_PROXIES", 0),
}

# The JWT signing key is its own secret; when not given it is derived from SECRET_KEY so that rotating one
# never silently equals the other.
JWT_SIGNING_KEY = (
    env_str("JWT_SIGNING_KEY")
    or hmac.new(SECRET_KEY.encode(), b"connectors-jwt-signing-key", hashlib.sha256).hexdigest()
)

SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=15),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=7),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": False,
    "ALGORITHM": "HS256",
    "SIGNING_KEY": JWT_SIGNING_KEY,
    "AUDIENCE": "connectors-api",
    "ISSUER": "connectors",
    "AUTH_HEADER_TYPES": ("Bearer",),
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "user_id",
    "CHECK_REVOKE_TOKEN": True,
    "REVOKE_TOKEN_CLAIM": "hash_password",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Connectors API",
    "DESCRIPTION": "Define HTTP API connectors, run them in the background, audit every execution.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Two choice sets share the field name "status"; naming them keeps the schema (and check --deploy) clean.
    "ENUM_NAME_OVERRIDES": {
        "ExecutionStatusEnum": "executions.models.Status",
        "StepStatusEnum": "executions.models.StepStatus",
        "CredentialTypeEnum": "credentials.models.CredentialType",
        "TriggerTypeEnum": "triggers.models.TriggerType",
        "MemberRoleEnum": "workspaces.models.Role",
        "ApiKeyRoleEnum": [("member", "Member"), ("admin", "Admin")],
    },
}

# --- CORS and HTTPS hardening ---
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "idempotency-key",
    "prefer",
    "x-workspace-id",
)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", False)
# Probes and scrapers on the host itself call these over plain HTTP, behind the TLS proxy (docs/deployment.md).
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^metrics/?$"]
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("DJANGO_SECURE_COOKIES", False)
SECURE_HSTS_SECONDS = env_int("DJANGO_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = SECURE_HSTS_SECONDS > 0
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Credentials vault (docs/credentials.md) ---
try:
    _keys_value = env_str("CONNECTORS_ENCRYPTION_KEYS")
    if not _keys_value:
        if not DEBUG:
            parse_keys("")  # raises KeyConfigError with the how-to-generate message
        _keys_value = load_or_create_local_keys(LOCAL_DIR / "encryption.keys")
    CONNECTORS_ENCRYPTION_KEYRING = parse_keys(_keys_value)
except KeyConfigError as error:
    raise ImproperlyConfigured(str(error)) from None

# --- Execution engine ---
CONNECTORS_ALLOWED_PRIVATE_HOSTS = env_list("CONNECTORS_ALLOWED_PRIVATE_HOSTS")
CONNECTORS_USER_AGENT = "Connectors/1.0 (+https://github.com/connectors)"
CONNECTORS_MAX_RESPONSE_BYTES = 10 * 1024 * 1024
CONNECTORS_STORED_BODY_BYTES = 64 * 1024
CONNECTORS_WORKSPACE_CONCURRENCY = env_int("CONNECTORS_WORKSPACE_CONCURRENCY", 20, minimum=1)
CONNECTORS_EMBEDDED_WORKERS = env_int("CONNECTORS_EMBEDDED_WORKERS", 4, minimum=1)
# Outbound rate budget (executions.ratelimit): a request whose turn is further away than this gives its worker
# back and the execution is re-queued for that time, like a retry.
CONNECTORS_RATE_LIMIT_MAX_WAIT_SECONDS = env_int("CONNECTORS_RATE_LIMIT_MAX_WAIT_SECONDS", 2, minimum=0)
# Keep-alive connections a process keeps per target host: as many as executions it may have in flight (the
# worker pool's 200 threads), so a busy API is not reconnected to for every request.
CONNECTORS_HTTP_POOL_MAXSIZE = env_int("CONNECTORS_HTTP_POOL_MAXSIZE", 200, minimum=1)
# A running execution renews its heartbeat this often (also during a slow step); the sweeper under beat
# requeues one whose heartbeat is older than the stale window. See docs/reliability.md.
CONNECTORS_HEARTBEAT_SECONDS = env_int("CONNECTORS_HEARTBEAT_SECONDS", 10, minimum=1)
CONNECTORS_REQUEUE_STALE_AFTER_SECONDS = env_int("CONNECTORS_REQUEUE_STALE_AFTER_SECONDS", 120, minimum=1)
if CONNECTORS_REQUEUE_STALE_AFTER_SECONDS < 3 * CONNECTORS_HEARTBEAT_SECONDS:
    raise ImproperlyConfigured(
        "CONNECTORS_REQUEUE_STALE_AFTER_SECONDS must be at least 3 x CONNECTORS_HEARTBEAT_SECONDS, or live "
        "executions would be requeued."
    )

# --- Triggers, outbound webhooks, synchronous wait (docs/api.md) ---
# Scheme, host and port that webhook trigger URLs are built from; empty: those of the request.
PUBLIC_BASE_URL = env_str("PUBLIC_BASE_URL")
# The longest `Prefer: wait` honoured (at most 60); keep it below the web server's worker timeout.
CONNECTORS_MAX_WAIT_SECONDS = min(env_int("CONNECTORS_MAX_WAIT_SECONDS", 60, minimum=1), 60)
CONNECTORS_SCHEDULE_TICK_SECONDS = env_int("CONNECTORS_SCHEDULE_TICK_SECONDS", 15, minimum=1)
# Waits (seconds) before the 2nd, 3rd ... attempt of an outbound webhook delivery: 8 attempts over about 2 h.
_retry_waits = env_list("CONNECTORS_WEBHOOK_RETRY_WAITS") or ["5", "30", "120", "600", "1800", "3000", "3000"]
if not all(wait.isdigit() and int(wait) <= 3000 for wait in _retry_waits):
    raise ImproperlyConfigured(
        "CONNECTORS_WEBHOOK_RETRY_WAITS must be comma-separated whole seconds, each at most 3000."
    )
CONNECTORS_WEBHOOK_RETRY_WAITS = [int(wait) for wait in _retry_waits]

# --- Celery: no broker means embedded mode (README, Configuration) ---
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Redis redelivers a message not acknowledged within this window (a countdown message is held unacknowledged
# by a worker until it is due). It must exceed every countdown (retry waits are at most 300 s, and
# executions.dispatch caps any delay at this minus 60 s) and every task's run time (max_duration_seconds,
# at most 900 s, plus the time-limit margin), or a message would be delivered twice.
CELERY_VISIBILITY_TIMEOUT_SECONDS = 3600
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": CELERY_VISIBILITY_TIMEOUT_SECONDS}
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_IGNORE_RESULT = True
# The queue executions are sent to and workers read; deployments (or test runs) sharing one Redis use their own.
CELERY_TASK_DEFAULT_QUEUE = env_str("CELERY_QUEUE", "celery")
# Beat's record of when each periodic task last ran: in the git-ignored .local/, not the project root
# (its scheduler creates the folder when beat starts).
CELERY_BEAT_SCHEDULE_FILENAME = str(LOCAL_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULER = "config.celery:LocalFolderScheduler"
# The worker pool when `celery worker` is given no --pool: Celery's threads pool with its late acknowledgement
# delivered at once (executions.worker_pool), so an execution in flight costs a thread, not a process; 200 of
# them per worker process by default (docs/performance.md). CELERY_WORKER_POOL=prefork (a pool name Celery
# knows: its command line reads the same variable as --pool) goes back to processes; then set the
# concurrency yourself, e.g. --concurrency=8.
DEFAULT_WORKER_POOL = "executions.worker_pool:ThreadPool"
CELERY_WORKER_POOL = env_str("CELERY_WORKER_POOL", DEFAULT_WORKER_POOL)
if CELERY_WORKER_POOL == DEFAULT_WORKER_POOL:
    CELERY_WORKER_CONCURRENCY = env_int("CELERY_WORKER_CONCURRENCY", 200, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "requeue-stuck-executions": {
        "task": "executions.tasks.requeue_stuck_executions",
        "schedule": env_int("CONNECTORS_REQUEUE_INTERVAL_SECONDS", 60, minimum=5),
        "kwargs": {"stale_after": CONNECTORS_REQUEUE_STALE_AFTER_SECONDS},
        # A sweep nobody picked up in time is dropped, not piled up behind a backlog: the next one comes.
        "options": {"expires": env_int("CONNECTORS_REQUEUE_INTERVAL_SECONDS", 60, minimum=5)},
    },
    # Starts due schedule triggers; several beats (or a restarted one) still start each due time once.
    "fire-due-schedules": {
        "task": "triggers.tasks.fire_due_schedules",
        "schedule": CONNECTORS_SCHEDULE_TICK_SECONDS,
        "options": {"expires": CONNECTORS_SCHEDULE_TICK_SECONDS},
    },
    # Re-enqueues outbound webhook deliveries whose message was lost or whose worker died mid-attempt.
    "sweep-webhook-deliveries": {
        "task": "webhooks.tasks.sweep_webhook_deliveries",
        "schedule": 60,
        "options": {"expires": 60},
    },
}

# --- Operations (docs/operations.md) ---
LOG_FORMAT = env_choice("LOG_FORMAT", LOG_FORMATS, "text")
LOGGING = logging_config(log_format=LOG_FORMAT, level=env_str("LOG_LEVEL", "INFO"))
logging.captureWarnings(True)  # Python warnings become log records too (one format for every line)
# Celery keeps Django's logging (so LOG_FORMAT=json holds in workers and beat too).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

METRICS_TOKEN = env_str("METRICS_TOKEN")
# prometheus-client's multiprocess mode: every process of this host (gunicorn workers, Celery workers) adds to
# its own files here and /metrics sums them. It must be set before prometheus_client is first imported, and
# shared by the processes of one host. See docs/operations.md.
PROMETHEUS_MULTIPROC_DIR = env_str("PROMETHEUS_MULTIPROC_DIR") or str(LOCAL_DIR / "metrics")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = PROMETHEUS_MULTIPROC_DIR
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)

# Finished executions older than this are deleted daily by beat; 0 keeps everything.
EXECUTION_RETENTION_DAYS = env_int("EXECUTION_RETENTION_DAYS", 30, minimum=0)
CELERY_BEAT_SCHEDULE["prune-old-executions"] = {
    "task": "executions.tasks.prune_old_executions",
    "schedule": env_int("EXECUTION_RETENTION_INTERVAL_SECONDS", 24 * 3600, minimum=1),
    "options": {"expires": 3600},
}

# Failure alerts: plain SMTP through EMAIL_HOST:EMAIL_PORT when a host is set, else the console.
EMAIL_HOST = env_str("EMAIL_HOST")
EMAIL_PORT = env_int("EMAIL_PORT", 25, minimum=1)
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend" if EMAIL_HOST else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_TIMEOUT = 10
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Connectors <connectors@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
