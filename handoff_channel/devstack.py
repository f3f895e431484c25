"""Runs the whole product on one machine: trains the model if needed, then starts the action
server, ``rasa run`` with our channel, and the gateway, and waits until all three answer.

``python -m handoff_channel.devstack run`` is what ``make run`` calls; the end-to-end tests use the
same ``Stack`` class, so what the tests run is what a user runs."""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Optional

from .settings import REPO_ROOT

BOT_DIR = REPO_ROOT / "bot"
VENV_BIN = Path(sys.executable).parent


def _say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def train(config: str = "config.yml", name: str = "handoff", *, out: Optional[Path] = None,
          domain: Optional[Path] = None, quiet: bool = False) -> Path:
    """Train (Rasa caches: an unchanged bot retrains in seconds) and return the model path."""
    out = out or (BOT_DIR / "models")
    cmd = [str(VENV_BIN / "rasa"), "train", "--config", config, "--fixed-model-name", name, "--out", str(out)]
    if domain is not None:
        cmd += ["--domain", str(domain)]
    env = dict(os.environ, RASA_TELEMETRY_ENABLED="false", PYTHONPATH=str(REPO_ROOT))
    started = time.time()
    proc = subprocess.run(cmd, cwd=BOT_DIR, env=env, stdout=subprocess.PIPE if quiet else None,
                          stderr=subprocess.STDOUT if quiet else None, text=True)
    if proc.returncode != 0:
        if quiet and proc.stdout:
            print(proc.stdout[-4000:], file=sys.stderr)
        raise RuntimeError(f"rasa train failed (exit {proc.returncode})")
    model = out / f"{name}.tar.gz"
    if not quiet:
        _say(f"model {model.relative_to(REPO_ROOT) if model.is_relative_to(REPO_ROOT) else model} ready in {time.time() - started:.0f} s")
    return model


def _get(url: str, timeout: float = 2.0) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            body = r.read()
            return r.status, (json.loads(body) if body else None)
    except urllib.error.HTTPError as e:
        return e.code, None


@dataclass
class Stack:
    model: Path
    run_dir: Path = field(default_factory=lambda: REPO_ROOT / ".run")
    gateway_port: int = 8000
    rasa_port: int = 5005
    actions_port: int = 5055
    token: str = ""
    db_url: str = ""
    bus_url: str = "memory://"
    tracker_db: Optional[Path] = None
    endpoints: str = "endpoints.yml"  # relative to bot/, or absolute
    extra_env: dict[str, str] = field(default_factory=dict)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    _logs: list[IO[bytes]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        if not self.token:
            token_file = self.run_dir / "rasa-token"
            if not token_file.exists():
                token_file.write_text(secrets.token_urlsafe(32))
                token_file.chmod(0o600)
            self.token = token_file.read_text().strip()
        self.db_url = self.db_url or f"sqlite:///{self.run_dir / 'handoff.db'}"
        self.tracker_db = self.tracker_db or (self.run_dir / "tracker.db")

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            RASA_TELEMETRY_ENABLED="false",
            PYTHONPATH=str(REPO_ROOT) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else ""),
            HANDOFF_RASA_TOKEN=self.token,
            HANDOFF_RASA_URL=self.rasa_url,
            HANDOFF_ACTION_URL=f"http://127.0.0.1:{self.actions_port}/webhook",
            HANDOFF_TRACKER_DB=str(self.tracker_db),
            HANDOFF_DB_URL=self.db_url,
            HANDOFF_BUS_URL=self.bus_url,
            HANDOFF_PORT=str(self.gateway_port),
            HANDOFF_HOST="127.0.0.1",
            SANIC_HOST="127.0.0.1",
        )
        env.update(self.extra_env)
        return env

    def _spawn(self, name: str, cmd: list[str], cwd: Path) -> subprocess.Popen[bytes]:
        log = open(self.run_dir / f"{name}.log", "ab")
        self._logs.append(log)
        proc = subprocess.Popen(cmd, cwd=cwd, env=self.env(), stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.procs[name] = proc
        return proc

    def start_actions(self) -> None:
        self._spawn("actions", [str(VENV_BIN / "rasa"), "run", "actions", "--actions", "actions",
                                "-p", str(self.actions_port)], BOT_DIR)

    def start_rasa(self, name: str = "rasa") -> None:
        self._spawn(name, [str(VENV_BIN / "rasa"), "run", "-i", "127.0.0.1", "-p", str(self.rasa_port),
                           "-m", str(self.model), "--credentials", "credentials.yml",
                           "--endpoints", self.endpoints], BOT_DIR)

    def start_gateway(self, name: str = "gateway") -> None:
        self._spawn(name, [sys.executable, "-m", "handoff_channel", "serve"], REPO_ROOT)

    def start(self) -> None:
        self.start_actions()
        self.start_gateway()
        self.start_rasa()

    def _check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.run_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"{name} exited with {proc.returncode}; its log ends:\n{tail}")

    def wait_ready(self, timeout: float = 240.0, *, progress: bool = False) -> None:
        checks = {
            "actions": f"http://127.0.0.1:{self.actions_port}/health",
            "gateway": f"{self.gateway_url}/healthz",
            "rasa": f"{self.rasa_url}/webhooks/handoff/",
        }
        pending = {k: v for k, v in checks.items() if k in self.procs}
        deadline = time.time() + timeout
        started = time.time()
        last_note = 0.0
        while pending:
            self._check_alive()
            for name, url in list(pending.items()):
                try:
                    status, body = _get(url)
                except (OSError, ValueError):
                    continue
                if status == 200 and (name != "rasa" or (isinstance(body, dict) and body.get("model_ready"))):
                    if progress:
                        _say(f"{name} is up ({time.time() - started:.0f} s)")
                    del pending[name]
            if time.time() > deadline:
                raise TimeoutError(f"not ready after {timeout:.0f} s: {', '.join(pending)} (logs in {self.run_dir})")
            if progress and time.time() - last_note > 10 and pending:
                _say(f"waiting for {', '.join(pending)}… (Rasa loads its model in ~30 s)")
                last_note = time.time()
            time.sleep(0.3)

    def stop(self, name: Optional[str] = None, sig: int = signal.SIGTERM) -> None:
        names = [name] if name else list(self.procs)
        for n in names:
            proc = self.procs.get(n)
            if proc and proc.poll() is None:
                try:
                    os.killpg(proc.pid, sig)
                except ProcessLookupError:
                    pass
        for n in names:
            proc = self.procs.get(n)
            if proc is None:
                continue
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
            self.procs.pop(n, None)
        if name is None:
            for log in self._logs:
                log.close()
            self._logs.clear()

    def create_agent(self, username: str, name: str, password: str, *, supervisor: bool = False) -> None:
        cmd = [sys.executable, "-m", "handoff_channel", "create-agent", username, "--name", name,
               "--password-stdin", "--update"]
        if supervisor:
            cmd.append("--supervisor")
        subprocess.run(cmd, input=password + "\n", text=True, check=True, env=self.env(), cwd=REPO_ROOT,
                       stdout=subprocess.DEVNULL)


