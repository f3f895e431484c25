#!/bin/sh
# Entry point of the handoff image (deploy/app.Dockerfile). One image, one role per container:
#
#   gateway            python -m handoff_channel serve (visitor socket.io, inbox, API, SSE) on
#                      HANDOFF_HOST:HANDOFF_PORT (0.0.0.0:8000 in the image)
#   rasa               rasa run with our channel (bot/credentials.yml), the production endpoints
#                      (deploy/endpoints.production.yml) and the model baked into the image; no
#                      --enable-api: the gateway only needs /webhooks/handoff/
#   manage ARGS...     python -m handoff_channel ARGS (create-agent, migrate, ...)
#   rasa-cli ARGS...   any rasa command, e.g. `rasa-cli data validate`
#   anything else      executed as is
set -eu

need() {
  for name in "$@"; do
    eval "value=\${$name-}"
    if [ -z "$value" ]; then
      echo "entrypoint: $name is not set; see deploy/.env.example" >&2
      exit 64
    fi
  done
}

role=${1:-gateway}
[ $# -gt 0 ] && shift

case "$role" in
  gateway)
    need HANDOFF_DB_URL HANDOFF_BUS_URL HANDOFF_RASA_URL HANDOFF_RASA_TOKEN
    exec python -m handoff_channel serve "$@"
    ;;
  rasa)
    # Rasa expands ${VAR} in its YAML files and stops at start-up if one is unset; saying which
    # one here is quicker to read than its traceback.
    need HANDOFF_RASA_TOKEN HANDOFF_ACTION_URL \
         RASA_TRACKER_DB_HOST RASA_TRACKER_DB_PORT RASA_TRACKER_DB_NAME RASA_TRACKER_DB_USER \
         RASA_LOCK_REDIS_HOST RASA_LOCK_REDIS_PORT RASA_LOCK_REDIS_DB
    exec rasa run \
      --model "${RASA_MODEL:-/app/models/handoff.tar.gz}" \
      --credentials "${RASA_CREDENTIALS:-/app/bot/credentials.yml}" \
      --endpoints "${RASA_ENDPOINTS:-/app/deploy/endpoints.production.yml}" \
      --interface 0.0.0.0 --port "${RASA_PORT:-5005}" \
      "$@"
    ;;
  manage)
    exec python -m handoff_channel "$@"
    ;;
  rasa-cli)
    exec rasa "$@"
    ;;
  *)
    exec "$role" "$@"
    ;;
esac
