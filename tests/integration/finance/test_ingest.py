"""ingest_finance against a fake finance Graph and the reference OMS, on SQLite and Postgres:
idempotent partition loads, quarantine that never stops the run, gated publishing."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from pipelines.finance import store
from pipelines.finance.ingest import FinanceSettings, ingest_finance
from resources.db import MetasyncDatabase
from resources.db.finance_tables import (
    FINANCE_TABLES,
    finance_order_payments,
    finance_order_reconciliation,
    finance_payout_reconciliation,
    finance_quarantine,
    finance_transactions,
)
from resources.oms.adapter import OmsAdapter
from resources.shops import ShopRegistry, TokenVault
from tests.integration.finance.fakes import (
    FakeFinanceGraph,
    FakeMetasync,
    at,
    money,
    register_shop,
    shipped_oms_order,
)

DAY = datetime.now(UTC).date() - timedelta(days=20)
VOLATILE = {"loaded_at", "partition_date", "detected_at", "computed_at", "published_at"}


def sale(order_id, net, fee, day=DAY, payout="P1", kind="SALE"):
    return {
        "transaction_type": kind,
        "transaction_date": at(day),
        "order_id": order_id,
        "processing_fee": money(fee),
        "net_payment_amount": money(net),
        "payout_reference_id": payout,
        "tax_details": {
            "data": [
                {
                    "tax_category": "FBMP_OTHER_TAXABLE",
                    "jurisdiction": "CALIFORNIA",
                    "imposition": "Sales and Use Tax",
                    "item_tax_rate": "8%",
                    "item_tax_amount": money("0.80"),
                }
            ]
        },
    }


def payout(ref, amount, day=DAY):
    return {
        "amount": money(amount),
        "payout_date": at(day, 12),
        "payout_reference_id": ref,
        "status": "COMPLETED",
    }


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def env(request, isolated_state):
    yield from _environment(request, isolated_state, request.param)


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def postgres_env(request, isolated_state):
    """`env` on Postgres only, for what only Postgres does (overlapped loads, query plans)."""
    yield from _environment(request, isolated_state, request.param)


def _environment(request, isolated_state, database: str):
    if database == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"sqlite:///{isolated_state / 'metasync.db'}"
    db = MetasyncDatabase(url)
    db.create_schema()
    registry = ShopRegistry(db, TokenVault.from_settings())
    register_shop(registry)
    oms = OmsAdapter(f"sqlite:///{isolated_state / 'oms.db'}")
    oms.create_schema()
    graph = FakeFinanceGraph()
    yield FakeMetasync(db, registry, graph), oms, graph
    oms.dispose()
    db.dispose()


def assert_set_based_equals_pure(db, oms, shop_id, settings=None):
    from tests.integration.finance.test_reconcile_property import (
        assert_set_based_equals_pure as check,
    )

    check(db, oms, shop_id, settings)


def dump(db: MetasyncDatabase) -> dict[str, list[tuple]]:
    """Every finance table's rows without load timestamps, to compare two runs (the publish log
    `finance_reconciliation_runs` grows by design and is left out)."""
    tables = {}
    with db.begin() as conn:
        for table in FINANCE_TABLES:
            if table.name == "finance_reconciliation_runs":
                continue
            columns = [c for c in table.columns if c.name not in VOLATILE]
            rows = conn.execute(select(*columns).order_by(*table.primary_key.columns)).all()
            tables[table.name] = [tuple(row) for row in rows]
    return tables


def test_day_loads_reconciles_and_publishes_and_a_rerun_changes_nothing(env):
    metasync, oms, graph = env
    shipped_oms_order(oms, "acme", "o1", unit_price="10.00", tax="0.80")
    graph.transactions = [sale("o1", net="10.47", fee="-0.33")]
    graph.payouts = [payout("P1", "10.47")]
    graph.payments["o1"] = []

    summary = ingest_finance(metasync, oms, "acme", DAY)

    assert (summary.payouts_loaded, summary.transactions_loaded, summary.published) == (1, 1, True)
    assert summary.order_statuses["matched"] == 1
    first = dump(metasync.db())
    assert len(first["finance_order_reconciliation"]) == 1
    with metasync.db().begin() as conn:
        p1 = conn.execute(select(finance_payout_reconciliation)).one()
    assert (p1.status, p1.transactions_net, p1.difference) == ("balanced", Decimal("10.47"), 0)

    ingest_finance(metasync, oms, "acme", DAY)
    assert dump(metasync.db()) == first


def test_backfill_of_an_earlier_day_leaves_the_tables_as_they_were(env):
    metasync, oms, graph = env
    shipped_oms_order(oms, "acme", "o1")
    shipped_oms_order(oms, "acme", "o2")
    before = DAY - timedelta(days=1)
    graph.transactions = [
        sale("o1", net="10.47", fee="-0.33", day=before, payout="P0"),
        sale("o2", net="10.47", fee="-0.33", payout="P1"),
    ]
    graph.payouts = [payout("P0", "10.47", day=before), payout("P1", "10.47")]

    ingest_finance(metasync, oms, "acme", before)
    ingest_finance(metasync, oms, "acme", DAY)
    forward = dump(metasync.db())
    ingest_finance(metasync, oms, "acme", before)  # a backfill after the later day

    assert dump(metasync.db()) == forward
    assert len(forward["finance_transactions"]) == 2


def test_unknown_transaction_is_quarantined_the_run_goes_on_and_ack_survives_reload(env):
    metasync, oms, graph = env
    shipped_oms_order(oms, "acme", "o1", tax="0.80")
    graph.transactions = [
        sale("o1", net="10.47", fee="-0.33"),
        sale("o1", net="1.00", fee="0", kind="LOYALTY_BONUS"),
    ]
    graph.payouts = [payout("P1", "11.47")]

    summary = ingest_finance(metasync, oms, "acme", DAY)

    assert summary.quarantined == 1 and summary.published
    assert summary.gate.open_quarantine == 1
    db = metasync.db()
    with db.begin() as conn:
        (row,) = conn.execute(select(finance_quarantine)).all()
        p1 = conn.execute(select(finance_payout_reconciliation)).one()
    assert "LOYALTY_BONUS" in row.reason
    assert (p1.status, p1.adjustment_amount, p1.difference) == ("adjusted", Decimal("1"), 0)
    assert_set_based_equals_pure(db, oms, "acme")

    assert store.acknowledge_quarantine(db, "acme", [row.quarantine_id], "ana", "bonus ok") == 1
    again = ingest_finance(metasync, oms, "acme", DAY)
    assert again.gate.open_quarantine == 0
    with db.begin() as conn:
        (row_after,) = conn.execute(select(finance_quarantine)).all()
    assert row_after.acknowledged_by == "ana"


def test_unbalanced_payout_blocks_publishing_and_keeps_the_last_good_tables(env):
    metasync, oms, graph = env
    shipped_oms_order(oms, "acme", "o1", tax="0.80")
    paid_on = DAY - timedelta(days=10)  # the later day loaded puts the payout past Meta's lag
    graph.transactions = [sale("o1", net="10.47", fee="-0.33", day=paid_on)]
    graph.payouts = [payout("P1", "10.47", day=paid_on)]
    ingest_finance(metasync, oms, "acme", paid_on)
    ingest_finance(metasync, oms, "acme", DAY)
    published = dump(metasync.db())["finance_order_reconciliation"]

    graph.payouts = [payout("P1", "99.00", day=paid_on)]  # a payout nothing explains
    summary = ingest_finance(metasync, oms, "acme", paid_on)

    assert not summary.published and summary.gate.unbalanced_payouts == ["P1"]
    assert dump(metasync.db())["finance_order_reconciliation"] == published
    with pytest.raises(store.PublishRefused):
        store.publish_reconciliation(metasync.db(), "acme")


def test_missing_and_mismatched_orders_fail_the_mismatch_rate(env):
    metasync, oms, graph = env
    for order_id in ("o1", "o2", "o3"):
        shipped_oms_order(oms, "acme", order_id)
    graph.transactions = [sale("o1", net="9.67", fee="-0.33"), sale("o9", net="5", fee="0")]
    graph.payouts = [payout("P1", "14.67")]
    settings = FinanceSettings(mismatch_rate_threshold=0.5, lag_business_days=0)

    summary = ingest_finance(metasync, oms, "acme", DAY, settings)

    # o2, o3 shipped "now" (after the day loaded), so they wait for Meta; o9 is unknown to the OMS
    assert summary.order_statuses["missing_in_oms"] == 1
    assert summary.order_statuses["matched"] == 1
    with metasync.db().begin() as conn:
        statuses = dict(
            conn.execute(
                select(
                    finance_order_reconciliation.c.order_id, finance_order_reconciliation.c.status
                )
            ).all()
        )
    assert statuses == {
        "o1": "matched",
        "o2": "pending_payout",
        "o3": "pending_payout",
        "o9": "missing_in_oms",
    }
    assert summary.published  # 1 of 4 mismatched: under the 0.5 threshold
    assert_set_based_equals_pure(metasync.db(), oms, "acme", settings)


def test_day_window_covers_meta_lag():
    from pipelines.finance.ingest import Window

    monday = date(2026, 3, 9)
    window = Window.for_day(monday, FinanceSettings())
    assert (window.start, window.day) == (date(2026, 3, 4), monday)


def test_monthly_report_has_settlement_totals_and_tax_by_jurisdiction(env, tmp_path):
    import csv

    from pipelines.finance.report import write_finance_report

    metasync, oms, graph = env
    shipped_oms_order(oms, "acme", "o1", tax="0.80")
    graph.transactions = [sale("o1", net="10.47", fee="-0.33")]
    graph.payouts = [payout("P1", "10.47")]
    ingest_finance(metasync, oms, "acme", DAY)

    out = tmp_path / "report.csv"
    written = write_finance_report(metasync.db(), "acme", DAY.strftime("%Y-%m"), out)

    rows = list(csv.DictReader(out.open()))
    assert written == len(rows) == 3
    day, total, tax = rows
    assert (day["section"], day["day"], day["sales_gross"], day["paid_out"]) == (
        "settlement",
        DAY.isoformat(),
        "10.80",
        "10.47",
    )
    assert (total["section"], total["net"], total["fees"]) == ("settlement_total", "10.47", "-0.33")
    assert (tax["jurisdiction"], tax["net_tax"], tax["remitted_by_seller"]) == (
        "CALIFORNIA",
        "0.80",
        "0.80",
    )
    with pytest.raises(ValueError, match="2026-03"):
        write_finance_report(metasync.db(), "acme", "March", out)


def test_reload_with_key_sets_in_temporary_tables_changes_nothing(env, monkeypatch):
    """Big key sets (payout re-fetches, the payments of a partition's orders) are matched
    through a temporary table on Postgres; forced here for every key set."""
    metasync, oms, graph = env
    monkeypatch.setattr(store, "_BIG_KEY_SET", 0)
    shipped_oms_order(oms, "acme", "o1")
    earlier = DAY - timedelta(days=7)  # outside the window: deleted by key on reload
    graph.transactions = [
        sale("o1", net="10.47", fee="-0.33", day=earlier, payout="P1"),
        sale("o1", net="0", fee="0", payout=None, kind="GOODWILL_TRANSFER"),
    ]
    graph.payouts = [payout("P1", "10.47")]
    ingest_finance(metasync, oms, "acme", DAY)
    first = dump(metasync.db())
    ingest_finance(metasync, oms, "acme", DAY)
    assert dump(metasync.db()) == first
    assert len(first["finance_transactions"]) == 2


def _payment(payment_id: str) -> dict:
    return {
        "id": payment_id,
        "total_amount": money("10.80"),
        "subtotal": {"items": money("10.00")},
        "tax": money("0.80"),
    }


def test_overlapped_load_rewrites_payments_when_the_partition_holds_other_orders(
    postgres_env, monkeypatch
):
    """Postgres writes the payments of the batch's orders while its transactions are written;
    when the partition's orders as stored differ, those are rolled back and the stored
    orders' payments fetched and written instead (one set, no duplicate)."""
    from pipelines.finance import ingest

    metasync, oms, graph = postgres_env
    shipped_oms_order(oms, "acme", "o1", unit_price="10.00", tax="0.80")
    graph.transactions = [sale("o1", net="10.47", fee="-0.33")]
    graph.payouts = [payout("P1", "10.47")]
    graph.payments["o1"] = [_payment("pay1")]
    graph.payments["o-left"] = [_payment("pay-left")]
    stored_orders = ingest._orders_in_window
    monkeypatch.setattr(
        ingest,
        "_orders_in_window",
        lambda db, shop_id, window: sorted([*stored_orders(db, shop_id, window), "o-left"]),
    )

    summary = ingest_finance(metasync, oms, "acme", DAY)

    assert summary.payments_loaded == 2
    with metasync.db().begin() as conn:
        stored = conn.execute(select(finance_order_payments.c.payment_id)).scalars().all()
    assert sorted(stored) == ["pay-left", "pay1"]


def test_staged_and_published_at_once_equals_publishing_the_staging(env):
    """ingest_finance writes the analyst order rows from its result beside the staging (on
    Postgres, on two connections); publishing the staging afterwards, as the Dagster publish
    step does, must leave every table as it was, in each currency's exponent."""
    metasync, oms, graph = env
    shipped_oms_order(oms, "acme", "o1", unit_price="10.00", tax="0.80")
    graph.transactions = [
        sale("o1", net="10.47", fee="-0.33"),
        sale("o-meta-only", net="5.00", fee="0", payout=None),  # missing_in_oms, with reason
        {**sale("o-yen", net="1200", fee="-30"), "processing_fee": money("-30", "JPY"),
         "net_payment_amount": money("1200", "JPY"),
         "tax_details": {"data": []}, "payout_reference_id": None},
    ]  # fmt: skip
    graph.payouts = [payout("P1", "10.47")]
    settings = FinanceSettings(mismatch_rate_threshold=1.0)

    summary = ingest_finance(metasync, oms, "acme", DAY, settings)

    assert summary.published
    assert summary.order_statuses["missing_in_oms"] == 2
    at_once = dump(metasync.db())
    store.publish_reconciliation(metasync.db(), "acme")
    assert dump(metasync.db()) == at_once
    with metasync.db().begin() as conn:
        yen = conn.execute(
            select(finance_order_reconciliation).where(
                finance_order_reconciliation.c.order_id == "o-yen"
            )
        ).one()
    assert (yen.currency, yen.meta_net, yen.meta_net_minor) == ("JPY", Decimal("1200"), 1200)


def test_meta_side_read_early_is_used_only_for_the_payouts_it_was_read_for(env):
    """ingest_finance reads the Meta side per order while the payments are written; a read
    made for other completed payouts (one completed meanwhile) is not used."""
    from concurrent.futures import Future

    import pandas as pd

    from pipelines.finance import setbased

    metasync, oms, graph = env
    shipped_oms_order(oms, "acme", "o1", unit_price="10.00", tax="0.80")
    graph.transactions = [sale("o1", net="10.47", fee="-0.33")]
    graph.payouts = [payout("P1", "10.47")]
    ingest_finance(metasync, oms, "acme", DAY)
    db, settings = metasync.db(), FinanceSettings().reconcile()
    fresh = setbased.reconcile_set_based(db, oms, "acme", settings)

    early = setbased.read_meta_side(db, "acme")
    assert early.completed == {"P1"}
    stale: Future = Future()
    stale.set_result(setbased.MetaSide(frozenset(), early.frame.iloc[0:0]))
    with_stale = setbased.reconcile_set_based(db, oms, "acme", settings, meta_side=stale)
    pd.testing.assert_frame_equal(with_stale.orders, fresh.orders)
    assert fresh.status_counts()["matched"] == 1


def test_summaries_right_after_a_load_never_nest_loops_over_fresh_rows(postgres_env):
    """Right after a load the statistics still count the tables as they were (autovacuum
    analyses them later); on that guess the planner nested loops over the tax lines and the
    payments (24 s for 20,000 transactions). The whole-table summaries must hash instead."""
    from sqlalchemy import text
    from sqlalchemy.dialects import postgresql

    from pipelines.finance import setbased

    metasync, oms, graph = postgres_env
    db = metasync.db()
    graph.transactions = [dict(sale(f"o{i}", net="10.47", fee="-0.33"), id=f"T{i}")
                          for i in range(300)]  # fmt: skip
    graph.payouts = [payout("P1", "3141.00")]
    graph.payments = {f"o{i}": [_payment(f"pay{i}")] for i in range(300)}
    ingest_finance(metasync, oms, "acme", DAY)

    class Recording:  # the connection, recording the summary's query instead of running it
        dialect = postgresql.dialect()

        def __init__(self):
            self.queries = []

        def execute(self, query):
            self.queries.append(query)
            return []

    recording = Recording()
    setbased._taxes(recording, "acme")
    (query,) = recording.queries
    sql = str(query.compile(dialect=recording.dialect, compile_kwargs={"literal_binds": True}))
    with db.begin() as conn:
        setbased._session_for_scans(conn)
        plan = "\n".join(conn.execute(text(f"EXPLAIN {sql}")).scalars())
    assert "Nested Loop" not in plan
    assert "Hash" in plan


def test_transactions_written_while_read_equal_the_whole_batch_write(postgres_env, monkeypatch):
    """The transactions asset on Postgres writes chunk by chunk while it reads, each key's
    first arrival only. The merge then puts right what that got wrong: a key the payout fetch
    returns in another version (that one wins), a key repeated in the window, a row of the
    per-row path, and a row an older load holds under a re-fetched key. The table must equal
    what writing the merged batch at once writes."""
    from pipelines.finance import columnar, ingest

    metasync, oms, graph = postgres_env
    db = metasync.db()
    monkeypatch.setattr(columnar, "CHUNK", 2)  # many chunks, repeats across them
    earlier = DAY - timedelta(days=7)
    graph.payouts = [payout("P1", "10.47")]
    graph.transactions = [
        dict(sale("o-old", net="5.00", fee="0", day=earlier, payout="P1"), id="T-old"),
    ]
    ingest_finance(metasync, oms, "acme", earlier)  # the older load holds T-old

    def txn(txn_id, order, net, payout=None, **extra):
        return dict(sale(order, net=net, fee="-0.33", payout=payout), id=txn_id, **extra)

    graph.transactions = [
        txn("T0", "o0", "1.00"),
        txn("T1", "o1", "10.00"),  # the window's version
        txn("T2", "o2", "2.00"),
        txn("T2", "o2", "2.50"),  # the window repeats a key: its first arrival stays
        txn("T3", "o3", "3.00", surprise_field="ignored"),  # per-row path
        txn("T4", "o4", "4.00"),
    ]
    refetched = [
        txn("T1", "o1", "10.47", payout="P1"),  # the payout's version wins
        dict(graph.transactions[0], id="T-old", order_id="o-old"),  # re-dated into the window
    ]
    original = graph.paginate

    def paginate(path, params):
        if params.get("payout_reference_id") == "P1":
            graph.calls += 1
            return iter(refetched)
        return original(path, params)

    monkeypatch.setattr(graph, "paginate", paginate)
    shop = metasync.registry().get("acme")
    window = ingest.Window.for_day(DAY, FinanceSettings())
    with metasync.graph_for("acme") as g:
        ingest.load_payouts(db, g, shop, window)  # the day's payout P1: re-fetched by reference
        result = ingest.load_transactions(db, g, shop, window)
        batch, rejects = ingest.read_transactions(g, shop, window, ["P1"])
    assert batch.slow, "a row took the per-row path"
    streamed = dump(db)
    ingest.write_transactions(db, "acme", window, batch, rejects)
    assert dump(db) == streamed
    t = finance_transactions
    with db.begin() as conn:
        net = dict(conn.execute(select(t.c.transaction_key, t.c.net_amount)).all())
    assert result.loaded == 6
    assert net["id:T1"] == Decimal("10.47")
    assert net["id:T2"] == Decimal("2.00")
    assert net["id:T-old"] == Decimal("1.00")  # the older row replaced, not duplicated


def test_a_read_that_fails_midway_leaves_the_transactions_as_they_were(postgres_env, monkeypatch):
    """Chunks already written while the read ran are rolled back with it: nothing half-written."""
    from pipelines.finance import columnar, ingest

    metasync, oms, graph = postgres_env
    db = metasync.db()
    monkeypatch.setattr(columnar, "CHUNK", 2)
    graph.payouts = [payout("P1", "10.47")]
    graph.transactions = [dict(sale(f"o{i}", net="1.00", fee="0"), id=f"T{i}") for i in range(3)]
    ingest_finance(metasync, oms, "acme", DAY)
    before = dump(db)

    def failing(path, params):
        yield from [dict(sale(f"n{i}", net="2.00", fee="0"), id=f"N{i}") for i in range(5)]
        raise ConnectionError("Graph went away")

    monkeypatch.setattr(graph, "paginate", failing)
    shop = metasync.registry().get("acme")
    window = ingest.Window.for_day(DAY, FinanceSettings())
    with pytest.raises(ConnectionError):
        ingest.load_transactions(db, graph, shop, window)
    assert dump(db) == before


def test_payments_step_written_while_read_equals_the_whole_batch_write(postgres_env, monkeypatch):
    """The payments asset on Postgres writes chunk by chunk while it reads, then the payments
    of the per-row path; the tables must equal what writing the whole batch at once writes."""
    from pipelines.finance import columnar, ingest

    metasync, oms, graph = postgres_env
    db = metasync.db()
    monkeypatch.setattr(columnar, "CHUNK", 2)
    graph.payouts = [payout("P1", "10.47")]
    graph.transactions = [dict(sale(f"o{i}", net="1.00", fee="0"), id=f"T{i}") for i in range(5)]
    graph.payments = {f"o{i}": [_payment(f"pay{i}")] for i in range(5)}
    graph.payments["o3"] = [dict(_payment("pay3"), surprise_field="per-row path")]
    shop = metasync.registry().get("acme")
    window = ingest.Window.for_day(DAY, FinanceSettings())
    with metasync.graph_for("acme") as g:
        ingest.load_payouts(db, g, shop, window)
        ingest.load_transactions(db, g, shop, window)
        step = ingest.load_order_payments(db, g, shop, window)
        batch = ingest.read_payments(g, [f"o{i}" for i in range(5)])
    assert step.loaded == 5 and batch.slow, "one payment took the per-row path"
    streamed = dump(db)
    ingest.write_payments(db, "acme", window, [f"o{i}" for i in range(5)], batch)
    assert dump(db) == streamed
    assert len(streamed["finance_order_payments"]) == 5
