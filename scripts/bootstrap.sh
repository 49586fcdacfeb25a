#!/usr/bin/env bash
# Create (or reuse) the virtualenv for this checkout and link it as .venv.
#
# The environment is cached outside the checkout, keyed by a hash of the requirements
# files, so a fresh clone (CI) reuses it in seconds and a requirements change builds a new
# one. Everything the project needs comes from pip, ffmpeg included (the imageio-ffmpeg
# wheel ships a static binary).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
  echo "MedVision needs Python 3.11 or newer as '$PYTHON' (set PYTHON=/path/to/python3.11)." >&2
  exit 1
fi

hash=$(cat requirements.txt requirements-dev.txt | "$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(sys.stdin.buffer.read()).hexdigest()[:16])')
cache=${MEDVISION_CACHE:-$HOME/.cache/medvision}
venv="$cache/venv-$hash"

if [ ! -f "$venv/.complete" ]; then
  echo "==> Building virtualenv $venv (first run for these requirements; a few minutes)"
  rm -rf "$venv"
  mkdir -p "$cache"
  "$PYTHON" -m venv "$venv"
  # (This machine's pip configuration names local indexes that may not exist; their
  # "Location ... is ignored" warnings are noise, so they are filtered out.)
  # With pipefail the pipeline fails exactly when pip does.
  quiet_pip() { "$venv/bin/python" -m pip "$@" 2>&1 | { grep -v "^WARNING: Location '.*' is ignored" || true; }; }
  quiet_pip install --quiet --upgrade pip
  quiet_pip install --quiet -r requirements-dev.txt
  touch "$venv/.complete"
fi
ln -sfn "$venv" .venv
echo "==> Using virtualenv .venv -> $venv"
