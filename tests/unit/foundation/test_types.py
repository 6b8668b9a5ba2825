"""Money columns are exact on SQLite, where NUMERIC would silently become a float."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, insert, select

from resources.db import create_database_engine
from resources.db.types import ExactDecimal, UtcDateTime


@pytest.fixture
def money_table(tmp_path):
    engine = create_database_engine(f"sqlite:///{tmp_path / 'm.db'}")
    metadata = MetaData()
    table = Table(
        "m",
        metadata,
        Column("id", Integer, primary_key=True),
        Column("amount", ExactDecimal),
        Column("at", UtcDateTime),
    )
    metadata.create_all(engine)
    return engine, table


def test_decimal_round_trips_exactly_on_sqlite(money_table):
    engine, table = money_table
    amount = Decimal("12345678901234.123456")
    with engine.begin() as conn:
        conn.execute(insert(table).values(id=1, amount=amount, at=datetime.now(UTC)))
        stored = conn.execute(select(table.c.amount)).scalar_one()
    assert stored == amount and isinstance(stored, Decimal)


def test_floats_are_refused_for_money(money_table):
    engine, table = money_table
    with pytest.raises(Exception, match="never float"), engine.begin() as conn:
        conn.execute(insert(table).values(id=1, amount=0.1))


def test_naive_datetimes_are_refused(money_table):
    engine, table = money_table
    with pytest.raises(Exception, match="naive"), engine.begin() as conn:
        conn.execute(insert(table).values(id=1, at=datetime(2026, 1, 1)))
