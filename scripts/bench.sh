#!/usr/bin/env bash
# `make bench`: measures the product against the floor and Rasa's stock socket.io channel on
# loopback, prints a table, and writes docs/benchmarks.md with plots in docs/bench/.
#   scripts/bench.sh           the full run (~15-20 min on 2 cores; the first run also trains the
#                              production model, a few minutes more)
#   scripts/bench.sh --quick   a smoke run (< 3 min once the fast model is trained): checks the
#                              harness end to end; writes its report under .cache/bench/, not docs/
#   scripts/bench.sh -- ARGS   the full run with more bench.run options, e.g. `-- --baseline REF`
#                              (also measures handoff_channel/ as at REF: an A/B in the report)
# Everything it starts listens on 127.0.0.1, on free ports, and is stopped when it ends.
# The scale-out phase (two gateways on PostgreSQL + Redis behind nginx) runs in the full run, with
# the services scripts/services.sh provides; in --quick only when HANDOFF_TEST_PG_URL and
# HANDOFF_TEST_REDIS_URL are already set and nginx is installed.
set -euo pipefail
cd "$(dirname "$0")/.."

QUICK=""
EXTRA=()
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) QUICK="--quick" ;;
    --) shift; EXTRA=("$@"); break ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "usage: scripts/bench.sh [--quick] [-- bench.run options, e.g. --baseline REF]" >&2; exit 2 ;;
  esac
  shift
done

step() { printf '\n==> %s\n' "$*"; }

scripts/setup.sh >/dev/null

CACHE=.cache/bench
BENCH_VENV=$CACHE/venv
OVERLAY=$CACHE/sio59
mkdir -p "$CACHE"

# The client venv: python-socketio's asyncio client needs aiohttp >= 3.10 for the websocket
# transport, which Rasa's pins forbid in .venv. py-spy samples the gateway for the profile.
client_reqs='python-socketio==5.18.1 python-engineio==4.15.1 aiohttp>=3.10,<4 uvloop>=0.19 matplotlib>=3.8,<4 py-spy>=0.3.14'
stamp="$BENCH_VENV/.requirements"
if [ ! -x "$BENCH_VENV/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$client_reqs" ]; then
  step "Creating the benchmark client venv ($BENCH_VENV)"
  PY=$(scripts/find_python.sh)
  "$PY" -m venv "$BENCH_VENV"
  # shellcheck disable=SC2086
  "$BENCH_VENV/bin/pip" install --disable-pip-version-check --progress-bar off -q $client_reqs
  echo "$client_reqs" > "$stamp"
fi

# Rasa's stock socket.io channel delivers replies only with python-socketio <= 5.9: overlay it on
# the stock Rasa's PYTHONPATH (the project venv is left as it is).
if [ ! -f "$OVERLAY/socketio/__init__.py" ]; then
  step "Fetching python-socketio 5.9.0 for the stock-channel comparison ($OVERLAY)"
  .venv/bin/pip install --disable-pip-version-check --progress-bar off -q --no-deps --target "$OVERLAY" \
    python-socketio==5.9.0 python-engineio==4.7.1
fi

SCALE=""
if [ -z "$QUICK" ]; then
  if services=$(scripts/services.sh); then
    eval "$services"
    SCALE="--scale-out"
  else
    echo "note: no PostgreSQL/Redis/nginx (scripts/services.sh failed): the scale-out phase is skipped" >&2
  fi
elif [ -n "${HANDOFF_TEST_PG_URL:-}" ] && [ -n "${HANDOFF_TEST_REDIS_URL:-}" ] && { command -v nginx >/dev/null || [ -x /usr/sbin/nginx ]; }; then
  SCALE="--scale-out"
fi

run_dir=$CACHE/last${QUICK:+-quick}
rm -rf "$run_dir"
mkdir -p "$run_dir"
step "Running the benchmark${QUICK:+ (quick smoke run)}"
.venv/bin/python -m bench.run $QUICK $SCALE --client-python "$BENCH_VENV/bin/python" --overlay "$OVERLAY" \
  --results "$run_dir/results.json" ${EXTRA[@]+"${EXTRA[@]}"}

if [ -n "$QUICK" ]; then
  "$BENCH_VENV/bin/python" bench/report.py "$run_dir/results.json" --md "$run_dir/benchmarks.md" --png-dir "$run_dir/bench"
else
  "$BENCH_VENV/bin/python" bench/report.py "$run_dir/results.json"
fi
