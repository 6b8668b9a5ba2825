"""Meta's Order Management API for one shop: list, acknowledge, ship, cancel, refund, returns.

    api = OrdersApi(graph, cms_id=shop.cms_id, page_id=shop.page_id)
    for order in api.list_orders(states=("CREATED",), updated_after=watermark):
        ...
    api.acknowledge_orders([OrderAck(order_id=o.id, merchant_order_reference="OMS-1")],
                           idempotency_key=key)

Every write takes an `idempotency_key`: the caller derives it from what the write does
(resources/db/outbox.py) and records it before calling, so a retry after a crash replays the same
key and Meta applies the effect once. This module never invents a key.

Wire shapes follow orders.md (§4-§10) and the samples beside it. Writes send a JSON body.
"""

import logging
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from resources.meta.orders_models import (
    AckResult,
    CancelItem,
    CancellationResult,
    CancelReasonCode,
    Fulfillment,
    MetaCancellation,
    MetaOrder,
    MetaOrderItem,
    MetaRefund,
    MetaReturn,
    MetaShipment,
    Money,
    OrderAck,
    OrderPayment,
    PromotionDetail,
    RefundDeduction,
    RefundItem,
    RefundReasonCode,
    RefundResult,
    ReturnUpdateEvent,
    ShipmentItem,
    ShipmentResult,
    TrackingInfo,
    WriteResult,
)
from resources.meta.transport import GraphClient

logger = logging.getLogger(__name__)

MAX_ACKS_PER_CALL = 100
MAX_IDEMPOTENCY_KEY_LENGTH = 100

PROMOTION_FIELDS = (
    "promotion_id,retailer_id,campaign_name,coupon_code,applied_amount,applied_after_tax,"
    "sponsor,target_granularity"
)
ITEM_FIELDS = (
    "id,product_id,retailer_id,quantity,price_per_unit,product_name,tax_details,"
    f"status,amount_available_for_refund,promotion_details{{{PROMOTION_FIELDS}}}"
)
SHIPPING_OPTION_FIELDS = "name,price,calculated_tax,estimated_shipping_time"
# What metasync imports an order with: everything an OMS order and the finance reconciliation need.
DEFAULT_ORDER_FIELDS = (
    "id,order_status,created,last_updated,merchant_order_id,channel,ship_by_date,"
    "buyer_details,shipping_address,"
    f"selected_shipping_option{{{SHIPPING_OPTION_FIELDS}}},"
    "estimated_payment_details,is_group_buy,is_test_order,"
    f"items{{{ITEM_FIELDS}}},promotion_details{{{PROMOTION_FIELDS}}}"
)
# Enough to decide whether something changed (sensors, watermarks).
SUMMARY_ORDER_FIELDS = "id,order_status,created,last_updated,merchant_order_id"

SHIPMENT_FIELDS = (
    "id,external_shipment_id,tracking_info,items{id,retailer_id,product_id,quantity,tax}"
)
CANCELLATION_FIELDS = (
    "id,cancel_reason,items{id,retailer_id,product_id,quantity,promotion_allocations}"
)
REFUND_FIELDS = (
    "id,refund_reason,refund_amount{amount,currency,subtotal,shipping,tax,total},"
    "items{id,retailer_id,product_id,refund_subtotal,quantity}"
)
RETURN_FIELDS = (
    "id,return_status,return_message,merchant_return_id,item_return_quantities,item_return_reasons"
)
PAYMENT_FIELDS = (
    "id,subtotal,tax,tax_remitted,total_amount,shipments{id,external_shipment_id},"
    "transaction_details,items{id,quantity,promotion_allocations}"
)


class OrdersRequestError(ValueError):
    """metasync asked for something Meta would refuse; nothing was sent."""


def unix_seconds(moment: datetime) -> int:
    """Graph time filters are Unix seconds (orders.md §1.4); naive datetimes are refused."""
    if moment.tzinfo is None:
        raise OrdersRequestError(f"{moment!r} has no time zone; give an aware datetime")
    return int(moment.timestamp())


