# syntax=docker/dockerfile:1
# One image, two roles: `rasa` (rasa run with our HandoffInput channel and the trained model) and
# `gateway` (python -m handoff_channel serve). Both sides of the gateway <-> channel wire come from
# the same commit, so their contract can never drift between two images; the gateway needs nothing
# that rasa/rasa:3.6.21 does not already ship (Python 3.10, sanic 21.12, python-socketio 5,
# SQLAlchemy 1.4, psycopg2, redis-py 4, aiohttp 3.9). The gateway never imports rasa, so it stays a
# small process even though the image is large.
#
# Build context: the repository root (docker-compose.yml sets it). app.Dockerfile.dockerignore
# keeps .venv, models, caches and node_modules out of the context (BuildKit reads it).

ARG RASA_IMAGE=rasa/rasa:3.6.21

# --- 1. the rasa-webchat widget file the visitor page loads (pinned by inbox_ui/package-lock.json)
FROM node:18.20.4-bookworm-slim AS webchat
WORKDIR /build
COPY inbox_ui/package.json inbox_ui/package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund \
 && test -s node_modules/rasa-webchat/lib/index.js

# --- 2. the model, trained at build time from bot/ (fixed seeds: same commit, same model)
FROM ${RASA_IMAGE} AS model
# bot/config.yml for production; --build-arg RASA_TRAIN_CONFIG=config.fast.yml for a quick image.
ARG RASA_TRAIN_CONFIG=config.yml
USER root
ENV RASA_TELEMETRY_ENABLED=false
WORKDIR /build/bot
COPY bot/domain.yml bot/config.yml bot/config.fast.yml ./
COPY bot/data ./data
RUN rasa train --config "${RASA_TRAIN_CONFIG}" --fixed-model-name handoff --out /build/models \
 && test -s /build/models/handoff.tar.gz

# --- 3. the runtime image
FROM ${RASA_IMAGE}
USER root
# Anything requirements.txt adds on top of rasa (alembic for the store's migrations); rasa and
# rasa-sdk themselves are already installed at the pinned versions, so pip leaves them alone.
COPY requirements.txt /app/requirements.txt
RUN pip install --no-cache-dir -r /app/requirements.txt \
 && python -c "import rasa, sqlalchemy, psycopg2, redis, socketio, sanic; print('rasa', rasa.__version__)"
COPY handoff_channel /app/handoff_channel
COPY bot /app/bot
COPY inbox_ui/app /app/inbox_ui/app
COPY inbox_ui/visitor /app/inbox_ui/visitor
COPY --from=webchat /build/node_modules/rasa-webchat/lib/index.js /app/inbox_ui/node_modules/rasa-webchat/lib/index.js
COPY --from=webchat /build/node_modules/rasa-webchat/LICENSE /app/inbox_ui/node_modules/rasa-webchat/LICENSE
COPY --from=model /build/models/handoff.tar.gz /app/models/handoff.tar.gz
COPY deploy/endpoints.production.yml /app/deploy/endpoints.production.yml
COPY deploy/entrypoint.sh deploy/healthcheck.py /app/deploy/
RUN chmod 0755 /app/deploy/entrypoint.sh \
 && rm -rf /app/bot/models /app/bot/results /app/bot/.rasa \
 && python -m compileall -q /app/handoff_channel

# The code is read-only for the runtime user; Rasa writes nothing but its own ~/.config (HOME=/app).
ENV PYTHONPATH=/app \
    RASA_TELEMETRY_ENABLED=false \
    RASA_MODEL=/app/models/handoff.tar.gz \
    RASA_ENDPOINTS=/app/deploy/endpoints.production.yml \
    RASA_CREDENTIALS=/app/bot/credentials.yml \
    HANDOFF_HOST=0.0.0.0 \
    HANDOFF_PORT=8000
WORKDIR /app
USER 1001
EXPOSE 5005 8000
ENTRYPOINT ["/app/deploy/entrypoint.sh"]
CMD ["gateway"]
