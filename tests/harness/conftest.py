"""Harness fixtures: retries without real sleeps, a two-shop world on the live sandbox."""

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest

from resources.meta.transport import GraphClient
from resources.settings import get_settings
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer
from tests.harness.world import World


class SleepRecorder:
    """Stands in for time.sleep in every Graph client: records the waits, waits for nothing."""

    def __init__(self) -> None:
        self.sleeps: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.sleeps.append(seconds)


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> SleepRecorder:
    recorder = SleepRecorder()
    monkeypatch.setattr(
        "pipelines.resources.GraphClient", functools.partial(GraphClient, sleep=recorder)
    )
    monkeypatch.setenv("METASYNC_GRAPH_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("METASYNC_GRAPH_MAX_ATTEMPTS", "3")
    get_settings.cache_clear()
    return recorder


@pytest.fixture
def world(
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sleeps: SleepRecorder,
) -> Iterator[World]:
    monkeypatch.setenv("METASYNC_GRAPH_BASE_URL", sandbox.url)
    get_settings.cache_clear()
    built = World(tmp_path / "world", sandbox.url)
    built.onboard(sandbox_admin, ["acme", "bolt"])
    yield built
    built.metasync.db().dispose()
    built.oms.dispose()
