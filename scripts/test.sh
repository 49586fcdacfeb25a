#!/usr/bin/env bash
# Set up and run the whole test suite twice: in the embedded profile (SQLite, in-memory
# layers) and in the services profile (PostgreSQL + Redis on 127.0.0.1).
#
# Outside CI, an unreachable PostgreSQL/Redis skips the services run with a warning.
# With CI=true it is a failure: CI must prove both profiles.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
PY=.venv/bin/python
PG_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/medvision}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

# Browser tests drive Debian's Chromium (never a browser downloaded by a tool). Debian's
# ffmpeg brings ffprobe, so both video header readers are tested (the app itself needs
# neither package: the imageio-ffmpeg wheel's ffmpeg is enough to run it).
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v ffprobe >/dev/null 2>&1 || missing+=(ffmpeg)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian packages for the tests: ${missing[*]}"
    # Another apt process (an unattended upgrade, a parallel job) may hold the dpkg lock:
    # wait for it instead of failing the run.
    APT=(apt-get -o DPkg::Lock::Timeout=600 -o Acquire::Retries=3)
    "${APT[@]}" update -qq && DEBIAN_FRONTEND=noninteractive "${APT[@]}" install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "WARNING: not installed: ${missing[*]}; browser / ffprobe tests will skip (browser tests fail under CI=true)." >&2
  fi
fi

unset DATABASE_URL REDIS_URL
echo "==> [1/2] embedded profile (SQLite, in-memory channel layer and broker; ffmpeg and ffprobe from PATH)"
$PY -m pytest "$@"

services_up() {
  $PY - "$PG_URL" "$REDIS" <<'PYEOF'
import sys
import psycopg, redis
pg, rd = sys.argv[1], sys.argv[2]
try:
    psycopg.connect(pg.rsplit("/", 1)[0] + "/postgres", connect_timeout=3).close()
except Exception as exc:
    sys.exit(f"PostgreSQL unreachable at {pg}: {exc}")
try:
    redis.Redis.from_url(rd, socket_timeout=3).ping()
except Exception as exc:
    sys.exit(f"Redis unreachable at {rd}: {exc}")
PYEOF
}

if ! services_up; then
  if [ "${CI:-}" = "true" ]; then
    echo "CI=true: the services profile must run; start PostgreSQL and Redis." >&2
    exit 1
  fi
  echo "WARNING: services profile skipped (PostgreSQL/Redis not reachable)." >&2
  exit 0
fi
# The second run also uses the other ffmpeg: the imageio-ffmpeg wheel's static build, with
# no ffprobe, which is what a plain `pip install` deployment runs.
WHEEL_FFMPEG=$($PY -c "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())")
echo "==> [2/2] services profile (PostgreSQL + Redis; the imageio-ffmpeg wheel's ffmpeg, no ffprobe)"
# A services-profile process needs a secret key (there is no built-in one) and, with DEBUG
# off, would be a deployment (HTTPS redirect): the test run is neither, so it says so.
DATABASE_URL=$PG_URL REDIS_URL=$REDIS MEDVISION_PROFILE_UNDER_TEST=services DEBUG=true \
  SECRET_KEY=${TEST_SECRET_KEY:-$($PY -c 'import secrets; print(secrets.token_urlsafe(64))')} \
  FFMPEG_BINARY=$WHEEL_FFMPEG FFPROBE_BINARY=none $PY -m pytest "$@"
