#!/usr/bin/env bash
# Sets up and runs the whole test suite: unit tests, end-to-end tests on the real stack (a trained
# model, rasa run with our channel, the action server, the gateway) and browser tests in Chromium.
# Installs what the tests need when it can (root on Debian); a missing service fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    printf '\n==> Installing %s from Debian\n' "${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    echo "error: the browser tests need Chromium: install it (Debian/Ubuntu: sudo apt-get install chromium)" >&2
    exit 1
  fi
fi

# PostgreSQL, Redis and nginx on loopback for the production-mode tests (installed and started
# when missing; a service that cannot be started fails the run).
eval "$(scripts/services.sh)"

printf '\n==> Lint and types (make check)\n'
.venv/bin/ruff check handoff_channel tests bot/actions
.venv/bin/mypy handoff_channel

# The conversation designers' checks: training data validation and Rasa's test stories.
printf '\n==> make validate test-bot\n'
make --no-print-directory validate test-bot

# Trigger quality on the labelled utterances (trains the fast model the tests share, cached): fails
# when explicit requests' recall < 0.95, safety recall < 1.0 or > 2 % of routine messages hand off.
printf '\n==> make eval-triggers\n'
make --no-print-directory eval-triggers

printf '\n==> Running the tests (the first run trains a small model, ~1 min)\n'
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ $rc -eq 5 ]; then
  echo "error: no test was collected" >&2
  exit 1
fi
exit $rc
