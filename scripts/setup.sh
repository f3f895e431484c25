#!/usr/bin/env bash
# Sets up everything the product needs, idempotently: a Python 3.10 venv with pinned dependencies
# and the npm packages the web pages serve (rasa-webchat, pinned by package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

step() { printf '\n==> %s\n' "$*"; }

if [ ! -x "$VENV/bin/python" ]; then
  PY=$(scripts/find_python.sh)
  step "Creating $VENV with $PY"
  "$PY" -m venv "$VENV"
fi

stamp="$VENV/.requirements.sha"
want=$(cat requirements.txt requirements-dev.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  step "Installing Python dependencies (Rasa 3.6: 1-2 minutes the first time)"
  "$VENV/bin/pip" install --disable-pip-version-check --progress-bar off -q -r requirements-dev.txt
  echo "$want" > "$stamp"
fi

if [ -f inbox_ui/package.json ]; then
  lockstamp="inbox_ui/node_modules/.lock.sha"
  want=$(sha256sum inbox_ui/package-lock.json | cut -d' ' -f1)
  if [ "$(cat "$lockstamp" 2>/dev/null)" != "$want" ]; then
    command -v npm >/dev/null || { echo "error: npm (Node.js 18+) is needed for the web pages" >&2; exit 1; }
    step "Installing web packages from npm (pinned by inbox_ui/package-lock.json)"
    (cd inbox_ui && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
    echo "$want" > "$lockstamp"
  fi
fi
step "Setup complete"
