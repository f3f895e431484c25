"""``make bench`` (scripts/bench.sh runs this with the project venv): starts the servers, runs the
load client (bench/client.py, in the bench venv) against them, stops every process it started,
and hands the numbers to bench/report.py for the table and docs/benchmarks.md.

Order (one run, so every comparison is made on the same machine at the same time):
  1. the floor: bench/floor_server.py (Sanic + python-socketio), echo, relay (nothing stored) and durable relay;
  2. the product: action server + ``rasa run`` with our channel + the gateway (devstack.Stack),
     and next to it a second ``rasa run`` with Rasa's stock socket.io channel on the same model
     (python-socketio 5.9.0 overlaid on PYTHONPATH so its replies are delivered);
  3. the report.

Options run parts of it (``--parts``, ``--levels``, ``--no-floor``), an A/B of the gateway's code
(``--baseline REF``: the product phase once with ``handoff_channel/`` as it was at REF, extracted
with ``git archive``, and once with the working tree, same model, same run), and the scale-out
phase (``--scale-out``: two gateways on one PostgreSQL store and the Redis bus behind nginx, as
tests/e2e/test_production.py runs them; needs HANDOFF_TEST_PG_URL and HANDOFF_TEST_REDIS_URL,
which ``eval "$(scripts/services.sh)"`` sets).

Everything listens on 127.0.0.1 on free ports; every process is started in its own process group
and stopped by that group's id."""

from __future__ import annotations

import argparse
import json
import os
import platform
import secrets
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from importlib import metadata
from pathlib import Path
from typing import Any, Optional

from handoff_channel.devstack import BOT_DIR, VENV_BIN, Stack, train
from handoff_channel.settings import REPO_ROOT

BENCH_DIR = REPO_ROOT / "bench"
CACHE = REPO_ROOT / ".cache" / "bench"
AGENT_PASSWORD = "bench-" + secrets.token_hex(6)


def say(msg: str) -> None:
    print(f"==> {msg}", flush=True)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_http(url: str, timeout: float, proc: Optional[subprocess.Popen[bytes]] = None, what: str = "") -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"{what or url} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.3)
    raise TimeoutError(f"{what or url} not ready after {timeout:.0f} s")


def stop_group(proc: Optional[subprocess.Popen[bytes]]) -> None:
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
    except ProcessLookupError:
        pass
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)


def machine() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kb = int(next(line for line in f if line.startswith("MemTotal")).split()[1])
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                                text=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--", "handoff_channel", "bot"], cwd=REPO_ROOT,
                                    capture_output=True, text=True).stdout.strip())
    except OSError:
        commit, dirty = "", False
    return {
        "cores": os.cpu_count(), "ram_gb": round(mem_kb / 1024 / 1024, 1), "cpu": model,
        "kernel": platform.release(), "python": platform.python_version(),
        "commit": commit + (" (+ uncommitted changes in handoff_channel/ or bot/)" if dirty else ""),
        "loadavg_start": os.getloadavg(), "date": time.strftime("%Y-%m-%d %H:%M %Z"),
    }


