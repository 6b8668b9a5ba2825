"""`metasync finance report`: an unknown shop is an error, a month without data says so, --out
is a file (or - for standard output) in a folder that exists, and the settlement total counts
each order of the month once."""

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from click.testing import CliRunner

from pipelines.cli import main
from pipelines.finance.money import to_minor
from pipelines.finance.report import SETTLEMENT_AMOUNTS, write_finance_report
from resources.db import MetasyncDatabase
from resources.db.finance_tables import finance_daily_settlement, finance_transactions
from resources.shops import ShopProfile

HEADER = (
    "section,shop_id,period,day,currency,sales_gross,refunds_gross,other_gross,fees,tax,net,"
    "pending_payout_net,paid_out,payout_count,transaction_count,order_count,jurisdiction,"
    "tax_category,imposition,tax_on_sales,tax_on_refunds,net_tax,remitted_by_meta,"
    "remitted_by_seller"
)


@pytest.fixture
def acme(registry):
    registry.add(
        ShopProfile(shop_id="acme", name="Acme", catalog_id="c1", currency="EUR",
                    source_kind="shopify_csv", source_location="x.csv"),
        token="t",
    )  # fmt: skip
    return registry


def _report(*arguments: str):
    return CliRunner().invoke(main, ["finance", "report", *arguments])


def _day(day: date, *, transactions: int, orders: int, net: str = "10.00") -> dict:
    amounts = {name: Decimal("0") for name in SETTLEMENT_AMOUNTS} | {"net": Decimal(net)}
    return (
        {"shop_id": "acme", "day": day, "currency": "EUR"}
        | amounts
        | {f"{name}_minor": to_minor(value, "EUR") for name, value in amounts.items()}
        | {"payout_count": 0, "transaction_count": transactions, "order_count": orders}
    )


def _transaction(key: str, order_id: str, day: date, kind: str = "SALE") -> dict:
    money = {}
    for name in ("gross_amount", "processing_fee", "net_amount", "tax_amount"):
        money |= {name: Decimal("1.00"), f"{name}_minor": 100}
    return {
        "shop_id": "acme", "transaction_key": key, "transaction_type": kind,
        "transaction_date": datetime(day.year, day.month, day.day, 10, tzinfo=UTC),
        "transaction_day": day, "order_id": order_id, "currency": "EUR",
        "partition_date": day, "loaded_at": datetime(2026, 12, 1, tzinfo=UTC),
    } | money  # fmt: skip


def test_an_unknown_shop_is_an_error_and_writes_no_file(metasync_db, tmp_path):
    for shop in ("nosuch", ""):
        result = _report("--shop", shop, "--month", "2026-12", "--out", str(tmp_path / "f.csv"))

        assert result.exit_code == 1, result.output
        assert f"no shop {shop!r} in the registry" in result.output
        assert "Traceback" not in result.output
        assert not (tmp_path / "f.csv").exists()


def test_a_month_without_data_writes_the_header_and_says_so(acme, tmp_path):
    out = tmp_path / "f.csv"

    result = _report("--shop", "acme", "--month", "2026-11", "--out", str(out))

    assert result.exit_code == 0, result.output
    assert "no settled finance data for acme in 2026-11" in result.stderr
    assert out.read_text().splitlines() == [HEADER]


def test_out_may_not_be_a_folder(acme, tmp_path):
    result = _report("--shop", "acme", "--month", "2026-11", "--out", str(tmp_path))

    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "is a directory" in result.output
    assert "Traceback" not in result.output


def test_out_in_a_missing_folder_is_refused_not_created(acme, tmp_path):
    missing = tmp_path / "nonexistent" / "dir"

    result = _report("--shop", "acme", "--month", "2026-11", "--out", str(missing / "g.csv"))

    assert result.exit_code == 2, result.output
    assert "--out" in result.output and "does not exist" in result.output
    assert str(missing) in result.output.replace("\n", "")
    assert not (tmp_path / "nonexistent").exists()


def test_out_dash_writes_the_csv_to_standard_output(acme, metasync_db, tmp_path):
    with metasync_db.begin() as conn:
        conn.execute(finance_daily_settlement.insert(), [_day(date(2026, 11, 3), transactions=1,
                                                               orders=1)])  # fmt: skip

    result = _report("--shop", "acme", "--month", "2026-11", "--out", "-")

    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [row["section"] for row in rows] == ["settlement", "settlement_total"]
    assert not (tmp_path / "-").exists()  # the tests run in tmp_path
    assert "2 rows" in result.stderr


def test_a_reader_that_stops_early_ends_the_report_quietly(acme, metasync_db, monkeypatch):
    """`metasync finance report ... --out - | head` ended in a BrokenPipeError traceback."""
    from pipelines.finance import report

    def reader_gone(rows, handle):
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(report, "write_finance_csv", reader_gone)

    result = _report("--shop", "acme", "--month", "2026-11", "--out", "-")

    assert result.exit_code == 0
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "Traceback" not in result.output


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def report_db(request, metasync_db):
    if request.param == "sqlite":
        yield metasync_db
        return
    db = MetasyncDatabase(request.getfixturevalue("postgres_url"))
    db.create_schema()
    yield db
    db.dispose()


def test_the_settlement_total_counts_each_order_of_the_month_once(report_db, tmp_path):
    # o1 is sold on the 3rd and refunded on the 20th: one order, counted on both days.
    transactions = [
        _transaction("t1", "o1", date(2026, 11, 3)),
        _transaction("t2", "o2", date(2026, 11, 3)),
        _transaction("t3", "o1", date(2026, 11, 20), kind="REFUND"),
        _transaction("t4", "o3", date(2026, 10, 31)),  # another month
        _transaction("t5", "o4", date(2026, 12, 1)),  # another month
        _transaction("t6", "o5", date(2026, 11, 25)),  # loaded, not published yet
    ]
    days = [
        _day(date(2026, 10, 31), transactions=1, orders=1),
        _day(date(2026, 11, 3), transactions=2, orders=2),
        _day(date(2026, 11, 20), transactions=1, orders=1),
        _day(date(2026, 12, 1), transactions=1, orders=1),
    ]
    with report_db.begin() as conn:
        conn.execute(finance_transactions.insert(), transactions)
        conn.execute(finance_daily_settlement.insert(), days)
    out = tmp_path / "report.csv"

    written = write_finance_report(report_db, "acme", "2026-11", out)

    rows = list(csv.DictReader(out.open()))
    assert written == len(rows) == 3
    assert [row["order_count"] for row in rows] == ["2", "1", "2"]
    total = rows[-1]
    assert (total["section"], total["transaction_count"], total["net"]) == (
        "settlement_total",
        "3",
        "20.00",
    )
    assert out.read_text().splitlines()[0] == HEADER
