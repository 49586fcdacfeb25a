#!/usr/bin/env bash
# Set everything up and start MedVision in the embedded profile at http://localhost:8000:
# SQLite under var/, in-memory channel layer, Celery worker inside the web process, demo
# model (built offline on first run). Prints the demo accounts' passwords.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
export DEBUG=${DEBUG:-true}
export TQDM_DISABLE=1  # no progress bars from the demo model build and load
PY=.venv/bin/python
$PY manage.py migrate --noinput
$PY manage.py build_demo_model
$PY manage.py create_demo_users
echo "==> MedVision at http://localhost:${PORT:-8000}  (Ctrl-C to stop)"
exec $PY manage.py runserver "127.0.0.1:${PORT:-8000}"
