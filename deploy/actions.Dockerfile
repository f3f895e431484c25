# syntax=docker/dockerfile:1
# The action server: bot/actions on the stock rasa-sdk image. action_handoff imports
# handoff_channel.summary (pure Python, standard library only), so the package goes next to the
# actions and /app is on PYTHONPATH. Nothing else is installed: actions never touch a database or
# the network.
FROM rasa/rasa-sdk:3.6.2
USER root
COPY bot/actions /app/actions
COPY handoff_channel/__init__.py handoff_channel/summary.py /app/handoff_channel/
COPY deploy/healthcheck.py /app/healthcheck.py
RUN python -c "import sys; sys.path.insert(0, '/app'); import actions.handoff, actions.orders; print('actions import')"
ENV PYTHONPATH=/app
USER 1001
EXPOSE 5055
# The image's entrypoint (./entrypoint.sh start ...) runs `python -m rasa_sdk`.
CMD ["start", "--actions", "actions", "--port", "5055"]
