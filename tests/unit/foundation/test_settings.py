"""Database URLs as hosting providers print them reach SQLAlchemy with the psycopg2 driver."""

import pytest

from resources.settings import MetasyncSettings


@pytest.mark.parametrize(
    ("given", "used"),
    [
        ("postgres://u@db:5432/metasync", "postgresql+psycopg2://u@db:5432/metasync"),
        ("postgresql://u@db/metasync", "postgresql+psycopg2://u@db/metasync"),
        ("postgresql+psycopg2://u@db/metasync", "postgresql+psycopg2://u@db/metasync"),
        ("sqlite:///x.db", "sqlite:///x.db"),
    ],
)
def test_postgres_urls_get_the_psycopg2_driver(given, used):
    settings = MetasyncSettings(database_url=given, oms_database_url=given)

    assert settings.resolved_database_url() == used
    assert settings.resolved_oms_database_url() == used


def test_a_demo_state_folder_brings_its_sandbox_and_databases(isolated_state, monkeypatch):
    """A command pointed at the demo's state (METASYNC_STATE_DIR=.metasync/demo) must talk to
    the demo's sandbox, not to graph.facebook.com with the demo's tokens."""
    import json

    from resources.settings import DEMO_ENV_FILE, get_settings

    isolated_state.mkdir(parents=True)
    (isolated_state / DEMO_ENV_FILE).write_text(json.dumps({
        "METASYNC_STATE_DIR": str(isolated_state),
        "METASYNC_GRAPH_BASE_URL": "http://127.0.0.1:8765",
        "METASYNC_DATABASE_URL": "sqlite:///demo-meta.db",
        "DAGSTER_HOME": str(isolated_state / "dagster_home"),
    }))  # fmt: skip
    monkeypatch.delenv("METASYNC_GRAPH_BASE_URL")
    get_settings.cache_clear()

    settings = get_settings()

    assert settings.graph_base_url == "http://127.0.0.1:8765"
    assert settings.resolved_database_url() == "sqlite:///demo-meta.db"
    assert settings.state_dir == isolated_state


def test_the_environment_wins_over_a_demo_state_folder(isolated_state, monkeypatch):
    import json

    from resources.settings import DEMO_ENV_FILE, get_settings

    isolated_state.mkdir(parents=True)
    (isolated_state / DEMO_ENV_FILE).write_text(
        json.dumps({"METASYNC_GRAPH_BASE_URL": "http://127.0.0.1:8765"})
    )
    monkeypatch.setenv("METASYNC_GRAPH_BASE_URL", "http://127.0.0.1:9999")
    get_settings.cache_clear()

    assert get_settings().graph_base_url == "http://127.0.0.1:9999"
