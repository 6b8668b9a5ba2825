"""Telling our cancellations and refunds from Meta's by what they do, not by when they appear."""

from decimal import Decimal

import pytest
from sqlalchemy import select

from pipelines.orders import sync
from pipelines.orders.intake import orders_context, run_order_intake
from pipelines.orders.mapping import plan_refund
from pipelines.orders.sync import pending_changes, pull_meta_changes, push_order_changes
from resources.db.orders_tables import order_meta_events
from resources.meta.orders import OrdersApi
from resources.oms import EventLine
from tests.integration.orders.test_sync import DISCOUNTED_ORDER


@pytest.fixture
def shipped(onboard, metasync, oms, place_order):
    """An imported order whose first two lines shipped (and were pushed)."""
    onboard("acme")
    placed = place_order(**DISCOUNTED_ORDER)
    run_order_intake(metasync, oms, "acme")
    order = oms.find_order("acme", "meta", placed["id"])
    a, b, _ = order.lines
    oms.ship(order.order_id, [EventLine(a.line_id, 1), EventLine(b.line_id, 2)], "UPS", "1Z")
    assert _push(metasync, oms).synced == 1
    return order


def _push(metasync, oms):
    with orders_context(metasync, oms, "acme") as ctx:
        return push_order_changes(ctx, pending_changes(ctx))


def _pull(metasync, oms):
    with orders_context(metasync, oms, "acme") as ctx:
        return pull_meta_changes(ctx)


def _origins(metasync) -> list[tuple[str, str]]:
    with metasync.db().begin() as conn:
        rows = conn.execute(select(order_meta_events.c.kind, order_meta_events.c.origin)).all()
    return sorted((row.kind, row.origin) for row in rows)


def test_a_pull_between_our_refund_and_its_claim_does_not_take_it_for_metas(
    shipped, metasync, oms, monkeypatch
):
    order = shipped
    a = order.lines[0]
    oms.refund(order.order_id, plan_refund(order, {a.line_id: 1}), reason_code="DAMAGED_GOODS")

    def die(*args, **kwargs):
        raise RuntimeError("process killed after Meta applied the refund")

    monkeypatch.setattr(sync, "_claim_new_meta_events", die)
    with pytest.raises(RuntimeError):
        _push(metasync, oms)
    monkeypatch.undo()

    pulled = _pull(metasync, oms)  # runs before the push is retried

    assert pulled.refunds == 0  # the pending intent matched: it is ours, not Meta's
    assert [r.origin for r in oms.refunds_for(order.order_id)] == ["oms"]
    assert _push(metasync, oms).synced == 1  # the retried push settles without resending
    with orders_context(metasync, oms, "acme") as ctx:
        assert len(ctx.api.list_refunds(order.external_ref)) == 1
    assert _origins(metasync) == [("refund", "metasync")]


def test_a_meta_refund_landing_right_after_ours_is_still_metas(
    shipped, metasync, oms, sandbox_admin, monkeypatch
):
    order = shipped
    a, b, _ = order.lines
    real_refund = OrdersApi.refund_order

    def refund_then_meta_refunds_too(self, order_id, *args, **kwargs):
        result = real_refund(self, order_id, *args, **kwargs)
        # Meta support refunds another item in the instant before metasync lists the refunds.
        sandbox_admin.meta_refund("acme", order_id, items=[{
            "item_id": b.external_line_id,
            "item_refund_amount": {"amount": "5.00", "currency": "EUR"},
        }])  # fmt: skip
        return result

    monkeypatch.setattr(OrdersApi, "refund_order", refund_then_meta_refunds_too)
    oms.refund(order.order_id, plan_refund(order, {a.line_id: 1}), reason_code="DAMAGED_GOODS")
    assert _push(metasync, oms).synced == 1
    monkeypatch.undo()

    pulled = _pull(metasync, oms)

    assert pulled.refunds == 1
    refunds = sorted(oms.refunds_for(order.order_id), key=lambda r: r.origin)
    assert [(r.origin, r.items_amount) for r in refunds] == [
        ("meta", Decimal("5.00")),
        ("oms", plan_refund(order, {a.line_id: 1})[0].amount),
    ]
    assert _origins(metasync) == [("refund", "meta"), ("refund", "metasync")]
