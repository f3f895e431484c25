#!/bin/sh
# Runs once, when the postgres container initialises an empty data directory
# (/docker-entrypoint-initdb.d): two roles, two databases, neither role can open the other's.
#   HANDOFF_DB_NAME      (handoff)       the hand-off store, owned by HANDOFF_DB_USER (handoff)
#   RASA_TRACKER_DB_NAME (rasa_tracker)  Rasa's tracker store, owned by RASA_TRACKER_DB_USER (rasa)
# Passwords come from HANDOFF_DB_PASSWORD and RASA_TRACKER_DB_PASSWORD. Changing them later does
# not re-run this script: use ALTER ROLE ... PASSWORD, then update the environment.
set -e

: "${HANDOFF_DB_PASSWORD:?HANDOFF_DB_PASSWORD must be set}"
: "${RASA_TRACKER_DB_PASSWORD:?RASA_TRACKER_DB_PASSWORD must be set}"

psql -v ON_ERROR_STOP=1 --no-psqlrc --username "${POSTGRES_USER:-postgres}" --dbname postgres \
  --set=handoff_db="${HANDOFF_DB_NAME:-handoff}" \
  --set=handoff_user="${HANDOFF_DB_USER:-handoff}" \
  --set=handoff_password="$HANDOFF_DB_PASSWORD" \
  --set=rasa_db="${RASA_TRACKER_DB_NAME:-rasa_tracker}" \
  --set=rasa_user="${RASA_TRACKER_DB_USER:-rasa}" \
  --set=rasa_password="$RASA_TRACKER_DB_PASSWORD" <<'SQL'
CREATE ROLE :"handoff_user" LOGIN PASSWORD :'handoff_password';
CREATE DATABASE :"handoff_db" OWNER :"handoff_user";
REVOKE ALL ON DATABASE :"handoff_db" FROM PUBLIC;
CREATE ROLE :"rasa_user" LOGIN PASSWORD :'rasa_password';
CREATE DATABASE :"rasa_db" OWNER :"rasa_user";
REVOKE ALL ON DATABASE :"rasa_db" FROM PUBLIC;
SQL