def _run(args: argparse.Namespace) -> int:
    if shutil.which("node") is None:
        _say("note: Node.js is not installed; the web pages need npm packages (see README)")
    config = "config.fast.yml" if args.fast else "config.yml"
    _say(f"training the bot with bot/{config} (cached after the first run)")
    model = train(config, "handoff-fast" if args.fast else "handoff")
    stack = Stack(model=model, gateway_port=args.port)
    demo_password = os.environ.get("HANDOFF_DEMO_PASSWORD", "handoff-demo")
    stack.create_agent("sarah", "Sarah", demo_password, supervisor=True)
    _say("starting the action server, Rasa with the handoff channel, and the gateway")

    def stop_on(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt  # leave through the finally below, which stops what we started

    # Ctrl+C is not the only way this ends: `kill`, a closed terminal (SIGHUP), `docker stop` and
    # process supervisors send SIGTERM or SIGHUP. Without this, the three servers would outlive us
    # and hold their ports, and the next `make run` would fail to start.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, stop_on)
    try:
        stack.start()
        stack.wait_ready(progress=True)
        print(
            "\n"
            f"  Visitor page : {stack.gateway_url}/\n"
            f"  Agent inbox  : {stack.gateway_url}/inbox   (log in as sarah / {demo_password})\n"
            f"  Logs         : {stack.run_dir}/*.log\n"
            "  Log in to the inbox before asking for a person: with no agent available the bot\n"
            "  takes a message instead (a ticket in the inbox).\n"
            "  Stop with Ctrl+C.\n",
            flush=True,
        )
        while True:
            time.sleep(1)
            stack._check_alive()
    except KeyboardInterrupt:
        print()
        _say("stopping")
    finally:
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, signal.SIG_IGN)  # a second signal must not cut the stopping short
        stack.stop()
    return 0


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m handoff_channel.devstack")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="train if needed and run everything on this machine")
    run.add_argument("--fast", action="store_true", help="train with the fast test config")
    run.add_argument("--port", type=int, default=int(os.environ.get("HANDOFF_PORT", "8000")))
    args = parser.parse_args(argv)
    return _run(args)


if __name__ == "__main__":
    raise SystemExit(main())
