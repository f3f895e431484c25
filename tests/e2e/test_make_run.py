"""`make run` (``python -m handoff_channel.devstack run``) as an operator uses it on a laptop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from handoff_channel.devstack import REPO_ROOT

from ..support import free_port, listening

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_stopping_make_run_with_a_signal_stops_every_server_it_started(model: Path, tmp_path: Path, sig: int) -> None:
    """`kill`, a closed terminal or `docker stop` must not leave Rasa, the action server and the
    gateway running and holding their ports: the next `make run` would not start."""
    port = free_port()
    ports = {"gateway": port, "rasa": 5005, "actions": 5055}
    busy = [name for name, p in ports.items() if listening(p)]
    assert not busy, f"something already listens on the ports make run uses: {busy}"
    out = open(tmp_path / "run.log", "w+")
    proc = subprocess.Popen([sys.executable, "-m", "handoff_channel.devstack", "run", "--fast", "--port", str(port)],
                            cwd=REPO_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO_ROOT)))
    try:
        deadline = time.time() + 400
        while "Visitor page" not in (tmp_path / "run.log").read_text():
            assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
            assert time.time() < deadline, (tmp_path / "run.log").read_text()[-3000:]
            time.sleep(0.5)
        assert all(listening(p) for p in ports.values())
        proc.send_signal(sig)
        assert proc.wait(60) == 0
        still = [name for name, p in ports.items() if listening(p)]
        assert not still, f"still listening after make run stopped: {still}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        out.close()