def _check_key(idempotency_key: str) -> str:
    if not idempotency_key or len(idempotency_key) > MAX_IDEMPOTENCY_KEY_LENGTH:
        raise OrdersRequestError(
            f"idempotency_key must be 1-{MAX_IDEMPOTENCY_KEY_LENGTH} characters"
        )
    return idempotency_key


class OrdersApi:
    """The order edges of one shop's commerce account (CMS) and Page."""

    def __init__(self, graph: GraphClient, cms_id: str, page_id: str | None = None) -> None:
        self.graph = graph
        self.cms_id = cms_id
        self.page_id = page_id

    # -- reading orders ---------------------------------------------------------------------------

    def list_orders(
        self,
        states: Sequence[str] = ("CREATED",),
        updated_after: datetime | None = None,
        updated_before: datetime | None = None,
        filters: list[str] | None = None,
        fields: str = DEFAULT_ORDER_FIELDS,
        limit: int | None = None,
        malformed: list[str] | None = None,
    ) -> Iterator[MetaOrder]:
        """Every order in any of `states` (OR) matching all `filters` (AND), following pages.

        A row Meta sent malformed is skipped with a warning, not fatal to the listing; its id
        (when it has one) is added to `malformed` so the caller can read that order again."""
        params: dict[str, Any] = {"state": ",".join(states), "fields": fields}
        if updated_after is not None:
            params["updated_after"] = unix_seconds(updated_after)
        if updated_before is not None:
            params["updated_before"] = unix_seconds(updated_before)
        if filters:
            params["filters"] = ",".join(f.lower() for f in filters)
        if limit:
            params["limit"] = limit
        for row in self.graph.paginate(f"{self.cms_id}/commerce_orders", params):
            try:
                yield MetaOrder.model_validate(row)
            except ValidationError as exc:
                order_id = row.get("id") if isinstance(row, dict) else None
                logger.warning("malformed order %r in a listing skipped: %s", order_id, exc)
                if malformed is not None and isinstance(order_id, str):
                    malformed.append(order_id)

    def get_order(self, order_id: str, fields: str = DEFAULT_ORDER_FIELDS) -> MetaOrder:
        return MetaOrder.model_validate(self.graph.get(order_id, {"fields": fields}))

    def list_items(self, order_id: str, fields: str = ITEM_FIELDS) -> list[MetaOrderItem]:
        rows = self.graph.paginate(f"{order_id}/items", {"fields": fields})
        return [MetaOrderItem.model_validate(row) for row in rows]

    def promotion_details(self, order_id: str) -> list[PromotionDetail]:
        """The order's offers, aggregated per original offer (orders.md §11.1)."""
        rows = self.graph.paginate(f"{order_id}/promotion_details", {"fields": PROMOTION_FIELDS})
        return [PromotionDetail.model_validate(row) for row in rows]

    # -- acknowledgement --------------------------------------------------------------------------

    def acknowledge_orders(self, acks: list[OrderAck], idempotency_key: str) -> list[AckResult]:
        """Acknowledge up to 100 orders in one call; one result per order (partial failure is
        normal). A retry with the same key returns the same results: retry failures with a new
        key (orders.md §1.7)."""
        _check_key(idempotency_key)
        if not acks:
            raise OrdersRequestError("acknowledge_orders needs at least one order")
        if len(acks) > MAX_ACKS_PER_CALL:
            raise OrdersRequestError(
                f"{len(acks)} orders in one acknowledgement; Meta takes at most "
                f"{MAX_ACKS_PER_CALL}: split the batch"
            )
        ids = [ack.order_id for ack in acks]
        if len(set(ids)) != len(ids):
            raise OrdersRequestError("an order appears twice in one acknowledgement")

        node = self.page_id or self.cms_id
        body = {"idempotency_key": idempotency_key, "orders": [a.to_graph() for a in acks]}
        answer = self.graph.post(f"{node}/acknowledge_orders", body)
        results = [AckResult.model_validate(row) for row in answer.get("orders", [])]
        logger.info(
            "shop %s: acknowledged %d of %d orders",
            self.graph.shop_id,
            sum(r.ok for r in results),
            len(acks),
        )
        return results

    def acknowledge_order(
        self, order_id: str, merchant_order_reference: str | None, idempotency_key: str
    ) -> AckResult:
        body: dict[str, Any] = {"idempotency_key": _check_key(idempotency_key)}
        if merchant_order_reference:
            body["merchant_order_reference"] = merchant_order_reference
        answer = self.graph.post(f"{order_id}/acknowledge_order", body)
        return AckResult.model_validate({"id": order_id} | answer)

    # -- shipments --------------------------------------------------------------------------------

    def create_shipment(
        self,
        order_id: str,
        items: list[ShipmentItem] | None,
        tracking: TrackingInfo,
        external_shipment_id: str | None,
        idempotency_key: str,
        fulfillment: Fulfillment | None = None,
        merchant_order_reference: str | None = None,
    ) -> ShipmentResult:
        """Ship `items` (None = every unfulfilled unit) in one parcel; one tracking number per
        shipment. Attaching the shipment captures payment (orders.md §7.1)."""
        if items is not None and not items:
            raise OrdersRequestError("a shipment must contain at least one item")
        body: dict[str, Any] = {
            "idempotency_key": _check_key(idempotency_key),
            "tracking_info": tracking.to_graph(),
        }
        if items is not None:
            body["items"] = [item.to_graph() for item in items]
        if external_shipment_id:
            body["external_shipment_id"] = external_shipment_id
        if fulfillment is not None:
            body["fulfillment"] = fulfillment.to_graph()
        if merchant_order_reference:
            body["merchant_order_reference"] = merchant_order_reference
        answer = self.graph.post(f"{order_id}/shipments", body)
        return ShipmentResult.model_validate(
            {"external_shipment_id": external_shipment_id} | answer
        )

    def update_shipment(
        self,
        order_id: str,
        tracking: TrackingInfo,
        idempotency_key: str,
        external_shipment_id: str | None = None,
        shipment_id: str | None = None,
    ) -> WriteResult:
        """Change a shipment's carrier, tracking number or method (never its items)."""
        if (external_shipment_id is None) == (shipment_id is None):
            raise OrdersRequestError("give exactly one of external_shipment_id or shipment_id")
        body: dict[str, Any] = {
            "idempotency_key": _check_key(idempotency_key),
            "tracking_info": tracking.to_graph(),
        }
        if external_shipment_id:
            body["external_shipment_id"] = external_shipment_id
        else:
            body["shipment_id"] = shipment_id
        return WriteResult.model_validate(self.graph.post(f"{order_id}/update_shipment", body))

    def list_shipments(self, order_id: str) -> list[MetaShipment]:
        rows = self.graph.paginate(f"{order_id}/shipments", {"fields": SHIPMENT_FIELDS})
        return [MetaShipment.model_validate(row) for row in rows]

    # -- cancellations ----------------------------------------------------------------------------

    def cancel_order(
        self,
        order_id: str,
        idempotency_key: str,
        items: list[CancelItem] | None = None,
        reason_code: str = CancelReasonCode.CUSTOMER_REQUESTED,
        reason_description: str | None = None,
        restock_items: bool = False,
    ) -> CancellationResult:
        """Cancel unshipped units: `items` None cancels everything still open."""
        if items is not None and not items:
            raise OrdersRequestError("a partial cancellation must name at least one item")
        if reason_code not in CancelReasonCode.__members__:
            raise OrdersRequestError(f"unknown cancel reason_code {reason_code!r}")
        reason: dict[str, str] = {"reason_code": str(reason_code)}
        if reason_description:
            reason["reason_description"] = reason_description
        body: dict[str, Any] = {
            "idempotency_key": _check_key(idempotency_key),
            "cancel_reason": reason,
            "restock_items": restock_items,
        }
        if items is not None:
            body["items"] = [item.to_graph() for item in items]
        answer = self.graph.post(f"{order_id}/cancellations", body)
        return CancellationResult.model_validate(answer)

    def list_cancellations(self, order_id: str) -> list[MetaCancellation]:
        rows = self.graph.paginate(f"{order_id}/cancellations", {"fields": CANCELLATION_FIELDS})
        return [MetaCancellation.model_validate(row) for row in rows]

    # -- refunds ----------------------------------------------------------------------------------

    def refund_order(
        self,
        order_id: str,
        idempotency_key: str,
        items: list[RefundItem] | None = None,
        shipping: Money | None = None,
        deductions: list[RefundDeduction] | None = None,
        reason_code: str = RefundReasonCode.REFUND_REASON_OTHER,
        reason_text: str | None = None,
        return_id: str | None = None,
    ) -> RefundResult:
        """Refund shipped units: `items` None refunds the whole order. Item amounts are pre-tax;
        for order-level discounts refund by amount (orders.md §9.3)."""
        if items is not None and not items:
            raise OrdersRequestError("a partial refund must name at least one item")
        if reason_code not in RefundReasonCode.__members__:
            raise OrdersRequestError(f"unknown refund reason_code {reason_code!r}")
        _same_currency(
            [i.item_refund_amount for i in items or [] if i.item_refund_amount]
            + ([shipping] if shipping else [])
            + [d.deduction_amount for d in deductions or []]
        )
        body: dict[str, Any] = {
            "idempotency_key": _check_key(idempotency_key),
            "reason_code": str(reason_code),
        }
        if reason_text:
            body["reason_text"] = reason_text
        if items is not None:
            body["items"] = [item.to_graph() for item in items]
        if shipping is not None:
            body["shipping"] = {"shipping_refund": shipping.to_graph()}
        if deductions:
            body["deductions"] = [d.to_graph() for d in deductions]
        if return_id:
            body["return_id"] = return_id
        return RefundResult.model_validate(self.graph.post(f"{order_id}/refunds", body))

    def list_refunds(self, order_id: str) -> list[MetaRefund]:
        rows = self.graph.paginate(f"{order_id}/refunds", {"fields": REFUND_FIELDS})
        return [MetaRefund.model_validate(row) for row in rows]

    # -- returns ----------------------------------------------------------------------------------

    def list_returns(
        self, order_id: str, statuses: Iterable[str] | None = None
    ) -> list[MetaReturn]:
        params: dict[str, Any] = {"fields": RETURN_FIELDS}
        if statuses:
            params["statuses"] = list(statuses)
        rows = self.graph.paginate(f"{order_id}/returns", params)
        return [MetaReturn.model_validate(row) for row in rows]

    def list_shop_returns(
        self,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        statuses: Iterable[str] | None = None,
    ) -> Iterator[MetaReturn]:
        """Returns across the shop's orders (`GET /{cms_id}/returns`), by creation time."""
        params: dict[str, Any] = {"fields": RETURN_FIELDS + ",order{id}"}
        if created_after is not None:
            params["start_time_created"] = unix_seconds(created_after)
        if created_before is not None:
            params["end_time_created"] = unix_seconds(created_before)
        if statuses:
            params["statuses"] = list(statuses)
        for row in self.graph.paginate(f"{self.cms_id}/returns", params):
            yield MetaReturn.model_validate(row)

    def update_return(
        self,
        return_id: str,
        update_event: str,
        idempotency_key: str,
        merchant_return_id: str | None = None,
        notes: str | None = None,
    ) -> WriteResult:
        """Accept, decline or close a buyer's return (orders.md §10.2; SDK-derived shape)."""
        if update_event not in ReturnUpdateEvent.__members__:
            raise OrdersRequestError(f"unknown return update_event {update_event!r}")
        body: dict[str, Any] = {
            "idempotency_key": _check_key(idempotency_key),
            "update_event": str(update_event),
        }
        if merchant_return_id:
            body["merchant_return_id"] = merchant_return_id
        if notes:
            body["notes"] = notes
        return WriteResult.model_validate(self.graph.post(f"{return_id}/update_return", body))

    # -- payments ---------------------------------------------------------------------------------

    def payments(self, order_id: str) -> list[OrderPayment]:
        """One payment per shipment, with transaction details and order-level allocations."""
        rows = self.graph.paginate(f"{order_id}/payments", {"fields": PAYMENT_FIELDS})
        return [OrderPayment.model_validate(row) for row in rows]


def _same_currency(amounts: list[Money]) -> None:
    currencies = {m.currency for m in amounts}
    if len(currencies) > 1:
        raise OrdersRequestError(f"one refund mixes currencies {sorted(currencies)}")
