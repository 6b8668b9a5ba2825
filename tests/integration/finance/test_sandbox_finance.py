"""Finance end to end against the live sandbox: orders shipped, cancelled and refunded on both
sides, payouts made by the sandbox clock, then ingest_finance and the Dagster assets."""

from datetime import date, timedelta

import dagster as dg
import pytest
from sqlalchemy import select

from pipelines.finance.assets import finance_assets
from pipelines.finance.ingest import ingest_finance
from pipelines.finance.partitions import finance_partition_key
from pipelines.orders.resources import OmsResource
from pipelines.resources import MetasyncResource
from resources.db.finance_tables import (
    finance_order_reconciliation,
    finance_payout_reconciliation,
    finance_quarantine,
)
from resources.meta.orders import OrdersApi
from resources.oms.adapter import OmsAdapter
from resources.settings import get_settings
from tests.integration.finance.scenario import OrderPlayer

SETTLE_SECONDS = 8 * 86400  # past the sandbox's payout lag of 3 business days


def line(sku: str, quantity: int, price: str, tax_rate: str = "0.0725") -> dict:
    return {"retailer_id": sku, "quantity": quantity, "price": price, "tax_rate": tax_rate}


@pytest.fixture
def world(onboard, sandbox, sandbox_admin, metasync_db, isolated_state, monkeypatch):
    monkeypatch.setenv("METASYNC_DATABASE_URL", metasync_db.url)
    monkeypatch.setenv("METASYNC_OMS_DATABASE_URL", f"sqlite:///{isolated_state / 'oms.db'}")
    get_settings.cache_clear()
    profile = onboard("acme", currency="USD")
    metasync = MetasyncResource()
    oms = OmsAdapter(get_settings().resolved_oms_database_url())
    oms.create_schema()
    graph = metasync.graph_for("acme")
    orders = OrdersApi(graph, profile.cms_id, profile.page_id)
    player = OrderPlayer(sandbox_admin, orders, oms, "acme")
    yield metasync, oms, player, sandbox
    graph.close()
    oms.dispose()


def days_to_settle(sandbox) -> list[date]:
    """Every day from today (sandbox clock) until after the payouts, once the clock moved."""
    today = sandbox.state.now().date()
    return [today + timedelta(days=n) for n in range(0, 9)]


def test_shipped_cancelled_and_refunded_orders_reconcile_to_the_cent(world, sandbox_admin):
    metasync, oms, player, sandbox = world
    days = days_to_settle(sandbox)
    plain = player.place({"items": [line("A", 2, "20.00")], "shipping_price": "5.00"})
    player.ship_rest(plain)
    mixed = player.place(
        {
            "items": [line("A", 3, "9.99"), line("B", 1, "15.00", "0")],
            "order_discounts": [
                {"amount": "3.00", "sponsor": "merchant"},
                {"amount": "2.00", "sponsor": "facebook"},
            ],
            "tax_remitted": False,
        }
    )
    player.cancel(mixed, "A", 1)
    player.ship_rest(mixed)
    player.refund(mixed, "B", 1)
    sandbox_admin.advance_clock(SETTLE_SECONDS)

    for day in days:
        summary = ingest_finance(metasync, oms, "acme", day)

    assert summary.published, summary.gate
    with metasync.db().begin() as conn:
        orders = conn.execute(select(finance_order_reconciliation)).all()
        payouts = conn.execute(select(finance_payout_reconciliation)).all()
    assert {o.order_id: (o.status, o.difference) for o in orders} == {
        plain.meta_id: ("matched", 0),
        mixed.meta_id: ("matched", 0),
    }
    assert payouts and all(p.status == "balanced" for p in payouts)
    assert sum(p.payout_amount for p in payouts) == sum(o.meta_net for o in orders)


def test_odd_transaction_is_quarantined_and_the_day_still_loads(world, sandbox_admin):
    metasync, oms, player, sandbox = world
    order = player.place({"items": [line("A", 1, "10.00")]})
    player.ship_rest(order)
    sandbox_admin.inject_transaction("acme", "CHARGEBACK_SURPRISE", "-3.00", order.meta_id)

    summary = ingest_finance(metasync, oms, "acme", sandbox.state.now().date())

    assert (summary.transactions_loaded, summary.quarantined) == (1, 1)
    with metasync.db().begin() as conn:
        (reject,) = conn.execute(select(finance_quarantine)).all()
    assert "CHARGEBACK_SURPRISE" in reject.reason


def test_dagster_assets_materialize_a_shop_day_and_gate_publishing(world, sandbox_admin):
    metasync, oms, player, sandbox = world
    sandbox_admin.advance_clock(-2 * 86400)  # today's daily partition does not exist yet
    order = player.place({"items": [line("A", 1, "10.00")]})
    player.ship_rest(order)
    day = sandbox.state.now().date().isoformat()
    resources = {"metasync": metasync, "oms": OmsResource()}

    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions("shops", ["acme"])
        result = dg.materialize(
            finance_assets,
            partition_key=finance_partition_key(day, "acme"),
            resources=resources,
            instance=instance,
        )
        assert result.success
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        assert checks == {
            "quarantine_reviewed": True,
            "payouts_balanced": True,
            "mismatch_rate_under_threshold": True,
        }
        published = result.asset_materializations_for_node("finance_reconciled")
        assert published[0].metadata["finance_order_reconciliation"].value == 1

        # The OMS loses track of the order: Meta's sale becomes missing_in_oms (1 of 1 orders).
        with oms.engine.begin() as conn:
            conn.exec_driver_sql("UPDATE oms_orders SET external_ref = 'elsewhere'")
        failed = dg.materialize(
            finance_assets,
            partition_key=finance_partition_key(day, "acme"),
            resources=resources,
            instance=instance,
            raise_on_error=False,
        )
        assert not failed.success
        checks = {e.check_name: e.passed for e in failed.get_asset_check_evaluations()}
        assert checks["mismatch_rate_under_threshold"] is False
        assert failed.asset_materializations_for_node("finance_reconciled") == []
    with metasync.db().begin() as conn:
        (row,) = conn.execute(select(finance_order_reconciliation)).all()
    assert row.status == "pending_payout"  # the last good publish stays