def versions(client_python: str, overlay: Path) -> dict[str, Any]:
    server = {}
    for dist in ("rasa", "rasa-sdk", "sanic", "python-socketio", "python-engineio", "aiohttp", "SQLAlchemy",
                 "uvloop", "tensorflow"):
        try:
            server[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            server[dist] = None
    code = ("import json,importlib.metadata as m;print(json.dumps({d: m.version(d) for d in "
            "('python-socketio','python-engineio','aiohttp','matplotlib','uvloop')}))")
    client = json.loads(subprocess.run([client_python, "-c", code], capture_output=True, text=True, check=True).stdout)
    stock = {}
    for d in overlay.glob("*.dist-info"):
        name, ver = d.name[: -len(".dist-info")].rsplit("-", 1)
        stock[name] = ver
    return {"server (project venv)": server, "client (bench venv)": client, "stock channel overlay": stock}


class CodeStack(Stack):
    """A ``Stack`` whose gateway and Rasa channel import ``handoff_channel`` from ``code_root``
    (a baseline extracted from git) instead of the working tree."""

    code_root: Optional[Path] = None

    def env(self) -> dict[str, str]:
        env = super().env()
        if self.code_root is not None:
            env["PYTHONPATH"] = str(self.code_root)
        if env.get("BENCH_STAGES_DIR"):  # --stages: bench/stages/sitecustomize.py stamps the gateway
            env["PYTHONPATH"] = os.pathsep.join([str(BENCH_DIR / "stages"), env["PYTHONPATH"]])
        return env

    def start_gateway(self, name: str = "gateway") -> None:
        if self.code_root is None:
            return super().start_gateway(name)
        self._spawn(name, [str(VENV_BIN / "python"), "-m", "handoff_channel", "serve"], self.code_root)


def extract(ref: str) -> tuple[Path, str]:
    """``handoff_channel/`` as it is at ``ref``, in .cache/bench/code-<sha>; returns (dir, short sha)."""
    sha = subprocess.run(["git", "rev-parse", "--short", ref], cwd=REPO_ROOT, capture_output=True, text=True,
                         check=True).stdout.strip()
    root = CACHE / f"code-{sha}"
    if not (root / "handoff_channel" / "__init__.py").exists():
        root.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(["git", "archive", sha, "handoff_channel"], cwd=REPO_ROOT, capture_output=True,
                                 check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root, sha


def stack_env(args: argparse.Namespace) -> dict[str, str]:
    """The ``--stack-env KEY=VALUE`` options, for the servers' environment."""
    return dict(kv.split("=", 1) for kv in args.stack_env)


def record_warmup(args: argparse.Namespace) -> float:
    """How long the gateway may hold a claimed conversation's lines before Rasa records them
    (``HANDOFF_RASA_LOG_CLAIMED_BATCH_S``): each forwarding measurement starts after that much
    unmeasured load, so that Rasa's recording runs inside the window as it would all day. None in
    a --quick smoke run."""
    if args.quick:
        return 0.0
    from handoff_channel.settings import Settings

    value = stack_env(args).get("HANDOFF_RASA_LOG_CLAIMED_BATCH_S", os.environ.get("HANDOFF_RASA_LOG_CLAIMED_BATCH_S"))
    batch = float(value) if value else Settings().rasa_log_claimed_batch_s
    return max(0.0, batch) + (2.0 if batch > 0 else 0.0)


def client_opts(args: argparse.Namespace) -> dict[str, Any]:
    return {"quick": args.quick, "parts": args.parts or None, "levels": args.levels or None,
            "warmup": record_warmup(args) or None}


def run_client(client_python: str, mode: str, out: Path, timeout: float,
               env: Optional[dict[str, str]] = None, **kw: Any) -> dict[str, Any]:
    cmd = [client_python, str(BENCH_DIR / "client.py"), mode, "--out", str(out)]
    for k, v in kw.items():
        if v is True:
            cmd.append(f"--{k.replace('_', '-')}")
        elif v not in (None, False):
            cmd += [f"--{k.replace('_', '-')}", str(v)]
    proc = subprocess.Popen(cmd, cwd=REPO_ROOT, start_new_session=True, env=dict(os.environ, **(env or {})))
    try:
        rc = proc.wait(timeout)
    except subprocess.TimeoutExpired:
        stop_group(proc)
        raise RuntimeError(f"the {mode} client did not finish within {timeout:.0f} s")
    except BaseException:
        stop_group(proc)
        raise
    if rc != 0:
        raise RuntimeError(f"the {mode} client failed (exit {rc})")
    return json.loads(out.read_text())


def floor_phase(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    port = free_port()
    log = open(work / "floor.log", "ab")
    db = work / "floor.db"
    for leftover in work.glob("floor.db*"):
        leftover.unlink()
    proc = subprocess.Popen([str(VENV_BIN / "python"), str(BENCH_DIR / "floor_server.py"), str(port), str(db)],
                            cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", 30, proc, "the floor server")
        say(f"floor: bare Sanic + python-socketio server on port {port} (pid {proc.pid})")
        parts = ",".join(x for x in (args.parts or "memory,levels,mixed").split(",") if x in ("memory", "levels", "mixed"))
        res = run_client(args.client_python, "floor", work / "floor.json", 900 if not args.quick else 120,
                         url=f"http://127.0.0.1:{port}", pid=proc.pid, quick=args.quick, levels=args.levels or None,
                         parts=parts or "levels")
        res["durable_db"] = str(db)  # the durable relay's lines, kept with the run's logs
        return res
    finally:
        stop_group(proc)
        log.close()


def start_stock_rasa(stack: Stack, model: Path, port: int, overlay: Path, work: Path) -> subprocess.Popen[bytes]:
    env = stack.env()
    env["PYTHONPATH"] = os.pathsep.join([str(overlay), env.get("PYTHONPATH", "")])
    env["HANDOFF_TRACKER_DB"] = str(work / "stock-tracker.db")
    log = open(work / "stock-rasa.log", "ab")
    proc = subprocess.Popen(
        [str(VENV_BIN / "rasa"), "run", "-i", "127.0.0.1", "-p", str(port), "-m", str(model),
         "--credentials", str(BENCH_DIR / "stock-credentials.yml"), "--endpoints", "endpoints.yml"],
        cwd=BOT_DIR, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    log.close()
    return proc


def product_phase(args: argparse.Namespace, work: Path, model: Path, code_root: Optional[Path] = None,
                  tag: str = "") -> dict[str, Any]:
    extra = stack_env(args)
    stages_dir: Optional[Path] = None
    if args.stages:
        stages_dir = work / f"stages{tag}"
        shutil.rmtree(stages_dir, ignore_errors=True)
        stages_dir.mkdir(parents=True)
        extra["BENCH_STAGES_DIR"] = str(stages_dir.resolve())
    stack = CodeStack(model=model, run_dir=work / f"stack{tag}", gateway_port=free_port(), rasa_port=free_port(),
                      actions_port=free_port(), token="bench-" + secrets.token_hex(16), extra_env=extra)
    stack.code_root = code_root
    agents = 2 if args.quick else 10
    for i in range(agents):
        stack.create_agent(f"bench{i}", f"Agent {i}", AGENT_PASSWORD)
    with_stock = not args.parts or "bot" in args.parts.split(",")
    stock: Optional[subprocess.Popen[bytes]] = None
    stock_port = free_port()
    try:
        stack.start()
        if with_stock:
            stock = start_stock_rasa(stack, model, stock_port, args.overlay, work)
        say("starting the action server, rasa run (our channel), the gateway"
            + (", and rasa run (stock socket.io)" if with_stock else "")
            + (f"; handoff_channel from {code_root.relative_to(REPO_ROOT)}" if code_root else ""))
        stack.wait_ready(timeout=300)
        if stock is not None:
            wait_http(f"http://127.0.0.1:{stock_port}/webhooks/socketio/", 300, stock, "the stock Rasa")
        pids = {name: p.pid for name, p in stack.procs.items()}
        say(f"ready: gateway pid {pids['gateway']}, rasa pid {pids['rasa']}"
            + (f", stock rasa pid {stock.pid}" if stock else ""))
        result = run_client(
            args.client_python, "product", work / f"product{tag}.json", 1800 if not args.quick else 240,
            url=stack.gateway_url, pid=pids["gateway"], rasa_pid=pids["rasa"],
            stock_url=f"http://127.0.0.1:{stock_port}", tracker_db=stack.tracker_db, password=AGENT_PASSWORD,
            env=({"BENCH_STAGES_DIR": str(stages_dir.resolve())} if stages_dir else None), **client_opts(args),
        )
        result["loadavg_end"] = os.getloadavg()
    finally:
        stop_group(stock)
        stack.stop()
    if stages_dir is not None:
        from bench.stages.report import analyse, table
        result["stages"] = analyse(str(stages_dir))
        print(table(result["stages"], f"stages ({code_root.name if code_root else 'working tree'}): "), flush=True)
    return result


def scale_out_phase(args: argparse.Namespace, work: Path, model: Path, code_root: Optional[Path] = None,
                    tag: str = "") -> dict[str, Any]:
    """Two gateways on one PostgreSQL store and the Redis bus, behind nginx (deploy/nginx-native.sh,
    the production routing); one Rasa behind both (the forwarding path does not go through Rasa)."""
    import sqlalchemy as sa

    admin, redis_url = os.environ.get("HANDOFF_TEST_PG_URL"), os.environ.get("HANDOFF_TEST_REDIS_URL")
    if not admin or not redis_url:
        raise RuntimeError('--scale-out needs HANDOFF_TEST_PG_URL and HANDOFF_TEST_REDIS_URL: eval "$(scripts/services.sh)"')
    nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(nginx_bin):
        raise RuntimeError("--scale-out needs nginx (scripts/services.sh installs it)")
    tag = secrets.token_hex(5)
    dbname = f"handoff_bench_{tag}"
    admin_engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT", future=True)
    with admin_engine.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
    db_url = f"{admin.rsplit('/', 1)[0]}/{dbname}"
    bus = f"{redis_url}?channel_prefix=bench{tag}"
    token = "bench-" + secrets.token_hex(16)
    common: dict[str, Any] = dict(model=model, token=token, db_url=db_url, bus_url=bus, actions_port=free_port(),
                                  rasa_port=free_port(), extra_env=stack_env(args))
    a = CodeStack(run_dir=work / f"scale-a{tag}", gateway_port=free_port(), **common)
    b = CodeStack(run_dir=work / f"scale-b{tag}", gateway_port=free_port(), **common)
    a.code_root = b.code_root = code_root
    lb_port = free_port()
    nginx: Optional[subprocess.Popen[bytes]] = None
    try:
        agents = 2 if args.quick else 10
        for i in range(agents):
            a.create_agent(f"bench{i}", f"Agent {i}", AGENT_PASSWORD)
        a.start_actions()
        a.start_rasa()
        a.start_gateway()
        b.start_gateway()
        nginx = subprocess.Popen(
            [str(REPO_ROOT / "deploy" / "nginx-native.sh"), str(work / "nginx"), str(lb_port), str(a.gateway_port),
             str(b.gateway_port)], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, PATH=os.environ.get("PATH", "") + ":/usr/sbin"))
        say("scale-out: two gateways (PostgreSQL store, Redis bus) behind nginx, one rasa run")
        a.wait_ready(timeout=300)
        b.wait_ready(timeout=60)
        wait_http(f"http://127.0.0.1:{lb_port}/lb-health", 30, nginx, "nginx")
        say(f"ready: gateways pid {a.procs['gateway'].pid} and {b.procs['gateway'].pid}, nginx on {lb_port}")
        levels = args.scale_out_levels or ("10" if args.quick else "100,500")
        result = run_client(
            args.client_python, "product", work / f"scale-out{tag}.json", 1800 if not args.quick else 240,
            url=f"http://127.0.0.1:{lb_port}", pid=a.procs["gateway"].pid, pid2=b.procs["gateway"].pid,
            rasa_pid=a.procs["rasa"].pid, tracker_db=a.tracker_db, password=AGENT_PASSWORD, quick=args.quick,
            parts="levels", levels=levels, pin="gw1,gw2", warmup=record_warmup(args) or None,
        )
        result["loadavg_end"] = os.getloadavg()
        return result
    finally:
        stop_group(nginx)
        a.stop()
        b.stop()
        with admin_engine.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        admin_engine.dispose()


def run_scale_out(args: argparse.Namespace, work: Path, model: Path, code_root: Optional[Path] = None,
                  tag: str = "") -> dict[str, Any]:
    say("phase: scale-out" + (f" (handoff_channel from {code_root})" if code_root else ""))
    try:
        return scale_out_phase(args, work, model, code_root, tag)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        # The other phases' numbers still count; the report says the scale-out is missing.
        say(f"the scale-out phase failed: {exc}")
        return {"error": str(exc)}


def main() -> int:
    ap = argparse.ArgumentParser(prog="bench.run")
    ap.add_argument("--quick", action="store_true", help="a tiny smoke run (CI): a few seconds per measurement")
    ap.add_argument("--client-python", default=str(CACHE / "venv" / "bin" / "python"))
    ap.add_argument("--overlay", type=Path, default=CACHE / "sio59")
    ap.add_argument("--results", type=Path, help="where to write the raw JSON (default .cache/bench/...)")
    ap.add_argument("--stack-env", action="append", default=[], metavar="KEY=VALUE",
                    help="extra environment for the product's processes, e.g. HANDOFF_DB_URL=postgresql://...")
    ap.add_argument("--parts", default="", help="comma-separated subset of bot,memory,levels,profile,mixed "
                    "(default: all; the floor runs the memory, levels and mixed ones asked for)")
    ap.add_argument("--levels", default="", help="comma-separated N instead of 1,10,100,500,1000, e.g. 500")
    ap.add_argument("--no-floor", action="store_true", help="skip the floor phase")
    ap.add_argument("--baseline", metavar="REF", action="append", help="A/B: also run the product phase with "
                    "handoff_channel/ as at this git ref (first), then the working tree; all go into the results. "
                    "Repeat for several refs (run in the order given)")
    ap.add_argument("--ab-levels", default="", help="with --baseline: the levels of the baseline phases (e.g. 500)")
    ap.add_argument("--ab-parts", default="", help="with --baseline: the parts of the baseline phases "
                    "(e.g. bot,levels,mixed)")
    ap.add_argument("--code", metavar="REF", help="run the product phase with handoff_channel/ as at this git ref")
    ap.add_argument("--ab-rounds", type=int, default=1, help="with --baseline: alternate baseline/current this "
                    "many times (B C, then C B, ...)")
    ap.add_argument("--stages", action="store_true", help="also time each stage of a forwarded message inside the "
                    "gateway (bench/stages/): a table per product phase, and 'stages' in its results")
    ap.add_argument("--scale-out", action="store_true", help="add the two-gateway phase (PostgreSQL + Redis + nginx)")
    ap.add_argument("--scale-out-levels", default="", help="N of the scale-out phase (default 100,500; quick: 10)")
    ap.add_argument("--only-scale-out", action="store_true", help="run only the scale-out phase (and the floor)")
    ap.add_argument("--ab-scale-out", action="store_true", help="with --baseline and --scale-out: run the scale-out "
                    "phase once per version too (implied by --only-scale-out)")
    ap.add_argument("--only-floor", action="store_true", help="run only the floor phase (echo, relay, durable relay)")
    args = ap.parse_args()
    # Absolute: the servers run in bot/, the client in the repository root.
    args.overlay = args.overlay.resolve()
    args.client_python = str(Path(args.client_python).absolute())

    started = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S")
    work = CACHE / f"run-{stamp}{'-quick' if args.quick else ''}"
    work.mkdir(parents=True, exist_ok=True)
    for old in sorted(CACHE.glob("run-*"))[:-3]:  # servers' logs and databases of older runs
        shutil.rmtree(old, ignore_errors=True)
    results: dict[str, Any] = {"quick": args.quick, "machine": machine(), "stack_env": args.stack_env,
                               "versions": versions(args.client_python, args.overlay)}

    # SIGTERM (e.g. a CI timeout) unwinds like Ctrl+C, so the finally blocks stop every server.
    def interrupted(_sig: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)

    if args.only_floor:
        say("phase: the floor")
        results["floor"] = floor_phase(args, work)
        results["floor"]["loadavg_end"] = os.getloadavg()
        return finish(args, results, work, started)

    config, name = ("config.fast.yml", "bench-fast") if args.quick else ("config.yml", "bench")
    say(f"training the bot with bot/{config} (Rasa caches it; the first production training takes minutes)")
    model = train(config, name, out=CACHE / "models", quiet=True)
    results["model"] = {"config": f"bot/{config}", "path": str(model.relative_to(REPO_ROOT))}

    if not args.no_floor:
        say("phase: the floor")
        results["floor"] = floor_phase(args, work)
        results["floor"]["loadavg_end"] = os.getloadavg()
    ab_scale = bool(args.baseline) and (args.only_scale_out or (args.scale_out and args.ab_scale_out))
    if args.baseline:
        codes = [extract(ref) for ref in args.baseline]
        results["ab"] = {"baseline": codes[0][1], "runs": []}
        for r in range(args.ab_rounds):
            order: list[tuple[str, Optional[Path]]] = [(sha, root) for root, sha in codes] + [("current", None)]
            if r % 2:
                order.reverse()
            for label, root in order:
                res: dict[str, Any] = {}
                if not args.only_scale_out:
                    say(f"phase: the product, {label} code, round {r + 1}")
                    if root is not None and args.ab_levels:
                        # Only the levels the A/B compares, so the older code's phase stays short.
                        res = product_phase(argparse.Namespace(**{**vars(args), "levels": args.ab_levels,
                                                                  "parts": args.ab_parts or args.parts}),
                                            work, model, root, tag=f"-{label}-{r}")
                    else:
                        res = product_phase(args, work, model, root, tag=f"-{label}-{r}")
                if ab_scale:
                    res["scale_out"] = run_scale_out(args, work, model, root, tag=f"-{label}-{r}")
                res["label"] = label
                res["code"] = label if root else "working tree"
                results["ab"]["runs"].append(res)
                if root is None:
                    if not args.only_scale_out:
                        results["product"] = res
                    if ab_scale:
                        results["scale_out"] = res["scale_out"]
    elif not args.only_scale_out:
        code = extract(args.code) if args.code else None
        say("phase: the product" + (f" (handoff_channel at {code[1]})" if code else ""))
        results["product"] = product_phase(args, work, model, code[0] if code else None)
    if (args.scale_out or args.only_scale_out) and not ab_scale:
        results["scale_out"] = run_scale_out(args, work, model)
    return finish(args, results, work, started)


def finish(args: argparse.Namespace, results: dict[str, Any], work: Path, started: float) -> int:
    """Write the raw results JSON."""
    results["machine"]["loadavg_end"] = os.getloadavg()
    results["elapsed_s"] = round(time.time() - started)
    out = args.results or (work / "results.json")
    out.write_text(json.dumps(results, indent=1))
    say(f"raw results: {out.relative_to(REPO_ROOT) if out.is_relative_to(REPO_ROOT) else out}")
    return 0


if __name__ == "__main__":
    try:
        raise SystemExit(main())
    except KeyboardInterrupt:
        print("interrupted; every server was stopped", file=sys.stderr)
        raise SystemExit(130)
