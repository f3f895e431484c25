"""The scripts the containers run, exercised natively: the image's entry point, the health check,
and the PostgreSQL init script (against the loopback cluster, as its superuser)."""

from __future__ import annotations

import http.server
import json
import os
import shutil
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

import pytest

from .compose import DEPLOY

ENTRYPOINT = DEPLOY / "entrypoint.sh"
HEALTHCHECK = DEPLOY / "healthcheck.py"


def test_scripts_are_executable_and_parse() -> None:
    for script in (ENTRYPOINT, DEPLOY / "postgres-init.sh", DEPLOY / "nginx-native.sh"):
        assert os.access(script, os.X_OK), f"{script.name} must be executable (git keeps the mode)"
        proc = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("role, missing", [
    ("gateway", "HANDOFF_DB_URL"),
    ("rasa", "HANDOFF_RASA_TOKEN"),
])
def test_entrypoint_names_a_missing_setting(role: str, missing: str) -> None:
    proc = subprocess.run([str(ENTRYPOINT), role], capture_output=True, text=True, env={"PATH": os.environ["PATH"]})
    assert proc.returncode == 64
    assert f"{missing} is not set" in proc.stderr


def test_entrypoint_runs_the_gateway_and_other_commands(tmp_path: Path) -> None:
    # A stand-in `python` on PATH shows what the entry point would run.
    fake = tmp_path / "python"
    fake.write_text('#!/bin/sh\necho "python $*"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "HANDOFF_DB_URL": "postgresql://x", "HANDOFF_BUS_URL": "redis://x",
           "HANDOFF_RASA_URL": "http://rasa-lb:5005", "HANDOFF_RASA_TOKEN": "t"}
    out = subprocess.run([str(ENTRYPOINT), "gateway"], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "python -m handoff_channel serve"
    out = subprocess.run([str(ENTRYPOINT), "manage", "create-agent", "sarah", "--supervisor"], capture_output=True,
                         text=True, env=env, check=True).stdout
    assert out.strip() == "python -m handoff_channel create-agent sarah --supervisor"
    out = subprocess.run([str(ENTRYPOINT), "echo", "hello"], capture_output=True, text=True, env=env, check=True).stdout
    assert out.strip() == "hello"


def test_entrypoint_runs_rasa_with_the_production_files(tmp_path: Path) -> None:
    fake = tmp_path / "rasa"
    fake.write_text('#!/bin/sh\necho "rasa $*"\n')
    fake.chmod(0o755)
    env = {"PATH": f"{tmp_path}:{os.environ['PATH']}", "HANDOFF_RASA_TOKEN": "t",
           "HANDOFF_ACTION_URL": "http://actions:5055/webhook", "RASA_TRACKER_DB_HOST": "postgres",
           "RASA_TRACKER_DB_PORT": "5432", "RASA_TRACKER_DB_NAME": "rasa_tracker", "RASA_TRACKER_DB_USER": "rasa",
           "RASA_LOCK_REDIS_HOST": "redis", "RASA_LOCK_REDIS_PORT": "6379", "RASA_LOCK_REDIS_DB": "1"}
    out = subprocess.run([str(ENTRYPOINT), "rasa"], capture_output=True, text=True, env=env, check=True).stdout.split()
    assert out[:2] == ["rasa", "run"]
    args = dict(zip(out[2::2], out[3::2]))
    assert args == {"--model": "/app/models/handoff.tar.gz", "--credentials": "/app/bot/credentials.yml",
                    "--endpoints": "/app/deploy/endpoints.production.yml", "--interface": "0.0.0.0", "--port": "5005"}


class _Health(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        routes = {"/ok": (200, {"status": "ok", "model_ready": True}), "/loading": (200, {"model_ready": False}),
                  "/down": (503, {"status": "degraded"})}
        status, body = routes.get(self.path, (404, {}))
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def health_server() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("path, key, healthy", [
    ("/ok", None, True), ("/ok", "model_ready", True), ("/loading", "model_ready", False),
    ("/loading", None, True), ("/down", None, False), ("/missing", None, False),
])
def test_healthcheck(health_server: str, path: str, key: str | None, healthy: bool) -> None:
    args = [sys.executable, str(HEALTHCHECK), health_server + path] + ([key] if key else [])
    proc = subprocess.run(args, capture_output=True, text=True)
    assert (proc.returncode == 0) is healthy, proc.stderr
    if not healthy:
        assert proc.stderr.startswith("unhealthy:")


def test_healthcheck_when_nothing_listens() -> None:
    proc = subprocess.run([sys.executable, str(HEALTHCHECK), "http://127.0.0.1:9/healthz"], capture_output=True, text=True)
    assert proc.returncode == 1 and "unhealthy" in proc.stderr


def test_postgres_init_script_creates_two_isolated_databases() -> None:
    """Runs deploy/postgres-init.sh the way the postgres image does (psql over the local socket as
    the superuser), with unique names, then checks each role reaches its own database only."""
    import psycopg2

    if os.geteuid() != 0 or shutil.which("runuser") is None or shutil.which("psql") is None:
        pytest.skip("needs root and the local PostgreSQL cluster to act as its superuser (CI runs as root)")
    tag = uuid.uuid4().hex[:8]
    names = {"HANDOFF_DB_NAME": f"handoff_{tag}", "HANDOFF_DB_USER": f"handoff_{tag}",
             "RASA_TRACKER_DB_NAME": f"rasa_tracker_{tag}", "RASA_TRACKER_DB_USER": f"rasa_{tag}"}
    secrets = {"HANDOFF_DB_PASSWORD": f"h-{uuid.uuid4().hex}", "RASA_TRACKER_DB_PASSWORD": f"r'{uuid.uuid4().hex}"}
    host = urlsplit(os.environ.get("HANDOFF_TEST_PG_URL", "postgresql://127.0.0.1:5432/postgres"))
    env = {"PATH": os.environ["PATH"], "POSTGRES_USER": "postgres", **names, **secrets}
    if host.port:
        env["PGPORT"] = str(host.port)

    def superuser(sql: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", "psql", "-qAt", "-c", sql],
                       env={"PATH": os.environ["PATH"], **({"PGPORT": env["PGPORT"]} if "PGPORT" in env else {})},
                       check=True, capture_output=True, cwd="/")

    try:
        proc = subprocess.run(["runuser", "-u", "postgres", "--", str(DEPLOY / "postgres-init.sh")],
                              env=env, capture_output=True, text=True, cwd="/")
        assert proc.returncode == 0, proc.stderr

        def connect(user: str, password: str, db: str) -> "psycopg2.extensions.connection":
            return psycopg2.connect(host=host.hostname or "127.0.0.1", port=host.port or 5432, user=user,
                                    password=password, dbname=db, connect_timeout=5)

        handoff = connect(names["HANDOFF_DB_USER"], secrets["HANDOFF_DB_PASSWORD"], names["HANDOFF_DB_NAME"])
        with handoff, handoff.cursor() as cur:
            cur.execute("CREATE TABLE probe (id int)")  # the owner may create its schema (Alembic does)
        handoff.close()
        rasa = connect(names["RASA_TRACKER_DB_USER"], secrets["RASA_TRACKER_DB_PASSWORD"], names["RASA_TRACKER_DB_NAME"])
        with rasa, rasa.cursor() as cur:
            cur.execute("CREATE TABLE events (id int)")
        rasa.close()
        with pytest.raises(psycopg2.OperationalError, match="permission denied"):
            connect(names["RASA_TRACKER_DB_USER"], secrets["RASA_TRACKER_DB_PASSWORD"], names["HANDOFF_DB_NAME"])
        with pytest.raises(psycopg2.OperationalError, match="permission denied"):
            connect(names["HANDOFF_DB_USER"], secrets["HANDOFF_DB_PASSWORD"], names["RASA_TRACKER_DB_NAME"])
    finally:
        for db in (names["HANDOFF_DB_NAME"], names["RASA_TRACKER_DB_NAME"]):
            superuser(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        for role in (names["HANDOFF_DB_USER"], names["RASA_TRACKER_DB_USER"]):
            superuser(f'DROP ROLE IF EXISTS "{role}"')
