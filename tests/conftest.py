"""Shared fixtures: an isolated state folder per test, a live sandbox, a registry."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from resources.db import MetasyncDatabase
from resources.onboarding import register_from_install
from resources.settings import get_settings
from resources.shops import ShopProfile, ShopRegistry, TokenVault
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATASETS = REPO_ROOT.parent / "shared" / "datasets"


LOOPBACK_HOSTS = {"127.0.0.1", "::1", "localhost"}


@pytest.fixture(autouse=True, scope="session")
def no_internet() -> Iterator[None]:
    """Any connection from a test to a non-loopback address fails loudly: nothing may ever call
    graph.facebook.com (or anything else outside this machine) from a test."""
    import socket

    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex

    def guarded(connect):
        def connect_checked(sock, address):
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                host = address[0]
                if host not in LOOPBACK_HOSTS and not host.startswith("127."):
                    raise ConnectionRefusedError(f"tests may not connect to {host}: loopback only")
            return connect(sock, address)

        return connect_checked

    socket.socket.connect = guarded(real_connect)
    socket.socket.connect_ex = guarded(real_connect_ex)
    yield
    socket.socket.connect, socket.socket.connect_ex = real_connect, real_connect_ex


@pytest.fixture(autouse=True)
def isolated_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Every test gets its own state folder, SQLite files and vault key; no .env leaks in."""
    state_dir = tmp_path / "state"
    monkeypatch.setenv("METASYNC_STATE_DIR", str(state_dir))
    monkeypatch.setenv("METASYNC_VAULT_KEY", Fernet.generate_key().decode())
    # Listed so that monkeypatch restores them after tests (such as the demo's) that set them.
    for name in (
        "METASYNC_DATABASE_URL",
        "METASYNC_OMS_DATABASE_URL",
        "METASYNC_APP_SECRET",
        "METASYNC_GRAPH_BASE_URL",
        "DAGSTER_HOME",
        "DAGSTER_PG_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    # A test that forgets to point at the sandbox talks to a closed loopback port, not to Meta.
    monkeypatch.setenv("METASYNC_GRAPH_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    yield state_dir
    get_settings.cache_clear()


@pytest.fixture
def sandbox() -> Iterator[SandboxServer]:
    with SandboxServer(admin=True) as server:
        yield server


@pytest.fixture
def sandbox_admin(sandbox: SandboxServer) -> Iterator[SandboxAdmin]:
    admin = SandboxAdmin(sandbox.url)
    yield admin
    admin.close()


@pytest.fixture
def metasync_db(isolated_state: Path) -> MetasyncDatabase:
    db = MetasyncDatabase(f"sqlite:///{isolated_state / 'metasync.db'}")
    db.create_schema()
    return db


@pytest.fixture
def registry(metasync_db: MetasyncDatabase) -> ShopRegistry:
    return ShopRegistry(metasync_db, TokenVault.from_settings())


@pytest.fixture
def onboard(
    sandbox: SandboxServer,
    sandbox_admin: SandboxAdmin,
    registry: ShopRegistry,
    monkeypatch: pytest.MonkeyPatch,
):
    """Create a shop in the sandbox and register it in metasync; returns its ShopProfile."""
    monkeypatch.setenv("METASYNC_GRAPH_BASE_URL", sandbox.url)
    get_settings.cache_clear()

    def make(
        shop_id: str = "acme",
        *,
        currency: str = "EUR",
        timezone: str = "Europe/Berlin",
        source_kind: str = "shopify_csv",
        source_location: str = "",
        onsite_orders: bool = True,
        offers: bool = False,
    ) -> ShopProfile:
        created = sandbox_admin.create_shop(
            shop_id, shop_id.title(), currency=currency, onsite_orders=onsite_orders
        )
        return register_from_install(
            registry,
            shop_id=shop_id,
            name=created["name"],
            install=created,
            token=created["access_token"],
            currency=currency,
            timezone=timezone,
            source_kind=source_kind,
            source_location=source_location,
            onsite_orders=onsite_orders,
            offers=offers,
        )

    return make


POSTGRES_ADMIN_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, uniquely named database on the machine's PostgreSQL, dropped afterwards.

    Never skipped: CI starts PostgreSQL before the tests, and a missing server must fail loudly.
    Set METASYNC_TEST_PG_ADMIN_URL to point at another server.
    """
    admin_url = os.environ.get("METASYNC_TEST_PG_ADMIN_URL", POSTGRES_ADMIN_URL)
    url = create_database(admin_url, "metasync_test")
    try:
        yield url
    finally:
        drop_database(admin_url, url)


def create_database(admin_url: str, prefix: str) -> str:
    """A new database named `prefix` plus a random suffix on `admin_url`'s server; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    """Drop the database at `url`, ending its open connections first."""
    name = make_url(url).database
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
            {"name": name},
        )
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()
