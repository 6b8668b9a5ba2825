"""Meta's commerce Finance API for one shop: payouts, transactions, order payments.

    api = FinanceApi(graph, cms_id=shop.cms_id, page_id=shop.page_id)
    for payout in api.payouts(start, end):
        txns = list(api.transactions(payout_reference_id=payout.payout_reference_id))

All amounts are Decimal with their currency (orders_models.Money). Transaction types Meta may add
later arrive as plain strings (`Transaction.known_type` is False) so the caller can quarantine
them instead of failing. Meta's data may lag up to 3 business days after a payout (orders.md
§13.3): callers re-pull a window that starts a few days before the payout date.
"""

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from resources.meta.orders import PAYMENT_FIELDS, OrdersRequestError, unix_seconds
from resources.meta.orders_models import OrderPayment, Payout, Transaction
from resources.meta.transport import GraphClient

PAYOUT_FIELDS = "amount,payout_date,payout_reference_id,status,transfer_id"
TRANSACTION_FIELDS = (
    "id,transaction_type,transaction_date,order_id,merchant_order_id,order_details,"
    "items{id,product_id,product_name,quantity,price_per_unit,tax_details},transfer_id,"
    "processing_fee,net_payment_amount,tax_rate,tax_details,payout_reference_id"
)


class FinanceApi:
    """The finance edges of one shop (Meta documents them on the Page; the CMS also works)."""

    def __init__(self, graph: GraphClient, cms_id: str, page_id: str | None = None) -> None:
        self.graph = graph
        self.cms_id = cms_id
        self.page_id = page_id

    @property
    def _node(self) -> str:
        return self.page_id or self.cms_id

    def payouts(self, start: datetime, end: datetime) -> Iterator[Payout]:
        params = {
            "start_time": unix_seconds(start),
            "end_time": unix_seconds(end),
            "fields": PAYOUT_FIELDS,
        }
        for row in self.graph.paginate(f"{self._node}/commerce_payouts", params):
            yield Payout.model_validate(row)

    def transactions(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        payout_reference_id: str | None = None,
    ) -> Iterator[Transaction]:
        """Transactions of one payout, or of a time window [start, end)."""
        if payout_reference_id is None and (start is None or end is None):
            raise OrdersRequestError("give payout_reference_id, or both start and end")
        params: dict[str, Any] = {"fields": TRANSACTION_FIELDS}
        if payout_reference_id is not None:
            params["payout_reference_id"] = payout_reference_id
        if start is not None:
            params["start_time"] = unix_seconds(start)
        if end is not None:
            params["end_time"] = unix_seconds(end)
        for row in self.graph.paginate(f"{self._node}/commerce_transactions", params):
            yield Transaction.model_validate(row)

    def order_payments(self, order_id: str) -> list[OrderPayment]:
        rows = self.graph.paginate(f"{order_id}/payments", {"fields": PAYMENT_FIELDS})
        return [OrderPayment.model_validate(row) for row in rows]
