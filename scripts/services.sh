#!/usr/bin/env bash
# Makes sure the services the production-mode tests need are running on loopback: PostgreSQL
# (Debian's cluster) and Redis. Installs them from Debian when run as root; otherwise says what to
# do. Prints the URLs as `export` lines for the caller to eval.
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }
is_root() { [ "$(id -u)" = 0 ]; }

missing=()
command -v pg_ctlcluster >/dev/null 2>&1 || missing+=(postgresql)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v nginx >/dev/null 2>&1 || missing+=(nginx-light)
# tests/deploy validates docker-compose.yml with a real Compose CLI (no engine is needed for that).
{ docker compose version >/dev/null 2>&1 || command -v docker-compose >/dev/null 2>&1; } || missing+=(docker-compose)
if [ ${#missing[@]} -gt 0 ]; then
  is_root && command -v apt-get >/dev/null || die "install ${missing[*]} (Debian/Ubuntu: sudo apt-get install ${missing[*]})"
  say "Installing ${missing[*]} from Debian"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  # The packages start system-wide daemons; the tests use their own ports, so stop the extras.
  systemctl disable --now nginx >/dev/null 2>&1 || service nginx stop >/dev/null 2>&1 || true
  pkill -x nginx 2>/dev/null || true
fi

PG_USER=${HANDOFF_TEST_PG_USER:-handoff}
PG_PASS=${HANDOFF_TEST_PG_PASSWORD:-handoff-test}
if ! pg_isready -h 127.0.0.1 -q 2>/dev/null; then
  is_root || die "PostgreSQL is not running on 127.0.0.1:5432; start it (sudo pg_ctlcluster 15 main start) or set HANDOFF_TEST_PG_URL"
  cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
  [ -n "$cluster" ] || { say "Creating a PostgreSQL cluster"; pg_createcluster 15 main >&2; cluster="15 main"; }
  say "Starting PostgreSQL ($cluster)"
  pg_ctlcluster $cluster start >&2
  for _ in $(seq 1 50); do pg_isready -h 127.0.0.1 -q && break; sleep 0.2; done
  pg_isready -h 127.0.0.1 -q || die "PostgreSQL did not start"
fi
if is_root; then
  runuser -u postgres -- psql -qtA -c "SELECT 1 FROM pg_roles WHERE rolname='$PG_USER'" | grep -q 1 ||
    runuser -u postgres -- psql -q -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_PASS'" >&2
fi
echo "export HANDOFF_TEST_PG_URL=${HANDOFF_TEST_PG_URL:-postgresql://$PG_USER:$PG_PASS@127.0.0.1:5432/postgres}"

if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1; then
  say "Starting Redis on 127.0.0.1:6379"
  redis-server --bind 127.0.0.1 --port 6379 --save '' --appendonly no --daemonize yes >&2
  for _ in $(seq 1 50); do redis-cli -p 6379 ping >/dev/null 2>&1 && break; sleep 0.1; done
  redis-cli -p 6379 ping >/dev/null 2>&1 || die "Redis did not start"
fi
echo "export HANDOFF_TEST_REDIS_URL=${HANDOFF_TEST_REDIS_URL:-redis://127.0.0.1:6379/0}"
