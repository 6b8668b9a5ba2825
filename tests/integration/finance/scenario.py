"""Order histories played on both sides: the Meta sandbox (buyer and Meta) and the reference OMS
(seller), the way the orders pipeline keeps them in step, so finance can reconcile the two."""

from dataclasses import dataclass
from typing import Any

from pipelines.orders.mapping import draft_from_meta_order, plan_refund
from resources.meta.orders import OrdersApi
from resources.meta.orders_models import CancelItem, Money, RefundItem, ShipmentItem, TrackingInfo
from resources.oms.adapter import OmsAdapter
from resources.oms.models import EventLine


@dataclass
class PlayedOrder:
    meta_id: str
    oms_id: int


class OrderPlayer:
    def __init__(self, sandbox_admin, orders: OrdersApi, oms: OmsAdapter, shop_id: str) -> None:
        self.admin, self.orders, self.oms, self.shop_id = sandbox_admin, orders, oms, shop_id
        self._step = 0

    def _key(self, action: str) -> str:
        self._step += 1
        return f"{self.shop_id}_{action}_{self._step}"

    def place(self, spec: dict[str, Any]) -> PlayedOrder:
        (placed,) = self.admin.place_orders(self.shop_id, [spec])
        meta_order = self.orders.get_order(placed["id"])
        oms_id = self.oms.import_order(draft_from_meta_order(self.shop_id, meta_order)).order_id
        reference = self.oms.get_order(oms_id).reference
        self.orders.acknowledge_order(placed["id"], reference, self._key("ack"))
        return PlayedOrder(placed["id"], oms_id)

    def cancel(self, order: PlayedOrder, sku: str, quantity: int) -> None:
        line = self.oms.get_order(order.oms_id).line_by_sku(sku)
        self.oms.cancel(order.oms_id, [EventLine(line.line_id, quantity)])
        self.orders.cancel_order(
            order.meta_id,
            self._key("cancel"),
            items=[CancelItem(retailer_id=sku, quantity=quantity)],
        )

    def ship_rest(self, order: PlayedOrder) -> None:
        open_lines = [line for line in self.oms.get_order(order.oms_id).lines if line.qty_open]
        if not open_lines:
            return
        self.oms.ship(
            order.oms_id,
            [EventLine(line.line_id, line.qty_open) for line in open_lines],
            "UPS",
            f"T{order.oms_id}-{self._step}",
        )
        self.orders.create_shipment(
            order.meta_id,
            [ShipmentItem(retailer_id=line.sku, quantity=line.qty_open) for line in open_lines],
            TrackingInfo(carrier="UPS", tracking_number=f"T{order.oms_id}-{self._step}"),
            f"ext_{order.oms_id}_{self._step}",
            self._key("ship"),
        )

    def refund(self, order: PlayedOrder, sku: str, quantity: int) -> None:
        oms_order = self.oms.get_order(order.oms_id)
        line = oms_order.line_by_sku(sku)
        planned = plan_refund(oms_order, {line.line_id: quantity})
        self.oms.refund(order.oms_id, planned, reason_code="BUYERS_REMORSE")
        # By amount: Meta refuses quantities on items an order-level offer touched.
        amount = Money.of(planned[0].amount, oms_order.currency)
        self.orders.refund_order(
            order.meta_id,
            self._key("refund"),
            items=[RefundItem(retailer_id=sku, item_refund_amount=amount)],
            reason_code="BUYERS_REMORSE",
        )
