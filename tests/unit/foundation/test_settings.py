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
