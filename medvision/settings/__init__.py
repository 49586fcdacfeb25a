"""MedVision settings: one module, configured from the environment only.

Profiles follow from what is set:
- embedded (nothing set): SQLite under ``var/``, in-memory channel layer, Celery on an
  in-process broker with a worker thread inside the web process, demo analyzer;
- services: ``DATABASE_URL=postgres://...`` and ``REDIS_URL=redis://...`` -> PostgreSQL,
  channels-redis, Celery on Redis with separate worker processes.
Safe by default: ``DEBUG`` is off unless asked for (the run script asks), there is no
built-in secret key (the embedded profile generates one per installation under ``var/``;
a services-profile process refuses to start without ``SECRET_KEY``), and a deployment
(services profile, DEBUG off) gets secure cookies, HSTS and the HTTPS redirect
(``manage.py check --deploy`` is clean). Every variable is documented in ``.env.example``.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

from .. import notices
from .environment import StrictEnv, installation_secret_key

BASE_DIR = Path(__file__).resolve().parent.parent.parent
env = StrictEnv()

# --- core -------------------------------------------------------------------------------
# Off unless asked for: a debug page shows settings (database and broker URLs with their
# passwords) to whoever triggers an error. scripts/run.sh asks for it.
DEBUG = env.bool("DEBUG", default=False)
VAR_DIR = Path(env.str("VAR_DIR", default=str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)
REDIS_URL = env.url_or_empty("REDIS_URL", schemes=("redis", "rediss", "unix"))
# Embedded: one local process (SQLite, in-memory layers). Services: a deployment's processes.
EMBEDDED = not REDIS_URL
# A deployment: the services profile with DEBUG off. It gets the HTTPS settings below.
DEPLOYED = not DEBUG and not EMBEDDED

SECRET_KEY = env.secret("SECRET_KEY")
if not SECRET_KEY:
    if not EMBEDDED:
        raise ImproperlyConfigured(
            "SECRET_KEY (or SECRET_KEY_FILE) must be set in the services profile (REDIS_URL is set); every "
            "web and worker process needs the same one. Generate one with: "
            "python -c 'import secrets; print(secrets.token_urlsafe(64))'"
        )
    SECRET_KEY = installation_secret_key(VAR_DIR / "secret_key")
elif not DEBUG and (len(SECRET_KEY) < 50 or len(set(SECRET_KEY)) < 5):
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 random characters when DEBUG is false.")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[] if DEPLOYED else ["localhost", "127.0.0.1", "[::1]"])
if DEPLOYED and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS must list this server's host names when DEBUG is false.")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
CSRF_FAILURE_VIEW = "medvision.api_errors.csrf_failure"  # JSON under /api/

INSTALLED_APPS = [
    "daphne",  # before staticfiles: its runserver serves ASGI (HTTP + WebSockets)
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "channels",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI's files served by us: the docs page loads no CDN
    "auditlog",
    "axes",
    "medvision",
    "procedures",
    "analysis",
    "voice",
    "reporting",
    "exports",
    "portal",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "medvision.api_errors.SitePageNotFoundMiddleware",  # the site's 404 page with DEBUG on too
    "medvision.audit.AuditMiddleware",  # auditlog's, trusting X-Forwarded-For only from TRUSTED_PROXIES
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "medvision.urls"
ASGI_APPLICATION = "medvision.asgi.application"
WSGI_APPLICATION = "medvision.wsgi.application"

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
                "medvision.context_processors.product",
            ],
        },
    },
]

# --- database ---------------------------------------------------------------------------
DATABASE_URL = env.url_or_empty("DATABASE_URL", schemes=("postgres", "postgresql", "pgsql", "sqlite"))
if DATABASE_URL:
    DATABASES = {"default": env.db_url_config(DATABASE_URL)}
else:
    DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": VAR_DIR / "medvision.sqlite3"}}
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Also when SQLite comes from DATABASE_URL=sqlite:///... (test servers use that): the
    # worker threads write while requests read. IMMEDIATE transactions take the write lock
    # up front and wait for it (timeout, s); a deferred one that reads first and then
    # writes fails at once with "database is locked" when another thread wrote meanwhile.
    # WAL lets pages read while the worker writes.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE",
                                       "init_command": "PRAGMA journal_mode=WAL;",
                                       **DATABASES["default"].get("OPTIONS", {})}
    # Tests use a file too: an in-memory shared-cache database fails at once with
    # "table is locked" where a file waits, so threads would behave unlike production.
    # Per process, so that two test runs on one machine never share (and delete) it.
    DATABASES["default"].setdefault("TEST", {"NAME": str(VAR_DIR / f"test-medvision-{os.getpid()}.sqlite3")})
if DATABASES["default"]["ENGINE"].endswith("postgresql"):
    DATABASES["default"].setdefault("TEST", {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"})
    # A connection pool per process (psycopg_pool, Django's "pool" option): opening a
    # PostgreSQL connection costs milliseconds, and without a pool every live frame's
    # database work in the web process and the worker's loop would pay it (the live load
    # test measured ~55 ms of added latency per frame). Under ASGI a pool is the safe way to
    # reuse connections (persistent ones pile up per thread; Django's docs advise against
    # them in async deployments), so DB_CONN_MAX_AGE stays 0. DB_POOL=false turns it off.
    if env.bool("DB_POOL", default=True):
        DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
            "min_size": env.int("DB_POOL_MIN_SIZE", default=1, minimum=0),
            "max_size": env.int("DB_POOL_MAX_SIZE", default=10, minimum=1),
            "timeout": env.float("DB_POOL_TIMEOUT_S", default=10.0, minimum=0.1),
        }
        DATABASES["default"]["CONN_MAX_AGE"] = 0
    else:
        DATABASES["default"].setdefault("CONN_MAX_AGE", env.int("DB_CONN_MAX_AGE", default=0, minimum=0))
        DATABASES["default"].setdefault("CONN_HEALTH_CHECKS", True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- redis: channel layer + celery broker ------------------------------------------------
if EMBEDDED:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
else:
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [REDIS_URL], "prefix": env.str("CHANNELS_PREFIX", default="medvision")},
        }
    }

# The cache holds shared counters: API throttles and the live frame-rate limit. On Redis
# they hold across every web process; embedded there is one process, so memory will do.
if EMBEDDED:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "medvision"}}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="medvision-cache"),
        }
    }

CELERY_BROKER_URL = "memory://" if EMBEDDED else REDIS_URL
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# analyze_* need the model (gpu queue); everything else -- process_video, summarise_video,
# make_playback_copy -- is CPU work on the default queue.
CELERY_TASK_ROUTES = {"analysis.tasks.analyze_*": {"queue": "gpu"}}
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis redelivers an unacked task after the visibility timeout; long enough for a batch.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env.int("CELERY_VISIBILITY_TIMEOUT_S", default=3600, minimum=60)}
# In the embedded profile a worker thread runs inside the web process (see medvision.embedded_worker).
CELERY_EMBEDDED_WORKER = env.bool("CELERY_EMBEDDED_WORKER", default=EMBEDDED)

# --- auth -------------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "procedures:list"
LOGOUT_REDIRECT_URL = "login"
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = env.float("AXES_COOLOFF_HOURS", default=0.25, minimum=0)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE_S", default=12 * 3600, minimum=300)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"

# --- production hardening (a deployment, or HTTPS_ONLY=true) --------------------------
# The embedded profile is a single local process on plain HTTP unless asked otherwise.
HTTPS_ONLY = env.bool("HTTPS_ONLY", default=DEPLOYED)
if HTTPS_ONLY:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env.bool("USE_X_FORWARDED_PROTO", default=False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- i18n, static, media ----------------------------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        # A deployment serves the collected, hashed files (collectstatic once per release);
        # a local process serves static/ as it is.
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if DEPLOYED
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = not DEPLOYED
WHITENOISE_AUTOREFRESH = DEBUG
# Media holds clinical images and videos: never served publicly, only through views that
# check access (there is deliberately no MEDIA_URL route).
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", default=str(VAR_DIR / "media")))
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700

# --- REST API ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # JSON in (the upload and the token endpoint name their own parsers): form-encoded
    # bodies have looser rules for empty values than the schema promises.
    "DEFAULT_PARSER_CLASSES": ["medvision.safe_json.SafeJSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env.int("API_PAGE_SIZE", default=50, minimum=1, maximum=500),
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "medvision.api_schema.DocumentedErrorsSchema",
    "DEFAULT_THROTTLE_CLASSES": [
        "rest_framework.throttling.UserRateThrottle",
        "rest_framework.throttling.AnonRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "user": env.str("API_THROTTLE_USER", default="600/min"),
        "anon": env.str("API_THROTTLE_ANON", default="30/min"),
        # Resumable-upload requests (one PATCH per TUS_MAX_CHUNK_BYTES): a 4 GB file is ~256.
        "upload": env.str("API_THROTTLE_UPLOAD", default="3000/min"),
    },
    "EXCEPTION_HANDLER": "medvision.api_errors.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "MedVision API",
    "DESCRIPTION": (
        "Procedure sessions, AI-proposed findings and signed reports for EHR connectors. "
        + notices.AI_DISCLAIMER
    ),
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {
        "SessionStatusEnum": "procedures.models.SessionStatus",
        "ReviewStatusEnum": "analysis.models.ReviewStatus",
        "ReviewDecisionEnum": ["confirmed", "rejected", "edited"],
    },
}

# --- audit ------------------------------------------------------------------------------
AUDITLOG_INCLUDE_ALL_MODELS = False
AUDITLOG_STORE_JSON_CHANGES = True
AUDITLOG_DISABLE_REMOTE_ADDR = False
# Proxies (addresses or networks) whose X-Forwarded-For is believed for the audit trail's
# client address; from anyone else the header is ignored.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])
for _proxy in TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"TRUSTED_PROXIES must list IP addresses or networks; got {_proxy!r}.") from None

# --- analyzer ---------------------------------------------------------------------------
ANALYZER_BACKEND = env.choice("ANALYZER_BACKEND", {"demo", "transformers", "openai_compatible"}, default="demo")
MEDGEMMA_MODEL = env.str("MEDGEMMA_MODEL", default="google/medgemma-4b-it")
MEDGEMMA_REVISION = env.str("MEDGEMMA_REVISION", default="") or None
DEMO_MODEL_DIR = Path(env.str("DEMO_MODEL_DIR", default=str(VAR_DIR / "models" / "demo-gemma3")))
ANALYZER_DEVICE = env.choice("ANALYZER_DEVICE", {"auto", "cpu", "cuda"}, default="auto")
ANALYZER_BATCH_SIZE = env.int("ANALYZER_BATCH_SIZE", default=4, minimum=1, maximum=64)
# The GPU scheduler (analysis.scheduler): a claim older than the lease is a dead worker's and
# is given back; a loop hands its worker back after the slice so voice questions get a turn.
GPU_CLAIM_LEASE_S = env.float("GPU_CLAIM_LEASE_S", default=60.0, minimum=5.0)
GPU_SCHEDULER_SLICE_S = env.float("GPU_SCHEDULER_SLICE_S", default=2.0, minimum=0.1)
# How long an idle loop keeps watching for the next live frame before its task ends (a room
# at 3 fps sends one every 333 ms): the next frame skips the broker round trip.
GPU_SCHEDULER_LINGER_S = env.float("GPU_SCHEDULER_LINGER_S", default=1.0, minimum=0.0)
# With a step-wise engine (the fast one), frames join the rows in flight between decoding
# steps; false: one batch per call, as with the other engines.
GPU_SCHEDULER_STEPWISE = env.bool("GPU_SCHEDULER_STEPWISE", default=True)
ANALYZER_TIMEOUT_S = env.float("ANALYZER_TIMEOUT_S", default=60.0, minimum=0.1)
ANALYZER_MAX_RETRIES = env.int("ANALYZER_MAX_RETRIES", default=2, minimum=0, maximum=10)
# The local decode loop: fast (engine/fast) or reference (Hugging Face generate); auto = fast
# wherever the model is one it reproduces (MedGemma / the demo model), reference otherwise.
ANALYZER_ENGINE = env.choice("ANALYZER_ENGINE", {"auto", "fast", "reference"}, default="auto")
ANALYZER_JUMP_FORWARD = env.bool("ANALYZER_JUMP_FORWARD", default=True)
ANALYZER_CUDA_GRAPHS = env.bool("ANALYZER_CUDA_GRAPHS", default=True)
ANALYZER_PREFIX_CACHE = env.bool("ANALYZER_PREFIX_CACHE", default=True)
# 0 = the model's sliding window (1024 for MedGemma).
ANALYZER_CONTEXT_TOKENS = env.int("ANALYZER_CONTEXT_TOKENS", default=0, minimum=0, maximum=131072)
# Load the model, compile grammars and capture CUDA graphs when a gpu-queue worker starts.
ANALYZER_WARM_UP = env.bool("ANALYZER_WARM_UP", default=True)
ANALYZER_GRAMMAR_CACHE_DIR = Path(env.str("ANALYZER_GRAMMAR_CACHE_DIR", default=str(VAR_DIR / "cache" / "grammars")))
OPENAI_COMPATIBLE_BASE_URL = env.url_or_empty("OPENAI_COMPATIBLE_BASE_URL", schemes=("http", "https"))
OPENAI_COMPATIBLE_API_KEY = env.secret("OPENAI_COMPATIBLE_API_KEY")
OPENAI_COMPATIBLE_MODEL = env.str("OPENAI_COMPATIBLE_MODEL", default="google/medgemma-4b-it")
if ANALYZER_BACKEND == "openai_compatible" and not OPENAI_COMPATIBLE_BASE_URL:
    raise ImproperlyConfigured("ANALYZER_BACKEND=openai_compatible needs OPENAI_COMPATIBLE_BASE_URL.")

# --- recorded video pipeline -----------------------------------------------------------
# ffmpeg/ffprobe: empty = the ones on PATH, else the imageio-ffmpeg wheel's ffmpeg (which
# ships no ffprobe). FFPROBE_BINARY=none probes with ffmpeg alone even when ffprobe exists.
FFMPEG_BINARY = env.executable_or_empty("FFMPEG_BINARY")
FFPROBE_BINARY = env.executable_or_empty("FFPROBE_BINARY", allowed_words=("none",))
VIDEO_MAX_UPLOAD_BYTES = env.int("VIDEO_MAX_UPLOAD_BYTES", default=4 * 1024**3, minimum=1024)
# The single-request (multipart) upload is for short clips: daphne holds a request body in
# memory (~10x its size at peak, benchmarks/README.md), so anything larger goes through the
# resumable upload, which stays flat whatever the size.
VIDEO_SINGLE_REQUEST_MAX_BYTES = env.int("VIDEO_SINGLE_REQUEST_MAX_BYTES", default=64 * 1024**2, minimum=1024)
# Resumable (tus 1.0) uploads, analysis.uploads: each PATCH carries at most this much (the
# route's body limit; daphne holds a request body in memory, so this bounds the web
# process's memory per upload), unfinished uploads expire after TUS_UPLOAD_EXPIRY_HOURS.
TUS_MAX_CHUNK_BYTES = env.int("TUS_MAX_CHUNK_BYTES", default=16 * 1024**2, minimum=64 * 1024, maximum=256 * 1024**2)
TUS_UPLOAD_EXPIRY_HOURS = env.float("TUS_UPLOAD_EXPIRY_HOURS", default=24, minimum=0.01)
TUS_MAX_OPEN_UPLOADS_PER_USER = env.int("TUS_MAX_OPEN_UPLOADS_PER_USER", default=4, minimum=1)
# What the session page's client sends per PATCH (at most TUS_MAX_CHUNK_BYTES).
TUS_BROWSER_CHUNK_BYTES = env.int("TUS_BROWSER_CHUNK_BYTES", default=8 * 1024**2, minimum=64 * 1024)
UPLOAD_BUSY_RETRY_S = env.int("UPLOAD_BUSY_RETRY_S", default=30, minimum=1)
VIDEO_MAX_WIDTH = env.int("VIDEO_MAX_WIDTH", default=4096, minimum=16)
VIDEO_MAX_HEIGHT = env.int("VIDEO_MAX_HEIGHT", default=4096, minimum=16)
VIDEO_MAX_DURATION_S = env.float("VIDEO_MAX_DURATION_S", default=6 * 3600, minimum=1)
# One frame per interval plus scene changes (ffmpeg's scene score, 0..1; 0 disables).
SAMPLING_INTERVAL_S = env.float("SAMPLING_INTERVAL_S", default=1.0, minimum=0.05)
SAMPLING_SCENE_THRESHOLD = env.float("SAMPLING_SCENE_THRESHOLD", default=0.3, minimum=0, maximum=1)
# Scene-change frames beyond this many per minute of video are dropped (interval frames stay).
SAMPLING_MAX_FRAMES_PER_MINUTE = env.int("SAMPLING_MAX_FRAMES_PER_MINUTE", default=120, minimum=1, maximum=3600)
# Seconds sampling one recording may take; 0 = 60 s + half its duration.
VIDEO_SAMPLING_BUDGET_S = env.float("VIDEO_SAMPLING_BUDGET_S", default=0, minimum=0)
# Frames are decoded straight at the analyzer's input size (MedGemma's SigLIP sees 896 px).
SAMPLING_MAX_SIDE = env.int("SAMPLING_MAX_SIDE", default=896, minimum=64, maximum=4096)
# Playable copies (analysis.playback): a recording browsers cannot play (MPEG-2, MJPEG,
# MPEG-4 Part 2, HEVC, anything interlaced) gets an H.264 MP4 copy on the CPU queue, at most
# this many lines high; stopped after PLAYBACK_COPY_TIMEOUT_S (keep it under the broker's
# visibility timeout, or a long copy is redelivered). x264 preset and CRF (lower = better).
PLAYBACK_COPY_ENABLED = env.bool("PLAYBACK_COPY_ENABLED", default=True)
PLAYBACK_COPY_MAX_HEIGHT = env.int("PLAYBACK_COPY_MAX_HEIGHT", default=720, minimum=144, maximum=2160)
PLAYBACK_COPY_TIMEOUT_S = env.float("PLAYBACK_COPY_TIMEOUT_S", default=3000, minimum=10)
PLAYBACK_COPY_PRESET = env.choice("PLAYBACK_COPY_PRESET", ("ultrafast", "superfast", "veryfast", "faster", "fast",
                                                           "medium", "slow"), default="veryfast")
PLAYBACK_COPY_CRF = env.int("PLAYBACK_COPY_CRF", default=23, minimum=0, maximum=51)
QUALITY_MIN_BLUR_SCORE = env.float("QUALITY_MIN_BLUR_SCORE", default=40.0, minimum=0)
QUALITY_MAX_DARK_FRACTION = env.float("QUALITY_MAX_DARK_FRACTION", default=0.85, minimum=0, maximum=1)
QUALITY_MAX_BRIGHT_FRACTION = env.float("QUALITY_MAX_BRIGHT_FRACTION", default=0.40, minimum=0, maximum=1)
# Perceptual-hash Hamming distance at or below which a frame repeats a recent kept one.
DEDUP_MAX_DISTANCE = env.int("DEDUP_MAX_DISTANCE", default=6, minimum=0, maximum=64)
DEDUP_WINDOW = env.int("DEDUP_WINDOW", default=8, minimum=0, maximum=1000)  # 0: keep duplicates
# Consecutive frames with the same finding merge unless this much time passes between them.
FINDING_MERGE_MAX_GAP_MS = env.int("FINDING_MERGE_MAX_GAP_MS", default=5000, minimum=0)
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024**2  # larger uploads stream to a temporary file
# Largest request body anywhere but the recording upload (VIDEO_MAX_UPLOAD_BYTES), refused
# with a 413 before it is read (medvision.body_limits).
REQUEST_MAX_BODY_BYTES = env.int("REQUEST_MAX_BODY_BYTES", default=1024**2, minimum=16 * 1024)

# --- live frames -----------------------------------------------------------------------
LIVE_FRAME_MAX_BYTES = env.int("LIVE_FRAME_MAX_BYTES", default=2 * 1024**2, minimum=1024)
LIVE_FRAME_MAX_SIDE = env.int("LIVE_FRAME_MAX_SIDE", default=2048, minimum=64, maximum=8192)
LIVE_FRAME_MIN_SIDE = env.int("LIVE_FRAME_MIN_SIDE", default=32, minimum=1)
# Frames per second one session may send (all its sockets, on every web process, together).
LIVE_MAX_FPS = env.float("LIVE_MAX_FPS", default=10.0, minimum=0.1)
# Findings sent to a page when it (re)connects, so it catches up on what it missed.
LIVE_SNAPSHOT_MAX = env.int("LIVE_SNAPSHOT_MAX", default=500, minimum=1)

# --- voice copilot (OpenAI Realtime relay) ---------------------------------------------
# The key stays on the server: browsers talk to our relay, the relay talks to OpenAI.
# Unset: the voice panel says the copilot is not configured; everything else works.
OPENAI_API_KEY = env.secret("OPENAI_API_KEY")
OPENAI_REALTIME_MODEL = env.str("OPENAI_REALTIME_MODEL", default="gpt-realtime")
# The Realtime WebSocket base (the relay appends /realtime?model=...). Empty: OpenAI's own
# (wss://api.openai.com/v1). For proxies and tests, e.g. ws://127.0.0.1:8765/v1.
OPENAI_REALTIME_BASE_URL = env.url_or_empty("OPENAI_REALTIME_BASE_URL", schemes=("ws", "wss", "http", "https"))
OPENAI_REALTIME_VOICE = env.str("OPENAI_REALTIME_VOICE", default="marin")
OPENAI_REALTIME_TRANSCRIPTION_MODEL = env.str("OPENAI_REALTIME_TRANSCRIPTION_MODEL", default="gpt-4o-mini-transcribe")
# Largest binary audio message a browser may send (PCM16 24 kHz mono: 48000 bytes = 1 s).
VOICE_MAX_AUDIO_CHUNK_BYTES = env.int("VOICE_MAX_AUDIO_CHUNK_BYTES", default=48000, minimum=480, maximum=1024**2)
# The largest WebSocket message the server accepts: a live frame (or a voice chunk) plus
# room for the app to refuse a somewhat larger one with an error instead of the server
# dropping the socket. Used by ``python -m medvision.serve`` and ``manage.py runserver``.
WEBSOCKET_MAX_MESSAGE_BYTES = max(LIVE_FRAME_MAX_BYTES + 8, VOICE_MAX_AUDIO_CHUNK_BYTES) + 256 * 1024
DAPHNE_WEBSOCKET_MAX_MESSAGE_SIZE = WEBSOCKET_MAX_MESSAGE_BYTES
DAPHNE_WEBSOCKET_MAX_FRAME_SIZE = WEBSOCKET_MAX_MESSAGE_BYTES
# Microphone audio arrives in real time; a client sending much faster than that is broken
# or abusive (and every byte is paid for upstream). Average allowed, as a multiple of real
# time (PCM16 24 kHz mono = 48000 bytes/s), with bursts of up to 2 s of audio. 0 = no
# limit (the relay benchmark measures the relay's own capacity with it).
VOICE_AUDIO_MAX_REALTIME_FACTOR = env.float("VOICE_AUDIO_MAX_REALTIME_FACTOR", default=2.0, minimum=0.0, maximum=20.0)
if 0 < VOICE_AUDIO_MAX_REALTIME_FACTOR < 1:
    raise ImproperlyConfigured("VOICE_AUDIO_MAX_REALTIME_FACTOR must be 0 (no limit) or at least 1 (real time); "
                               f"got {VOICE_AUDIO_MAX_REALTIME_FACTOR:g}, which would drop live speech.")
# New-finding notes kept in the model's conversation; older ones are deleted upstream
# (the assistant still reaches every finding through its list_findings tool). 0: no notes.
VOICE_HISTORY_FINDINGS = env.int("VOICE_HISTORY_FINDINGS", default=20, minimum=0, maximum=500)
# Entries (utterances and tool calls) one conversation may hold; reaching it ends the
# conversation with a message (a looping upstream must not fill the database).
VOICE_MAX_UTTERANCES = env.int("VOICE_MAX_UTTERANCES", default=2000, minimum=10, maximum=100000)

# --- logging ----------------------------------------------------------------------------
LOG_LEVEL = env.choice("LOG_LEVEL", {"DEBUG", "INFO", "WARNING", "ERROR"}, default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"axes": {"level": "WARNING"}},
}

for _dir in (VAR_DIR, STATIC_ROOT):
    _dir.mkdir(parents=True, exist_ok=True)
