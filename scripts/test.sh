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

# Browser tests drive Debian's Chromium (never a browser downloaded by a tool).
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "==> installing Debian's chromium for the browser tests"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "WARNING: chromium is not installed; browser tests will skip (and fail under CI=true)." >&2
  fi
fi

unset DATABASE_URL REDIS_URL
echo "==> [1/2] embedded profile (SQLite, in-memory channel layer and broker)"
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
echo "==> [2/2] services profile (PostgreSQL + Redis)"
DATABASE_URL=$PG_URL REDIS_URL=$REDIS MEDVISION_PROFILE_UNDER_TEST=services $PY -m pytest "$@"
