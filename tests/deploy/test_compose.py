"""docker-compose.yml, checked without a Docker engine (none runs on these machines): the services
and how they depend on each other, health checks, pinned images and Dockerfiles, secrets only from
the environment, the gateways' and Rasa replicas' settings, and `docker compose config` when the
Compose plugin is installed."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from . import compose
from .compose import DEPLOY, REPO

SERVICES = {"postgres", "redis", "actions", "rasa-1", "rasa-2", "rasa-lb", "gateway-1", "gateway-2", "nginx"}
GATEWAYS = ("gateway-1", "gateway-2")
RASAS = ("rasa-1", "rasa-2")
RASA_IMAGE = "rasa/rasa:3.6.21"
SDK_IMAGE = "rasa/rasa-sdk:3.6.2"
SECRET_KEY = re.compile(r"PASSWORD|TOKEN|SECRET", re.I)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return compose.load()


@pytest.fixture(scope="module")
def services(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return spec["services"]


def _healthcheck_text(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else str(test)


def test_the_topology_is_there(services: dict[str, dict[str, Any]]) -> None:
    assert set(services) == SERVICES
    # Only the load balancer is published; everything else is reachable on the Compose networks only.
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"nginx"}
    assert services["nginx"]["networks"] == ["edge"]
    for name in GATEWAYS:
        assert set(services[name]["networks"]) == {"edge", "backend"}
    for name in ("postgres", "redis", "actions", "rasa-lb", *RASAS):
        assert services[name]["networks"] == ["backend"], f"{name} must not sit on the public edge network"
    # Every visitor socket and SSE stream is an open file on the balancer and on a gateway.
    for name in ("nginx", *GATEWAYS):
        assert services[name]["ulimits"]["nofile"]["soft"] >= 65536


def test_every_service_has_a_health_check_on_the_right_route(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        check = service.get("healthcheck")
        assert check, f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        assert check.get("test") and check["test"] != ["NONE"], f"{name}: empty healthcheck"
        for key in ("interval", "timeout", "retries"):
            assert key in check, f"{name}: healthcheck without {key}"
    expected = {
        "gateway-1": "http://127.0.0.1:8000/healthz",
        "gateway-2": "http://127.0.0.1:8000/healthz",
        "rasa-1": "http://127.0.0.1:5005/webhooks/handoff/ model_ready",
        "rasa-2": "http://127.0.0.1:5005/webhooks/handoff/ model_ready",
        "actions": "http://127.0.0.1:5055/health",
        "postgres": "pg_isready",
        "redis": "redis-cli ping",
        "rasa-lb": "http://127.0.0.1:5005/lb-health",
        "nginx": "http://127.0.0.1:8080/lb-health",
    }
    for name, needle in expected.items():
        assert needle in _healthcheck_text(services[name]), f"{name}: healthcheck should probe {needle}"
    # Rasa needs ~30 s (more on a small machine) to load its model before it is healthy.
    for name in RASAS:
        start = services[name]["healthcheck"]["start_period"]
        assert start.endswith("s") and int(start[:-1]) >= 120


def test_depends_on_waits_for_healthy_services_where_it_matters(services: dict[str, dict[str, Any]]) -> None:
    def conditions(name: str) -> dict[str, str]:
        deps = services[name].get("depends_on", {})
        assert isinstance(deps, dict), f"{name}: use the long depends_on form with a condition"
        return {dep: spec["condition"] for dep, spec in deps.items()}

    for name in RASAS:
        assert conditions(name) == {"postgres": "service_healthy", "redis": "service_healthy",
                                    "actions": "service_healthy"}
    for name in GATEWAYS:
        deps = conditions(name)
        assert deps["postgres"] == deps["redis"] == "service_healthy"
        # The gateways serve visitors and agents while Rasa loads its model: they never wait on a
        # Rasa replica, only on the Rasa balancer being up.
        assert not set(deps) & set(RASAS)
        assert deps.get("rasa-lb") == "service_healthy"
    assert conditions("nginx") == {"gateway-1": "service_healthy", "gateway-2": "service_healthy"}
    assert conditions("rasa-lb") == {"rasa-1": "service_started", "rasa-2": "service_started"}
    for name in ("postgres", "redis", "actions"):
        assert not services[name].get("depends_on")


def test_images_are_pinned(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            assert image.startswith("handoff-"), f"{name}: a built image is named handoff-*"
            continue
        repo, _, tag = image.rpartition(":")
        assert repo and re.fullmatch(r"\d+\.\d+(\.\d+)?(-[a-z0-9.]+)?", tag), f"{name}: pin {image!r} to a version"


def test_dockerfiles_exist_and_start_from_the_pinned_rasa_images(services: dict[str, dict[str, Any]]) -> None:
    final_images = {}
    for name, service in services.items():
        build = service.get("build")
        if not build:
            continue
        context = (REPO / build["context"]).resolve()
        assert context == REPO, f"{name}: the build context is the repository root"
        dockerfile = context / build["dockerfile"]
        assert dockerfile.is_file(), f"{name}: {dockerfile} does not exist"
        stages = compose.dockerfile_stages(dockerfile, build.get("args"))
        names = {stage for _, stage in stages if stage}
        for image, _ in stages:
            if image in names:
                continue
            assert re.fullmatch(r"[a-z0-9./-]+:\d+\.\d+\.\d+[a-z0-9.-]*", image), f"{dockerfile.name}: unpinned FROM {image!r}"
        final_images[name] = stages[-1][0]
        # Every file the Dockerfile copies from the context exists and is not dockerignored.
        ignore = dockerfile.with_name(dockerfile.name + ".dockerignore")
        assert ignore.is_file(), f"{dockerfile.name} needs {ignore.name} (keeps .venv and models out of the context)"
        for sources in compose.dockerfile_copies(dockerfile):
            for source in sources:
                assert (context / source).exists(), f"{dockerfile.name}: COPY {source}: no such path"
                assert not compose.dockerignore_excludes(ignore, source), f"{ignore.name} leaves out {source}"
    for name in (*RASAS, *GATEWAYS):
        assert final_images[name] == RASA_IMAGE
    assert final_images["actions"] == SDK_IMAGE
    # The big things stay out of the build context.
    app_ignore = DEPLOY / "app.Dockerfile.dockerignore"
    for path in (".venv/bin/python", ".git/HEAD", "bot/models/handoff.tar.gz", "inbox_ui/node_modules/x.js", ".run/x.db"):
        assert compose.dockerignore_excludes(app_ignore, path), f"the app build context should not include {path}"


def test_the_app_image_trains_the_model_and_ships_the_channel() -> None:
    text = (DEPLOY / "app.Dockerfile").read_text()
    assert re.search(r"^RUN rasa train .*--fixed-model-name handoff", text, re.M)
    assert "COPY --from=model /build/models/handoff.tar.gz /app/models/handoff.tar.gz" in text
    assert "COPY handoff_channel /app/handoff_channel" in text
    assert "COPY deploy/endpoints.production.yml /app/deploy/endpoints.production.yml" in text
    assert re.search(r"PYTHONPATH=/app\b", text)
    sdk = (DEPLOY / "actions.Dockerfile").read_text()
    assert "COPY bot/actions /app/actions" in sdk and "handoff_channel/summary.py" in sdk
    assert "ENV PYTHONPATH=/app" in sdk


def test_secrets_come_only_from_the_environment() -> None:
    raw = compose.load_raw()
    for name, service in raw["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if SECRET_KEY.search(key):
                refs = compose.references(str(value))
                assert len(refs) == 1 and refs[0][1] == ":?" and str(value) == f"${{{refs[0][0]}:{refs[0][1][1:]}{refs[0][2]}}}", \
                    f"{name}.{key} must be exactly ${{VAR:?message}}, got {value!r}"
        for text in compose.strings(service):
            # Credentials inside URLs: the password part must be a required variable.
            for m in re.finditer(r"://([^:/@\s]*):([^@\s]+)@", text):
                refs = compose.references(m.group(2))
                assert refs and refs[0][1] == ":?" and m.group(2) == f"${{{refs[0][0]}:?{refs[0][2]}}}", \
                    f"{name}: literal password in URL {text!r}"
        command = service.get("command") or []
        if "--requirepass" in command:
            value = command[command.index("--requirepass") + 1]
            assert compose.references(value)[0][1] == ":?"
    # And with everything unset, Compose refuses to start instead of running with empty secrets.
    with pytest.raises(compose.MissingVariable):
        compose.load(env={})
    for secret in compose.FAKE_SECRETS:
        env = compose.filled_env()
        del env[secret]
        with pytest.raises(compose.MissingVariable, match=secret):
            compose.load(env)


def test_env_example_names_every_variable_and_holds_no_secret() -> None:
    example = compose.env_example()
    used = {name for text in compose.strings(compose.load_raw()) for name, _, _ in compose.references(text)}
    required = {name for text in compose.strings(compose.load_raw()) for name, op, _ in compose.references(text) if op == ":?"}
    assert required == set(compose.FAKE_SECRETS) | {"HANDOFF_ALLOWED_ORIGINS"}
    missing = used - set(example)
    assert not missing, f"deploy/.env.example should document {sorted(missing)}"
    for key in compose.FAKE_SECRETS:
        assert example[key] == "", f"deploy/.env.example must not carry a value for the secret {key}"
    # The real file stays out of git.
    assert ".env" in (DEPLOY / ".gitignore").read_text().split()


def test_gateways_get_the_postgres_and_redis_urls(services: dict[str, dict[str, Any]]) -> None:
    secrets = compose.FAKE_SECRETS
    for name in GATEWAYS:
        service = services[name]
        env = service["environment"]
        assert service["command"] == ["gateway"]
        assert env["HANDOFF_DB_URL"] == f"postgresql://handoff:{secrets['HANDOFF_DB_PASSWORD']}@postgres:5432/handoff"
        assert env["HANDOFF_BUS_URL"] == f"redis://:{secrets['REDIS_PASSWORD']}@redis:6379/0"
        assert env["HANDOFF_RASA_URL"] == "http://rasa-lb:5005"
        assert env["HANDOFF_RASA_TOKEN"] == secrets["HANDOFF_RASA_TOKEN"]
        assert env["HANDOFF_HOST"] == "0.0.0.0" and env["HANDOFF_PORT"] == "8000"
        assert env["HANDOFF_COOKIE_SECURE"] == "1"
    assert services["gateway-1"] == services["gateway-2"], "the gateway replicas must be identical"


def test_rasa_replicas_use_the_production_endpoints(services: dict[str, dict[str, Any]]) -> None:
    endpoints_file = DEPLOY / "endpoints.production.yml"
    endpoints = yaml.safe_load(endpoints_file.read_text())
    assert endpoints["tracker_store"]["type"] == "SQL"
    assert endpoints["tracker_store"]["dialect"] == "postgresql"
    assert endpoints["lock_store"]["type"] == "redis"
    # Every ${VAR} Rasa expands in the files it reads (endpoints and credentials) is set on each
    # replica: Rasa stops at start-up on an unset one.
    needed = {name for path in (endpoints_file, REPO / "bot" / "credentials.yml")
              for text in compose.strings(yaml.safe_load(path.read_text()))
              for name, _, _ in compose.references(text)}
    assert {"HANDOFF_RASA_TOKEN", "RASA_TRACKER_DB_PASSWORD", "RASA_LOCK_REDIS_PASSWORD"} <= needed
    secrets = compose.FAKE_SECRETS
    for name in RASAS:
        service = services[name]
        env = service["environment"]
        assert service["command"] == ["rasa"]
        assert env["RASA_ENDPOINTS"] == "/app/deploy/endpoints.production.yml"
        assert needed <= set(env), f"{name} lacks {sorted(needed - set(env))}"
        assert env["RASA_TRACKER_DB_HOST"] == "postgres" and env["RASA_TRACKER_DB_NAME"] == "rasa_tracker"
        assert env["RASA_TRACKER_DB_PASSWORD"] == secrets["RASA_TRACKER_DB_PASSWORD"]
        assert env["RASA_LOCK_REDIS_HOST"] == "redis" and env["RASA_LOCK_REDIS_DB"] == "1"
        assert env["RASA_LOCK_REDIS_PASSWORD"] == secrets["REDIS_PASSWORD"]
        assert env["HANDOFF_RASA_TOKEN"] == secrets["HANDOFF_RASA_TOKEN"]
        assert env["HANDOFF_ACTION_URL"] == "http://actions:5055/webhook"
        # Bounded, or two replicas alone could claim 300 of PostgreSQL's 100 default connections.
        assert int(env["SQL_POOL_SIZE"]) + int(env["SQL_MAX_OVERFLOW"]) <= 20
    assert services["rasa-1"] == services["rasa-2"], "the Rasa replicas must be identical"
    # The tracker store has its own database, apart from the hand-off store's.
    gw_db = services["gateway-1"]["environment"]["HANDOFF_DB_URL"].rsplit("/", 1)[1]
    assert gw_db != services["rasa-1"]["environment"]["RASA_TRACKER_DB_NAME"]
    # The entry point hands those settings to `rasa run`, without --enable-api.
    entry = (DEPLOY / "entrypoint.sh").read_text()
    rasa_cmd = entry[entry.index("exec rasa run"):entry.index(";;", entry.index("exec rasa run"))]
    assert '--endpoints "${RASA_ENDPOINTS' in rasa_cmd and '--credentials "${RASA_CREDENTIALS' in rasa_cmd
    assert "--enable-api" not in rasa_cmd


def test_postgres_creates_both_databases_on_first_start(services: dict[str, dict[str, Any]]) -> None:
    pg = services["postgres"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in pg["volumes"]}
    init = mounts["/docker-entrypoint-initdb.d/10-handoff-databases.sh"]
    assert (REPO / init).resolve() == DEPLOY / "postgres-init.sh"
    for key in ("HANDOFF_DB_PASSWORD", "RASA_TRACKER_DB_PASSWORD", "HANDOFF_DB_NAME", "RASA_TRACKER_DB_NAME"):
        assert key in pg["environment"]
    assert "/var/lib/postgresql/data" in mounts


def test_nginx_config_files_referenced_exist(services: dict[str, dict[str, Any]]) -> None:
    for name in ("nginx", "rasa-lb"):
        mounts = {}
        for volume in services[name]["volumes"]:
            source, target, *_ = volume.split(":")
            path = (REPO / source).resolve()
            assert path.is_file(), f"{name}: {source} does not exist"
            mounts[target] = path
        main = mounts["/etc/nginx/nginx.conf"]
        # Every file the main config includes is mounted next to it.
        for include in re.findall(r"^\s*include\s+([^;]+);", main.read_text(), re.M):
            assert f"/etc/nginx/{include}" in mounts, f"{name}: {include} is included but not mounted"
            assert mounts[f"/etc/nginx/{include}"].name == include
    assert mounts["/etc/nginx/nginx.conf"] == DEPLOY / "nginx-rasa.conf"


def _compose_cli() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    if legacy and subprocess.run([legacy, "version"], capture_output=True).returncode == 0:
        return [legacy]
    return None


def test_docker_compose_config_accepts_the_file(tmp_path: Path) -> None:
    cli = _compose_cli()
    if cli is None:
        pytest.fail("no Compose CLI: install Debian's docker-compose (scripts/services.sh does) or the compose plugin")
    env_file = tmp_path / "env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in compose.filled_env().items()))
    proc = subprocess.run([*cli, "-f", str(REPO / "docker-compose.yml"), "--env-file", str(env_file), "config", "-q"],
                          cwd=REPO, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 0, proc.stderr
