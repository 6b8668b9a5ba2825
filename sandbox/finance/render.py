"""Graph JSON of finance objects: transaction_detail and payout."""

from typing import Any

from sandbox.core.state import SandboxState
from sandbox.finance.models import FinanceBackend, PayoutView, TransactionRecord
from sandbox.orders.models import Payment, orders_backend
from sandbox.orders.render import edge, money, timestamp


def render_transaction(
    state: SandboxState, finance: FinanceBackend, record: TransactionRecord
) -> dict[str, Any]:
    c = record.currency
    body: dict[str, Any] = {
        "id": record.id,
        "transaction_type": record.transaction_type,
        "transaction_date": timestamp(record.transaction_date),
        "processing_fee": money(record.processing_fee, c),
        "net_payment_amount": money(record.net, c),
        "transfer_id": f"po_{record.id}",
        "items": edge(
            [row | {"price_per_unit": money(row["price_per_unit"], c)} for row in record.items]
        ),
        "tax_details": edge(
            [
                row | {"item_tax_amount": money(row["item_tax_amount"], c)}
                for row in record.tax_details
            ]
        ),
    }
    if record.tax_rate:
        body["tax_rate"] = record.tax_rate
    if record.order_id:
        order = orders_backend(state).orders.get(record.order_id)
        body["order_id"] = record.order_id
        if order is not None:
            body["order_details"] = {
                "id": order.id,
                "order_status": {"state": order.state},
                "created": timestamp(order.created),
                "last_updated": timestamp(order.last_updated),
            }
    if record.merchant_order_id:
        body["merchant_order_id"] = record.merchant_order_id
    reference = finance.payout_reference_of(state, record)
    if reference:
        body["payout_reference_id"] = reference
    return body


def render_payout(view: PayoutView) -> dict[str, Any]:
    return {
        "amount": money(view.amount, view.currency),
        "payout_date": timestamp(view.payout_date),
        "payout_reference_id": view.reference_id,
        "status": "COMPLETED",
        "transfer_id": f"tr_{view.reference_id.lower()}",
    }


def transactions_of_payment(state: SandboxState, finance: FinanceBackend):
    """A function giving the rendered transactions of a payment (refunds go on the first)."""

    def rows(payment: Payment) -> list[dict[str, Any]]:
        found = []
        for record in finance.transactions:
            if record.payment_id == payment.id:
                found.append(record)
            elif record.refund_id and _first_payment_id(state, record) == payment.id:
                found.append(record)
        return [render_transaction(state, finance, r) for r in found]

    return rows


def _first_payment_id(state: SandboxState, record: TransactionRecord) -> str | None:
    order = orders_backend(state).orders.get(record.order_id or "")
    return order.payments[0].id if order and order.payments else None
