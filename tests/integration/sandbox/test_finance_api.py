"""FinanceApi against the live sandbox: transactions and payouts derived from order events."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from resources.meta.finance import FinanceApi
from resources.meta.orders import OrdersApi
from resources.meta.orders_models import Money, RefundItem, TrackingInfo


@pytest.fixture
def apis(usd_shop):
    profile, graph = usd_shop
    return (
        OrdersApi(graph, cms_id=profile.cms_id, page_id=profile.page_id),
        FinanceApi(graph, cms_id=profile.cms_id, page_id=profile.page_id),
    )


def ship_order(sandbox_admin, orders: OrdersApi, n: int, tax_remitted: bool) -> str:
    spec = {
        "items": [{"retailer_id": "A", "quantity": 2, "price": "20.00", "tax_rate": "0.0725"}],
        "shipping_price": "5.00",
        "tax_remitted": tax_remitted,
    }
    answer = sandbox_admin.call("POST", "/shops/acme/orders", json={"orders": [spec]})
    order_id = answer["orders"][0]["id"]
    orders.acknowledge_order(order_id, f"OMS-{n}", f"ack-{n}")
    tracking = TrackingInfo(carrier="UPS", tracking_number=f"T{n}")
    orders.create_shipment(order_id, None, tracking, None, f"ship-{n}")
    return order_id


def test_sales_refunds_and_payout_sum(apis, sandbox_admin):
    """A shipment makes a SALE (fee negative), a refund a REFUND (fee back); after the lag the
    payout equals the sum of its transactions' net amounts."""
    orders, finance = apis
    start = datetime.now(UTC) - timedelta(days=1)
    remitted = ship_order(sandbox_admin, orders, 1, tax_remitted=True)
    kept_tax = ship_order(sandbox_admin, orders, 2, tax_remitted=False)
    orders.refund_order(
        remitted,
        "rf-1",
        items=[RefundItem(retailer_id="A", quantity=1)],
        reason_code="DAMAGED_GOODS",
    )

    txns = list(finance.transactions(start, start + timedelta(days=2)))
    by_type = sorted((t.transaction_type, t.resolved_order_id) for t in txns)
    assert by_type == sorted([("SALE", remitted), ("SALE", kept_tax), ("REFUND", remitted)])
    sale = next(t for t in txns if t.transaction_type == "SALE" and t.order_id == kept_tax)
    # 40.00 items + 5.00 shipping + 2.90 tax (not remitted) = 47.90; fee 5% = 2.40.
    assert sale.processing_fee == Money.of("-2.40", "USD")
    assert sale.net_payment_amount == Money.of("45.50", "USD")
    refund = next(t for t in txns if t.transaction_type == "REFUND")
    assert refund.net_payment_amount.amount < 0 < refund.processing_fee.amount
    assert all(t.payout_reference_id is None for t in txns)
    assert list(finance.payouts(start, start + timedelta(days=30))) == []

    sandbox_admin.advance_clock(6 * 86400)
    (payout,) = finance.payouts(start, start + timedelta(days=30))
    members = list(finance.transactions(payout_reference_id=payout.payout_reference_id))
    assert len(members) == 3
    assert sum(t.net_payment_amount.amount for t in members) == payout.amount.amount
    assert payout.amount.amount == Decimal("45.50") + sum(
        t.net_payment_amount.amount for t in members if t.order_id == remitted
    )
    payments = finance.order_payments(remitted)
    assert {t.transaction_type for t in payments[0].transaction_details} == {"SALE", "REFUND"}


def test_injected_odd_transactions_reach_the_client(apis, sandbox_admin):
    """An unknown type and a missing order id arrive intact, for the caller to quarantine."""
    _, finance = apis
    start = datetime.now(UTC) - timedelta(hours=1)
    sandbox_admin.call(
        "POST",
        "/shops/acme/finance/transactions",
        json={"transaction_type": "CHARGEBACK_SURPRISE", "amount": "-3.00"},
    )
    (odd,) = finance.transactions(start, start + timedelta(days=1))
    assert odd.transaction_type == "CHARGEBACK_SURPRISE" and not odd.known_type
    assert odd.resolved_order_id is None
    assert odd.net_payment_amount == Money.of("-3.00", "USD")
