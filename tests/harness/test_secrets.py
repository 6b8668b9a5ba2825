"""Tokens, the app secret and the vault key never appear in plain text anywhere metasync writes:
logs, exception texts, the Dagster instance (every run's events, configs, tags, materialization
metadata), the metasync and OMS databases, or any file of the demo's workdir, after the whole
demo ran with known secrets and a sandbox that checks every appsecret_proof."""

import logging
import os
import secrets
from pathlib import Path

import dagster as dg
import pytest
from dagster._serdes import serialize_value
from sqlalchemy import MetaData, Table, create_engine, inspect, select

import pipelines.demo
from resources.settings import get_settings
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer

APP_SECRET = f"appsecret-{secrets.token_hex(16)}"
TOKENS: dict[str, str] = {}  # shop_id -> the token the sandbox issued (filled as shops are made)
SANDBOX_FILES = {"sandbox.pickle"}  # Meta's side: it holds the tokens it issued


class KnownTokenAdmin(SandboxAdmin):
    """Creates shops with tokens the test knows, through the admin API's `token` field."""

    def create_shop(self, shop_id: str, name: str, *, currency: str = "EUR",
                    onsite_orders: bool = True) -> dict:  # fmt: skip
        TOKENS[shop_id] = f"EAAharness{secrets.token_hex(20)}"
        return self.call("POST", "/shops", json={
            "shop_id": shop_id, "name": name, "currency": currency,
            "onsite_orders": onsite_orders, "token": TOKENS[shop_id],
        })  # fmt: skip


class ProofCheckingSandbox(SandboxServer):
    """The demo's sandbox, knowing the app secret and refusing calls without a valid proof."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.state.config.app_secret = APP_SECRET
        self.state.config.require_appsecret_proof = True


def leaks(text: str, secrets_by_name: dict[str, str]) -> list[str]:
    return [name for name, value in secrets_by_name.items() if value in text]


def database_texts(url: str) -> list[tuple[str, str]]:
    """Every row of every table of a database, as (table, text) pairs."""
    engine = create_engine(url)
    found = []
    try:
        with engine.connect() as conn:
            for name in inspect(conn).get_table_names():
                table = Table(name, MetaData(), autoload_with=conn)
                for row in conn.execute(select(table)):
                    found.append((name, " ".join(map(_text, row))))
    finally:
        engine.dispose()
    return found


def _text(value) -> str:
    if isinstance(value, bytes):
        return value.decode("latin-1")
    return str(value)


def test_the_demo_never_writes_a_token_the_app_secret_or_the_vault_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd
):
    monkeypatch.setenv("METASYNC_APP_SECRET", APP_SECRET)
    monkeypatch.setattr(pipelines.demo, "SandboxAdmin", KnownTokenAdmin)
    monkeypatch.setattr(pipelines.demo, "SandboxServer", ProofCheckingSandbox)
    get_settings.cache_clear()
    workdir = tmp_path / "demo"

    with caplog.at_level(logging.DEBUG):
        summary = pipelines.demo.run_demo(workdir=workdir)

    assert summary.ok, summary.failures  # every call carried a valid proof, or it failed
    assert len(TOKENS) == 2
    watched = {f"token of {shop}": token for shop, token in TOKENS.items()}
    watched["app secret"] = APP_SECRET
    watched["vault key"] = os.environ["METASYNC_VAULT_KEY"]
    places: dict[str, list[str]] = {}

    out, err = capfd.readouterr()
    places["captured stdout/stderr"] = leaks(out + err, watched)
    places["log records"] = leaks("\n".join(
        f"{r.getMessage()} {r.exc_text or ''} {r.__dict__}" for r in caplog.records
    ), watched)  # fmt: skip
    places["demo failures"] = leaks(" ".join(summary.failures), watched)

    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs()
        assert len(runs) >= 10
        for run in runs:
            where = f"run {run.run_id[:8]} ({run.job_name})"
            places[f"{where} config and tags"] = leaks(
                serialize_value(run.run_config) + serialize_value(run.tags), watched
            )
            events = instance.all_logs(run.run_id)
            places[f"{where} events"] = leaks(
                "\n".join(serialize_value(event) for event in events), watched
            )

    settings = get_settings()
    for url in {settings.resolved_database_url(), settings.resolved_oms_database_url()}:
        for table, text in database_texts(url):
            places.setdefault(f"table {table}", []).extend(leaks(text, watched))

    scanned = 0
    for path in workdir.rglob("*"):
        if path.is_file() and path.name not in SANDBOX_FILES:
            scanned += 1
            places[f"file {path.relative_to(workdir)}"] = leaks(
                path.read_bytes().decode("latin-1"), watched
            )
    assert scanned > 3
    # The scan can see a token: Meta's side (the sandbox's saved state) holds the ones it issued.
    meta_side = (workdir / "sandbox.pickle").read_bytes().decode("latin-1")
    assert leaks(meta_side, watched)[:2] == list(watched)[:2]

    found = {place: names for place, names in places.items() if names}
    assert found == {}
