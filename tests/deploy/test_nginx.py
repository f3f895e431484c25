"""The load balancer configurations, with the real nginx binary: `nginx -t` on the Compose files
(hostnames replaced by 127.0.0.1) and on the native template, then the native template running in
front of two stand-in gateways: sticky routing, pinning, fail-over, WebSocket upgrade and an
unbuffered SSE stream. nginx missing is a failure, not a skip (scripts/services.sh installs it)."""

from __future__ import annotations

import http.server
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import pytest

from .compose import DEPLOY

NATIVE_SCRIPT = DEPLOY / "nginx-native.sh"
COMPOSE_HOSTS = re.compile(r"\b(gateway-[12]|rasa-[12])(?=:\d+)")


def nginx_binary() -> str:
    found = os.environ.get("NGINX") or shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(found).is_file():
        pytest.fail("nginx is not installed: the load-balancer configuration must be checked by the real "
                    "binary (Debian: apt-get install nginx-light; scripts/services.sh does it as root)")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def compose_config_copy(tmp_path: Path) -> Path:
    """deploy/*.conf copied into tmp_path with the Compose hostnames and /tmp paths made local."""
    for conf in DEPLOY.glob("nginx*.conf"):
        text = COMPOSE_HOSTS.sub("127.0.0.1", conf.read_text())
        text = text.replace(" /tmp/", f" {tmp_path}/")
        (tmp_path / conf.name).write_text(text)
    return tmp_path


