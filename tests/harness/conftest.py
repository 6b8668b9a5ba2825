"""Harness fixtures: retries without real sleeps, a two-shop world on the live sandbox."""

import functools
from collections.abc import Iterator
from pathlib import Path

import pytest
from httpx._config import create_ssl_context

from resources.meta.transport import GraphClient
from resources.settings import get_settings
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer
from tests.harness.world import World

# The harness's counts (faults injected, crash points tried, bad inputs tried, effects
# duplicated, rows lost), added to by the tests and shown at the end of `make test`.
HARNESS_COUNTS: dict[str, int] = {}


def count(name: str, value: int) -> None:
    HARNESS_COUNTS[name] = HARNESS_COUNTS.get(name, 0) + value


def pytest_terminal_summary(terminalreporter) -> None:
    if HARNESS_COUNTS:
        terminalreporter.section("reliability harness counts")
        for name, value in sorted(HARNESS_COUNTS.items()):
            terminalreporter.write_line(f"{name}: {value}")


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


@functools.cache
def _shared_ssl_context(verify=True, cert=None, trust_env=True):
    return create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)


@pytest.fixture
def world(
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sleeps: SleepRecorder,
) -> Iterator[World]:
    monkeypatch.setenv("METASYNC_GRAPH_BASE_URL", sandbox.url)
    # Every Graph client builds an SSL context (~50 ms of CPU) it never uses against the plain
    # HTTP sandbox; the harness makes thousands of clients (a crashed child makes its own).
    monkeypatch.setattr("httpx._transports.default.create_ssl_context", _shared_ssl_context)
    get_settings.cache_clear()
    built = World(tmp_path / "world", sandbox.url)
    built.onboard(sandbox_admin, ["acme", "bolt"])
    yield built
    built.metasync.db().dispose()
    built.oms.dispose()


@pytest.fixture
def woo_world(world: World, sandbox_admin: SandboxAdmin) -> World:
    """The world plus `cedar`, a shop whose store is a WooCommerce export."""
    world.onboard(sandbox_admin, ["cedar"], kind="woocommerce_csv")
    return world
