"""Fixtures shared by every test layer.

``stack`` is the real product: a small model trained with bot/config.fast.yml (Rasa caches it, so
only the first run of a machine pays ~30 s), the real action server, ``rasa run`` with our channel,
and the gateway, each a separate process on free loopback ports. One stack serves the whole session.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import AsyncIterator, Iterator

import pytest

from handoff_channel.devstack import Stack, train
from handoff_channel.settings import REPO_ROOT

from .support import AgentClient, Visitor, free_port

PASSWORD = "correct-horse-9"
AGENTS = {"sarah": ("Sarah", False), "tom": ("Tom", False), "boss": ("Bea Boss", True)}


@pytest.fixture(scope="session")
def artifacts() -> Path:
    path = Path(os.environ.get("HANDOFF_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def model() -> Path:
    out = REPO_ROOT / ".cache" / "models"
    return train("config.fast.yml", "handoff-test", out=out, quiet=True)


@pytest.fixture(scope="session")
def stack(model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir = tmp_path_factory.mktemp("stack")
    s = Stack(
        model=model, run_dir=run_dir, gateway_port=free_port(), rasa_port=free_port(),
        actions_port=free_port(), token="test-token-" + os.urandom(8).hex(),
    )
    for username, (name, supervisor) in AGENTS.items():
        s.create_agent(username, name, PASSWORD, supervisor=supervisor)
    s.start()
    try:
        s.wait_ready(timeout=300)
        yield s
    finally:
        s.stop()


@pytest.fixture
async def sarah(stack: Stack) -> AsyncIterator[AgentClient]:
    client = AgentClient(stack.gateway_url)
    await client.login("sarah", PASSWORD)
    yield client
    await client.close()


@pytest.fixture
async def tom(stack: Stack) -> AsyncIterator[AgentClient]:
    client = AgentClient(stack.gateway_url)
    await client.login("tom", PASSWORD)
    yield client
    await client.close()


@pytest.fixture(autouse=True)
async def close_visitors() -> AsyncIterator[None]:
    """Disconnect every test visitor a test left open (a failed assertion skips its own close)."""
    yield
    for visitor in list(Visitor.open_visitors):
        try:
            await visitor.close()
        except Exception:
            pass