@pytest.mark.parametrize("main", ["nginx.conf", "nginx-rasa.conf"])
def test_compose_nginx_config_passes_nginx_t(main: str, tmp_path: Path) -> None:
    nginx = nginx_binary()
    conf_dir = compose_config_copy(tmp_path)
    assert "127.0.0.1:" in (conf_dir / main).read_text()
    proc = subprocess.run([nginx, "-t", "-c", str(conf_dir / main), "-p", f"{conf_dir}/", "-e", str(tmp_path / "error.log")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    assert "test is successful" in proc.stderr


def test_compose_gateway_balancer_is_sticky_and_streams() -> None:
    text = (DEPLOY / "nginx.conf").read_text()
    routes = (DEPLOY / "nginx-gateway-routes.conf").read_text()
    maps = (DEPLOY / "nginx-gateway-maps.conf").read_text()
    gateways = re.search(r"upstream gateways \{(.*?)\}", text, re.S).group(1)  # type: ignore[union-attr]
    assert "hash $remote_addr consistent;" in gateways
    assert re.findall(r"server (gateway-[12]):8000", gateways) == ["gateway-1", "gateway-2"]
    assert "include nginx-gateway-routes.conf;" in text and "include nginx-gateway-maps.conf;" in text
    sse = re.search(r"location = /api/events \{(.*?)\}", routes, re.S).group(1)  # type: ignore[union-attr]
    assert "proxy_buffering off;" in sse and "proxy_read_timeout 1h;" in sse
    socketio = re.search(r"location /socket.io/ \{(.*?)\}", routes, re.S).group(1)  # type: ignore[union-attr]
    assert "proxy_pass http://$handoff_gateway;" in socketio
    assert "proxy_set_header Upgrade $http_upgrade;" in routes
    assert "proxy_set_header Connection $handoff_connection;" in routes
    # No location sets headers of its own (that would silently drop the shared ones).
    for block in re.findall(r"location [^{]+\{(.*?)\}", routes, re.S):
        assert "proxy_set_header" not in block
    assert "map $http_upgrade $handoff_connection" in maps
    rasa = (DEPLOY / "nginx-rasa.conf").read_text()
    assert re.findall(r"server (rasa-[12]):5005", rasa) == ["rasa-1", "rasa-2"]
    assert "least_conn;" in rasa and "location /webhooks/handoff/" in rasa


def test_native_template_matches_the_compose_upstreams() -> None:
    """The native twin differs from deploy/nginx.conf only in addresses, listen and paths."""
    def upstreams(text: str) -> list[str]:
        text = re.sub(r"\$\{\w+\}", "PORT", text)
        blocks = re.findall(r"(upstream \w+ \{.*?\})", text, re.S)
        normal = []
        for block in blocks:
            block = re.sub(r"server \S+", "server ADDR", block)
            block = re.sub(r"keepalive \d+;", "keepalive N;", block)
            normal.append(re.sub(r"\s+", " ", block))
        return normal

    compose_conf = (DEPLOY / "nginx.conf").read_text()
    native = (DEPLOY / "nginx.native.conf").read_text()
    assert upstreams(native) == upstreams(compose_conf)
    for include in ("include nginx-gateway-maps.conf;", "include nginx-gateway-routes.conf;"):
        assert include in native
    assert set(re.findall(r"\$\{(\w+)\}", native)) == {"LISTEN_PORT", "GATEWAY1_PORT", "GATEWAY2_PORT"}


def test_native_template_passes_nginx_t(tmp_path: Path) -> None:
    nginx_binary()
    proc = subprocess.run([str(NATIVE_SCRIPT), str(tmp_path / "lb"), "18080", "18001", "18002", "--test"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    rendered = (tmp_path / "lb" / "nginx.conf").read_text()
    assert "${" not in rendered and "127.0.0.1:18001" in rendered and "listen 127.0.0.1:18080;" in rendered


def test_native_script_refuses_bad_arguments(tmp_path: Path) -> None:
    proc = subprocess.run([str(NATIVE_SCRIPT), str(tmp_path), "80a", "1", "2"], capture_output=True, text=True)
    assert proc.returncode == 64 and "not a port" in proc.stderr
    proc = subprocess.run([str(NATIVE_SCRIPT), str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 64 and "usage" in proc.stderr


# --- the native template running in front of two stand-in gateways ----------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "_Backend"

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        backend = self.server
        backend.seen.append({k.lower(): v for k, v in self.headers.items()})
        if self.path.startswith("/socket.io/") and self.headers.get("Upgrade", "").lower() == "websocket":
            self._upgrade()
        elif self.path.startswith("/api/events"):
            self._sse()
        else:
            body = backend.name.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def _upgrade(self) -> None:
        # nginx only relays the 101 and then the bytes both ways; WebSocket framing is not its
        # business, so the stand-in echoes raw bytes.
        self.wfile.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
        self.wfile.flush()
        data = self.connection.recv(1024)
        self.connection.sendall(self.server.name.encode() + b":" + data)
        self.close_connection = True

    def _sse(self) -> None:
        # Deliberately without X-Accel-Buffering: the nginx configuration alone must not buffer.
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(b"id: 1\ndata: first\n\n")
        self.wfile.flush()
        # The second event goes out only once the client has read the first one through nginx.
        # A buffering proxy holds the first event back, the client never confirms, the test fails.
        self.server.first_event_seen.wait(10)
        self.wfile.write(b"id: 2\ndata: second\n\n")
        self.wfile.flush()
        self.close_connection = True


@dataclass
class _Backend(http.server.ThreadingHTTPServer):
    name: str = ""
    seen: list[dict[str, str]] = field(default_factory=list)
    first_event_seen: threading.Event = field(default_factory=threading.Event)

    def __init__(self, name: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.daemon_threads = True
        self.name = name
        self.seen = []
        self.first_event_seen = threading.Event()
        self.connections: list[socket.socket] = []
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    def get_request(self) -> tuple[socket.socket, object]:
        conn, addr = super().get_request()
        self.connections.append(conn)
        return conn, addr

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def stop(self) -> None:
        """Like a killed gateway: the port refuses connections and open ones are cut."""
        self.shutdown()
        self.server_close()
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@dataclass
class _Balancer:
    url: str
    port: int
    backends: dict[str, _Backend]


@pytest.fixture
def balancer(tmp_path: Path) -> Iterator[_Balancer]:
    nginx_binary()
    backends = {"gw1": _Backend("gw1"), "gw2": _Backend("gw2")}
    port = free_port()
    prefix = tmp_path / "nginx"
    proc = subprocess.Popen([str(NATIVE_SCRIPT), str(prefix), str(port), str(backends["gw1"].port), str(backends["gw2"].port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                log = (prefix / "logs" / "error.log")
                pytest.fail(f"nginx exited with {proc.returncode}: {proc.stdout.read() if proc.stdout else ''} "
                            f"{log.read_text() if log.exists() else ''}")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail("nginx did not listen within 15 s")
                time.sleep(0.05)
        yield _Balancer(f"http://127.0.0.1:{port}", port, backends)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        for backend in backends.values():
            backend.stop()
    # The process we started was nginx's master (the script execs it): nothing is left behind.
    assert not (prefix / "logs" / "nginx.pid").exists()


def _get(url: str, cookie: str | None = None) -> str:
    request = urllib.request.Request(url, headers={"Cookie": cookie} if cookie else {})
    with urllib.request.urlopen(request, timeout=10) as resp:
        return resp.read().decode()


def test_native_balancer_is_sticky_and_pins_by_cookie(balancer: _Balancer) -> None:
    answers = {_get(f"{balancer.url}/socket.io/?EIO=4&transport=polling&t={i}") for i in range(20)}
    assert len(answers) == 1, f"one client address must always reach the same gateway, got {answers}"
    for name in ("gw1", "gw2"):
        for path in ("/socket.io/?EIO=4&transport=polling", "/api/conversations", "/healthz", "/inbox"):
            assert _get(balancer.url + path, f"handoff_gateway={name}") == name
    headers = balancer.backends["gw1"].seen[-1]
    assert headers["x-forwarded-for"] == "127.0.0.1"
    assert headers["x-forwarded-proto"] == "http"
    assert "upgrade" not in headers and headers.get("connection", "") != "close"
    assert _get(f"{balancer.url}/lb-health") == "ok\n"


def test_native_balancer_fails_over_when_a_gateway_is_down(balancer: _Balancer) -> None:
    sticky = _get(f"{balancer.url}/healthz")
    balancer.backends[sticky].stop()
    other = "gw2" if sticky == "gw1" else "gw1"
    assert {_get(f"{balancer.url}/healthz") for _ in range(5)} == {other}


def test_native_balancer_passes_the_websocket_upgrade(balancer: _Balancer) -> None:
    with socket.create_connection(("127.0.0.1", balancer.port), timeout=10) as s:
        s.sendall(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: shop.example\r\n"
            b"Upgrade: websocket\r\nConnection: Upgrade\r\nCookie: handoff_gateway=gw2\r\n"
            b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = s.recv(1024)
            assert chunk, f"connection closed during the handshake: {head!r}"
            head += chunk
        assert head.startswith(b"HTTP/1.1 101"), head
        s.sendall(b"2probe")
        echo = head.split(b"\r\n\r\n", 1)[1]
        while not echo.endswith(b"2probe"):
            chunk = s.recv(1024)
            assert chunk, f"tunnel closed early: {echo!r}"
            echo += chunk
        assert echo == b"gw2:2probe"
    seen = balancer.backends["gw2"].seen[-1]
    assert seen["upgrade"] == "websocket" and seen["connection"].lower() == "upgrade"
    assert seen["host"] == "shop.example"


def test_native_balancer_streams_sse_unbuffered(balancer: _Balancer) -> None:
    backend = balancer.backends["gw1"]
    with socket.create_connection(("127.0.0.1", balancer.port), timeout=15) as s:
        s.sendall(b"GET /api/events?last_event_id=0 HTTP/1.1\r\nHost: x\r\nCookie: handoff_gateway=gw1\r\n"
                  b"Accept: text/event-stream\r\n\r\n")
        received = b""
        while b"data: first" not in received:
            chunk = s.recv(1024)
            assert chunk, f"stream ended before the first event: {received!r}"
            received += chunk
        assert b"data: second" not in received
        backend.first_event_seen.set()
        while b"data: second" not in received:
            chunk = s.recv(1024)
            assert chunk, f"stream ended before the second event: {received!r}"
            received += chunk
    assert b"text/event-stream" in received
