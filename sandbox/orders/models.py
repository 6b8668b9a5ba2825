"""The orders backend: orders, their per-item quantities, and every rule Meta applies to them.

    backend = orders_backend(state)
    order = backend.place_order(shop_id, OrderSpec(...))
    backend.acknowledge(shop_id, order.id, "OMS-1")
    backend.ship(shop_id, order.id, items=[...], tracking={...}, external_shipment_id="p1")

State machine (orders.md §2): FB_PROCESSING -> CREATED -> IN_PROGRESS -> COMPLETED. Per item the
backend counts units ordered, shipped, cancelled, refunded (and the refunded amount); the order
is COMPLETED once shipped + cancelled = ordered for every item. Refusals raise CommerceError with
the §15 codes. All money is integer minor units; the HTTP layer renders decimal strings.

Each shipment captures a payment (one payment per shipment, orders.md §13.4) and each refund
reverses part of one; the finance backend turns both into transactions.
"""

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from sandbox.core.errors import CommerceError, InvalidParameter, UnknownObject
from sandbox.core.state import SandboxState
from sandbox.orders.allocation import (
    allocate_by_value,
    cumulative_rounded,
    cumulative_share,
    tax_on,
)

DOMAIN = "orders"

STATES = ("FB_PROCESSING", "CREATED", "IN_PROGRESS", "COMPLETED")
FILTERS = (
    "has_cancellations",
    "has_refunds",
    "has_fulfillments",
    "no_shipments",
    "no_cancellations",
    "no_refunds",
)
CANCEL_REASONS = frozenset(
    {"CUSTOMER_REQUESTED", "OUT_OF_STOCK", "INVALID_ADDRESS", "SUSPICIOUS_ORDER"}
    | {"CANCEL_REASON_OTHER"}
)
REFUND_REASONS = frozenset(
    {"BUYERS_REMORSE", "DAMAGED_GOODS", "NOT_AS_DESCRIBED", "QUALITY_ISSUE", "WRONG_ITEM"}
    | {"REFUND_REASON_OTHER", "FACEBOOK_INITIATED", "REFUND_COMPROMISED", "REFUND_FOR_RETURN"}
    | {"REFUND_SFI_FAKE", "REFUND_SFI_REAL"}
)
RETURN_EVENTS = {
    "ACCEPT_RETURN": "APPROVED",
    # Meta names no decline event (orders.md §10.2); both spellings are accepted.
    "DECLINE_RETURN": "DISAPPROVED",
    "DISAPPROVE_RETURN": "DISAPPROVED",
    "CLOSE_RETURN": "MERCHANT_MARKED_COMPLETED",
}
MAX_BATCH_ACKS = 100
EXTERNAL_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


def _load_carriers() -> frozenset[str]:
    path = Path(__file__).with_name("carrier_codes.json")
    return frozenset(entry["code"].upper() for entry in json.loads(path.read_text()))


CARRIER_CODES = _load_carriers()


@dataclass
class OrdersConfig:
    """Choices Meta leaves open (orders.md §17), and the sandbox's timing."""

    # Seconds an order stays FB_PROCESSING before it becomes CREATED (0 = created immediately).
    processing_seconds: float = 0.0
    # A shipment captures payment at once; False leaves payments pending until the admin
    # marks them captured (to exercise refund-before-capture, code 2361076).
    capture_on_shipment: bool = True
    # Meta refuses quantity refunds on lines carrying an order-level offer (orders.md §9.3).
    quantity_refund_with_order_level_offer: bool = False
    # `updated_after` compares strictly ("after"); True makes it inclusive.
    updated_after_inclusive: bool = False
    # Code for acknowledging an order still in FB_PROCESSING (undocumented).
    ack_processing_code: int = 2361009
    # Code when shipping an order that is not acknowledged yet (undocumented).
    ship_unacknowledged_code: int = 2361009


@dataclass
class Promotion:
    """An offer applied to the order, as Meta reports it in promotion_details."""

    promotion_id: str
    retailer_id: str | None
    campaign_name: str
    coupon_code: str | None
    sponsor: str  # "merchant" | "facebook"
    granularity: str  # "item_level" | "order_level"
    applied_after_tax: bool
    amount: int  # total discount in minor units
    target: str = "items"  # "items" | "shipping"


@dataclass
class Item:
    id: str
    retailer_id: str
    product_id: str
    product_name: str
    quantity: int
    unit_price: int  # net of item-level offers (Meta's price_per_unit)
    tax_rate: Decimal
    tax_category: str
    item_promotions: list[tuple[str, int]] = field(default_factory=list)  # (promotion_id, amount)
    order_allocations: dict[str, int] = field(default_factory=dict)  # order-level share per promo
    estimated_tax: int = 0
    shipped: int = 0
    cancelled: int = 0
    refunded_quantity: int = 0
    refunded_amount: int = 0  # pre-tax
    refunded_tax: int = 0
    captured_tax: int = 0
    captured_base: int = 0  # pre-tax amount captured: price x units - merchant allocations
    allocated: dict[str, int] = field(default_factory=dict)  # order-level allocated so far

    @property
    def open_quantity(self) -> int:
        return self.quantity - self.shipped - self.cancelled

    @property
    def resolved(self) -> int:
        return self.shipped + self.cancelled

    def merchant_share(self, promotions: dict[str, Promotion]) -> int:
        return sum(
            amount
            for promotion_id, amount in self.order_allocations.items()
            if promotions[promotion_id].sponsor == "merchant"
        )

    def refundable_amount(self) -> int:
        """Pre-tax amount still refundable: captured base minus what was refunded already."""
        return self.captured_base - self.refunded_amount


@dataclass
class Shipment:
    id: str
    external_shipment_id: str | None
    items: list[tuple[str, int, int]]  # (item_id, quantity, final tax)
    tracking: dict[str, str]
    payment_id: str
    created: datetime


@dataclass
class Cancellation:
    id: str
    items: list[tuple[str, int, dict[str, int]]]  # (item_id, quantity, allocations)
    reason_code: str | None
    reason_description: str | None
    restock: bool
    initiated_by: str  # "seller" | "meta"
    created: datetime


@dataclass
class Payment:
    id: str
    shipment_ids: list[str]
    items: list[tuple[str, int, dict[str, int]]]  # (item_id, quantity, allocations)
    items_subtotal: int
    shipping: int
    tax: int
    meta_funded: int
    merchant_discount: int
    captured: bool
    captured_at: datetime | None

    @property
    def total(self) -> int:
        """The payment's value: items net of merchant-funded discounts, shipping and tax. Of it
        the buyer pays all but `meta_funded`, which Meta pays (orders.md §11.4)."""
        return self.items_subtotal - self.merchant_discount + self.shipping + self.tax


@dataclass
class Refund:
    id: str
    items: list[tuple[str, int | None, int, int]]  # (item_id, quantity?, subtotal, tax)
    shipping: int
    deductions: int
    reason_code: str
    reason_text: str | None
    return_id: str | None
    initiated_by: str
    created: datetime

    @property
    def subtotal(self) -> int:
        return sum(line[2] for line in self.items)

    @property
    def tax(self) -> int:
        return sum(line[3] for line in self.items)

    @property
    def total(self) -> int:
        return self.subtotal + self.tax + self.shipping - self.deductions


@dataclass
class Return:
    id: str
    order_id: str
    status: str
    message: str | None
    merchant_return_id: str | None
    quantities: dict[str, int]
    reasons: dict[str, str]
    created: datetime
    notes: str | None = None


@dataclass
class Order:
    id: str
    shop_id: str
    currency: str
    state: str
    created: datetime
    last_updated: datetime
    ready_at: datetime  # when FB_PROCESSING ends
    channel: str
    buyer: dict[str, Any]
    shipping_address: dict[str, Any]
    shipping_option: dict[str, Any]  # name, min_days, max_days
    shipping_price: int  # before shipping offers
    shipping_discount: int  # by shipping offers
    tax_remitted: bool
    jurisdiction: str
    ship_by_date: str
    items: list[Item]
    promotions: dict[str, Promotion]
    merchant_order_id: str | None = None
    is_test_order: bool = False
    shipments: list[Shipment] = field(default_factory=list)
    cancellations: list[Cancellation] = field(default_factory=list)
    refunds: list[Refund] = field(default_factory=list)
    payments: list[Payment] = field(default_factory=list)
    returns: list[str] = field(default_factory=list)
    refunded_shipping: int = 0
    shipping_captured: int = 0

    @property
    def shipping_net(self) -> int:
        return self.shipping_price - self.shipping_discount

    def item(self, item_id: str) -> Item:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)

    def estimated_tax(self) -> int:
        return sum(item.estimated_tax for item in self.items)

    def items_subtotal(self) -> int:
        return sum(item.unit_price * item.quantity for item in self.items)

    def discount_total(self, sponsor: str | None = None) -> int:
        return sum(
            p.amount
            for p in self.promotions.values()
            if p.granularity == "order_level" and (sponsor is None or p.sponsor == sponsor)
        )

    def meta_funded_total(self) -> int:
        return sum(p.amount for p in self.promotions.values() if p.sponsor == "facebook")

    def total_amount(self) -> int:
        """Estimated total at creation (never updated, orders.md §5.1): buyer-paid plus
        Meta-paid (Meta-funded order-level offers are applied after tax)."""
        return (
            self.items_subtotal()
            - self.discount_total("merchant")
            + self.shipping_net
            + self.estimated_tax()
        )


# -- specs (what the admin API asks for) -------------------------------------------------------


@dataclass
class LineSpec:
    retailer_id: str
    quantity: int
    unit_price: int  # list price, before item-level offers
    product_name: str = ""
    tax_rate: Decimal = Decimal("0")
    tax_category: str = "FBMP_OTHER_TAXABLE"
    item_discount_per_unit: int = 0
    item_discount_sponsor: str = "merchant"
    item_discount_name: str | None = None
    item_discount_coupon: str | None = None
    product_id: str | None = None


@dataclass
class OrderDiscountSpec:
    amount: int
    sponsor: str = "merchant"
    campaign_name: str = "Order discount"
    coupon_code: str | None = None
    retailer_id: str | None = None
    target_retailer_ids: list[str] | None = None


@dataclass
class OrderSpec:
    lines: list[LineSpec]
    shipping_name: str = "STANDARD"
    shipping_price: int = 0
    free_shipping_sponsor: str | None = None  # "merchant" | "facebook" -> shipping offer
    order_discounts: list[OrderDiscountSpec] = field(default_factory=list)
    state: str | None = None  # None: FB_PROCESSING -> CREATED per config
    channel: str = "facebook"
    buyer: dict[str, Any] | None = None
    shipping_address: dict[str, Any] | None = None
    tax_remitted: bool = True
    jurisdiction: str = "CALIFORNIA"
    is_test_order: bool = False


# -- the backend --------------------------------------------------------------------------------


@dataclass
class OrdersBackend:
    config: OrdersConfig = field(default_factory=OrdersConfig)
    orders: dict[str, Order] = field(default_factory=dict)  # order id -> order
    returns: dict[str, Return] = field(default_factory=dict)
    app_associated: dict[str, bool] = field(default_factory=dict)  # shop id -> associated

    # -- creation ------------------------------------------------------------------------------

    def place_order(self, state: SandboxState, shop_id: str, spec: OrderSpec) -> Order:
        """Create an order as Meta finalises a checkout: prices, offers, taxes, allocations."""
        shop = state.shops[shop_id]
        _validate_spec(spec)
        now = state.now()
        promotions: dict[str, Promotion] = {}
        items = [self._make_item(state, line, promotions) for line in spec.lines]

        for discount in spec.order_discounts:
            self._allocate_order_discount(state, discount, items, promotions)
        for item in items:
            taxable = item.unit_price * item.quantity - item.merchant_share(promotions)
            item.estimated_tax = tax_on(taxable, item.tax_rate)

        shipping_discount = 0
        if spec.free_shipping_sponsor and spec.shipping_price > 0:
            shipping_discount = spec.shipping_price
            promotion = Promotion(
                promotion_id=state.new_id(),
                retailer_id="free_shipping",
                campaign_name="Free shipping",
                coupon_code=None,
                sponsor=spec.free_shipping_sponsor,
                granularity="item_level",
                applied_after_tax=spec.free_shipping_sponsor == "facebook",
                amount=shipping_discount,
                target="shipping",
            )
            promotions[promotion.promotion_id] = promotion

        delay = timedelta(seconds=self.config.processing_seconds)
        initial = spec.state or ("FB_PROCESSING" if delay else "CREATED")
        order = Order(
            id=state.new_id(),
            shop_id=shop_id,
            currency=shop.currency,
            state=initial,
            created=now,
            last_updated=now,
            ready_at=now + delay,
            channel=spec.channel,
            buyer=spec.buyer or {},
            shipping_address=spec.shipping_address or {},
            shipping_option={"name": spec.shipping_name, "min_days": 3, "max_days": 5},
            shipping_price=spec.shipping_price,
            shipping_discount=shipping_discount,
            tax_remitted=spec.tax_remitted,
            jurisdiction=spec.jurisdiction,
            ship_by_date=(now + timedelta(days=3)).date().isoformat(),
            items=items,
            promotions=promotions,
            is_test_order=spec.is_test_order,
        )
        if initial == "CREATED" and not self.app_associated.get(shop_id, True):
            # Without an order management app, finalised orders skip CREATED (orders.md §2.1).
            order.state = "IN_PROGRESS"
        self.orders[order.id] = order
        state.register_node(order.id, "order", shop_id)
        return order

    def _make_item(
        self, state: SandboxState, line: LineSpec, promotions: dict[str, Promotion]
    ) -> Item:
        item = Item(
            id=state.new_id(),
            retailer_id=line.retailer_id,
            product_id=line.product_id or state.new_id(),
            product_name=line.product_name or line.retailer_id,
            quantity=line.quantity,
            unit_price=line.unit_price - line.item_discount_per_unit,
            tax_rate=line.tax_rate,
            tax_category=line.tax_category,
        )
        if line.item_discount_per_unit:
            promotion = Promotion(
                promotion_id=state.new_id(),
                retailer_id=line.item_discount_coupon or f"offer_{line.retailer_id}",
                campaign_name=line.item_discount_name or "Item offer",
                coupon_code=line.item_discount_coupon,
                sponsor=line.item_discount_sponsor,
                granularity="item_level",
                applied_after_tax=line.item_discount_sponsor == "facebook",
                amount=line.item_discount_per_unit * line.quantity,
            )
            promotions[promotion.promotion_id] = promotion
            item.item_promotions.append((promotion.promotion_id, promotion.amount))
        return item

    def _allocate_order_discount(
        self,
        state: SandboxState,
        discount: OrderDiscountSpec,
        items: list[Item],
        promotions: dict[str, Promotion],
    ) -> None:
        targets = [
            item
            for item in items
            if discount.target_retailer_ids is None
            or item.retailer_id in discount.target_retailer_ids
        ]
        values = [item.unit_price * item.quantity for item in targets]
        if not targets or discount.amount > sum(values):
            raise InvalidParameter("an order-level discount exceeds the value of its target lines")
        promotion = Promotion(
            promotion_id=state.new_id(),
            retailer_id=discount.retailer_id,
            campaign_name=discount.campaign_name,
            coupon_code=discount.coupon_code,
            sponsor=discount.sponsor,
            granularity="order_level",
            applied_after_tax=discount.sponsor == "facebook",
            amount=discount.amount,
        )
        promotions[promotion.promotion_id] = promotion
        for item, share in zip(targets, allocate_by_value(discount.amount, values), strict=True):
            item.order_allocations[promotion.promotion_id] = share

    # -- lookups and the clock -----------------------------------------------------------------

    def get(self, state: SandboxState, shop_id: str, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None or order.shop_id != shop_id:
            raise UnknownObject(order_id)
        self._advance(state, order)
        return order

    def shop_orders(self, state: SandboxState, shop_id: str) -> list[Order]:
        orders = [o for o in self.orders.values() if o.shop_id == shop_id]
        for order in orders:
            self._advance(state, order)
        return sorted(orders, key=lambda o: (o.created, o.id), reverse=True)

    def _advance(self, state: SandboxState, order: Order) -> None:
        """FB_PROCESSING ends when the sandbox clock passes the order's ready time."""
        if order.state == "FB_PROCESSING" and state.now() >= order.ready_at:
            associated = self.app_associated.get(order.shop_id, True)
            order.state = "CREATED" if associated else "IN_PROGRESS"
            order.last_updated = order.ready_at

    def _touch(self, state: SandboxState, order: Order) -> None:
        order.last_updated = state.now()
        if order.state == "IN_PROGRESS" and all(i.open_quantity == 0 for i in order.items):
            order.state = "COMPLETED"
        if order.state == "CREATED" and all(i.open_quantity == 0 for i in order.items):
            order.state = "COMPLETED"  # fully cancelled before acknowledgement

    def list_orders(
        self,
        state: SandboxState,
        shop_id: str,
        states: list[str],
        filters: list[str],
        updated_after: datetime | None,
        updated_before: datetime | None,
    ) -> list[Order]:
        unknown = [s for s in states if s not in STATES]
        if unknown:
            raise InvalidParameter(f"(#100) state must be one of {', '.join(STATES)}: {unknown}")
        bad = [f for f in filters if f not in FILTERS]
        if bad:
            raise InvalidParameter(f"(#100) filters must be among {', '.join(FILTERS)}: {bad}")
        rows = []
        for order in self.shop_orders(state, shop_id):
            if order.state not in states or not all(_matches(order, f) for f in filters):
                continue
            stamp = order.last_updated.replace(microsecond=0)
            if updated_after is not None:
                if stamp < updated_after or (
                    stamp == updated_after and not self.config.updated_after_inclusive
                ):
                    continue
            if updated_before is not None and stamp >= updated_before:
                continue
            rows.append(order)
        return rows

    # -- acknowledgement -----------------------------------------------------------------------

    def acknowledge(
        self, state: SandboxState, shop_id: str, order_id: str, reference: str | None
    ) -> Order:
        order = self.get(state, shop_id, order_id)
        if order.state == "FB_PROCESSING":
            raise CommerceError(
                "Order cannot be acknowledged: Meta is still processing it",
                code=self.config.ack_processing_code,
            )
        if order.state != "CREATED":
            raise CommerceError("Order cannot be acknowledged", code=2361009)
        if reference:
            order.merchant_order_id = reference
        order.state = "IN_PROGRESS"
        self._touch(state, order)
        return order

    def acknowledge_batch(
        self, state: SandboxState, shop_id: str, entries: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        if not isinstance(entries, list) or not entries:
            raise InvalidParameter("(#100) The parameter orders is required")
        if len(entries) > MAX_BATCH_ACKS:
            raise InvalidParameter(
                f"(#100) orders must contain at most {MAX_BATCH_ACKS} elements, got {len(entries)}"
            )
        results = []
        for entry in entries:
            order_id = str((entry or {}).get("id") or "")
            try:
                order = self.acknowledge(
                    state, shop_id, order_id, entry.get("merchant_order_reference")
                )
                results.append({"id": order_id, "state": order.state})
            except UnknownObject:
                results.append(_ack_error(order_id, 2361003, "Invalid Order ID"))
            except CommerceError as error:
                results.append(_ack_error(order_id, error.code, error.message))
        return results

    # -- shipments -----------------------------------------------------------------------------

    def ship(
        self,
        state: SandboxState,
        shop_id: str,
        order_id: str,
        items: list[dict[str, Any]] | None,
        tracking: dict[str, Any] | None,
        external_shipment_id: str | None,
        merchant_order_reference: str | None = None,
    ) -> Shipment:
        order = self.get(state, shop_id, order_id)
        self._check_shippable(order)
        tracking = _validate_tracking(tracking) if tracking is not None else {}
        if tracking and any(
            s.tracking.get("tracking_number") == tracking["tracking_number"]
            for s in order.shipments
        ):
            raise CommerceError("Duplicate tracking details for this order", code=2382045)
        if external_shipment_id is not None:
            _validate_external_id(external_shipment_id)
            if any(s.external_shipment_id == external_shipment_id for s in order.shipments):
                raise InvalidParameter(
                    f"(#100) external_shipment_id {external_shipment_id} is already used"
                )
        if merchant_order_reference:
            if order.merchant_order_id and order.merchant_order_id != merchant_order_reference:
                raise InvalidParameter(
                    "(#100) merchant_order_reference differs from the one already set"
                )
            order.merchant_order_id = merchant_order_reference

        if items is None:
            wanted = [(item, item.open_quantity) for item in order.items if item.open_quantity]
        else:
            wanted = self._resolve_quantities(order, items, "quantity")
        if not wanted or sum(q for _, q in wanted) == 0:
            raise CommerceError("A shipment must contain at least one item", code=2361357)
        for item, quantity in wanted:
            if quantity > item.open_quantity:
                if item.open_quantity == 0 and item.cancelled == item.quantity:
                    raise CommerceError("Cancelled items cannot be shipped", code=1818111)
                if item.open_quantity == 0:
                    raise CommerceError("Item already shipped", code=1818015)
                raise InvalidParameter(
                    f"(#100) cannot ship {quantity} of item {item.id}: only "
                    f"{item.open_quantity} left to ship"
                )

        payment = self._capture(state, order, wanted)
        shipment = Shipment(
            id=state.new_id(),
            external_shipment_id=external_shipment_id,
            items=[
                (item.id, qty, tax) for (item, qty), tax in zip(wanted, payment[1], strict=True)
            ],
            tracking=tracking,
            payment_id=payment[0].id,
            created=state.now(),
        )
        payment[0].shipment_ids.append(shipment.id)
        order.shipments.append(shipment)
        self._touch(state, order)
        if payment[0].captured:
            finance_of(state).record_sale(state, order, payment[0])
        return shipment

    def _check_shippable(self, order: Order) -> None:
        if all(item.cancelled == item.quantity for item in order.items):
            raise CommerceError("A cancelled order cannot be shipped", code=1818111)
        if order.state in ("FB_PROCESSING", "CREATED"):
            raise CommerceError(
                "Order must be acknowledged before it ships",
                code=self.config.ship_unacknowledged_code,
            )
        if order.state == "COMPLETED":
            raise CommerceError("Order already shipped/captured", code=1818015)

    def _capture(
        self, state: SandboxState, order: Order, wanted: list[tuple[Item, int]]
    ) -> tuple[Payment, list[int]]:
        """One payment for one shipment: unit prices, order-level allocations, tax, shipping."""
        taxes, allocations_per_item = [], []
        merchant_discount = meta_funded = subtotal = 0
        for item, quantity in wanted:
            allocations = self._allocate_event(order, item, quantity)
            merchant = sum(
                a for pid, a in allocations.items() if order.promotions[pid].sponsor == "merchant"
            )
            facebook = sum(allocations.values()) - merchant
            tax = cumulative_rounded(
                item.estimated_tax, item.quantity, item.resolved, item.resolved + quantity
            )
            item.shipped += quantity
            item.captured_tax += tax
            item.captured_base += item.unit_price * quantity - merchant
            subtotal += item.unit_price * quantity
            merchant_discount += merchant
            meta_funded += facebook
            taxes.append(tax)
            allocations_per_item.append((item.id, quantity, allocations))

        # Flat shipping: all of it on the first shipment (orders.md §13.4).
        shipping = order.shipping_net if not order.payments else 0
        order.shipping_captured += shipping
        captured = self.config.capture_on_shipment
        payment = Payment(
            id=state.new_id(),
            shipment_ids=[],
            items=allocations_per_item,
            items_subtotal=subtotal,
            shipping=shipping,
            tax=sum(taxes),
            meta_funded=meta_funded,
            merchant_discount=merchant_discount,
            captured=captured,
            captured_at=state.now() if captured else None,
        )
        order.payments.append(payment)
        return payment, taxes

    @staticmethod
    def _allocate_event(order: Order, item: Item, quantity: int) -> dict[str, int]:
        """This event's part of each order-level share on the line (cumulative truncation)."""
        allocations = {}
        for promotion_id, share in item.order_allocations.items():
            part = cumulative_share(share, item.quantity, item.resolved, item.resolved + quantity)
            item.allocated[promotion_id] = item.allocated.get(promotion_id, 0) + part
            allocations[promotion_id] = part
        return allocations

    def update_shipment(
        self,
        state: SandboxState,
        shop_id: str,
        order_id: str,
        tracking: dict[str, Any] | None,
        external_shipment_id: str | None,
        shipment_id: str | None,
    ) -> Shipment:
        order = self.get(state, shop_id, order_id)
        if (external_shipment_id is None) == (shipment_id is None):
            raise InvalidParameter("(#100) Give exactly one of external_shipment_id, shipment_id")
        if tracking is None:
            raise InvalidParameter("(#100) The parameter tracking_info is required")
        tracking = _validate_tracking(tracking)
        for shipment in order.shipments:
            if shipment.id == shipment_id or (
                external_shipment_id is not None
                and shipment.external_shipment_id == external_shipment_id
            ):
                break
        else:
            raise InvalidParameter(f"(#100) No shipment {external_shipment_id or shipment_id}")
        if any(
            other is not shipment
            and other.tracking.get("tracking_number") == tracking["tracking_number"]
            for other in order.shipments
        ):
            raise CommerceError("Duplicate tracking details for this order", code=2382045)
        shipment.tracking = tracking
        self._touch(state, order)
        return shipment

    # -- cancellations -------------------------------------------------------------------------

    def cancel(
        self,
        state: SandboxState,
        shop_id: str,
        order_id: str,
        items: list[dict[str, Any]] | None,
        reason: dict[str, Any] | None,
        restock: bool,
        initiated_by: str = "seller",
    ) -> Cancellation:
        order = self.get(state, shop_id, order_id)
        reason = reason or {}
        code = reason.get("reason_code")
        if code is not None and code not in CANCEL_REASONS:
            raise InvalidParameter(f"(#100) reason_code must be one of {sorted(CANCEL_REASONS)}")
        if order.state == "FB_PROCESSING" and state.now() - order.created < timedelta(hours=24):
            raise CommerceError(
                "Orders in FB_PROCESSING can only be cancelled after 24 hours", code=2361009
            )

        if items is None:
            wanted = [(item, item.open_quantity) for item in order.items if item.open_quantity]
            if not wanted:
                if all(item.cancelled == item.quantity for item in order.items):
                    raise CommerceError("Order already cancelled", code=1818048)
                raise CommerceError("Order already fulfilled, cancelled or refunded", code=1818214)
        else:
            wanted = self._resolve_quantities(order, items, "quantity")
            for item, quantity in wanted:
                if quantity <= item.open_quantity:
                    continue
                if item.cancelled == item.quantity:
                    raise CommerceError("Item already cancelled", code=1818049)
                if item.open_quantity == 0:
                    raise CommerceError("Item already shipped: refund instead", code=1818050)
                raise CommerceError(
                    "Selected items already fulfilled, cancelled or refunded", code=1818215
                )

        lines = []
        for item, quantity in wanted:
            allocations = self._allocate_event(order, item, quantity)
            # The tax of cancelled units is never captured; the cumulative slice is skipped.
            item.cancelled += quantity
            lines.append((item.id, quantity, allocations))
        cancellation = Cancellation(
            id=state.new_id(),
            items=lines,
            reason_code=code,
            reason_description=reason.get("reason_description"),
            restock=bool(restock),
            initiated_by=initiated_by,
            created=state.now(),
        )
        order.cancellations.append(cancellation)
        if order.state == "FB_PROCESSING":
            order.state = "CREATED"
        self._touch(state, order)
        return cancellation

    # -- refunds -------------------------------------------------------------------------------

    def refund(
        self,
        state: SandboxState,
        shop_id: str,
        order_id: str,
        items: list[dict[str, Any]] | None,
        shipping: dict[str, Any] | None,
        deductions: list[dict[str, Any]] | None,
        reason_code: str | None,
        reason_text: str | None,
        return_id: str | None = None,
        initiated_by: str = "seller",
    ) -> Refund:
        order = self.get(state, shop_id, order_id)
        if not reason_code:
            raise InvalidParameter("(#100) The parameter reason_code is required")
        if reason_code not in REFUND_REASONS:
            raise InvalidParameter(f"(#100) reason_code must be one of {sorted(REFUND_REASONS)}")
        if all(item.cancelled == item.quantity for item in order.items):
            raise CommerceError("A cancelled order cannot be refunded", code=1818105)
        if not order.payments:
            raise CommerceError("Nothing was charged, nothing to refund", code=1818107)
        if not any(p.captured for p in order.payments):
            raise CommerceError(
                "Refund unavailable until payment is captured; retry later", code=2361076
            )
        returned = self._linked_return(order, return_id)

        lines = self._refund_lines(order, items)
        shipping_refund = self._shipping_refund(order, shipping, full=items is None)
        deduction_total = self._deductions(order, deductions)
        total = sum(sub + tax for _, _, sub, tax in lines) + shipping_refund - deduction_total
        if total <= 0:
            raise CommerceError("Refund total is 0", code=2382030)

        for item_id, quantity, subtotal, tax in lines:
            item = order.item(item_id)
            item.refunded_amount += subtotal
            item.refunded_tax += tax
            item.refunded_quantity += quantity or 0
        order.refunded_shipping += shipping_refund
        refund = Refund(
            id=state.new_id(),
            items=lines,
            shipping=shipping_refund,
            deductions=deduction_total,
            reason_code=reason_code,
            reason_text=reason_text,
            return_id=return_id,
            initiated_by=initiated_by,
            created=state.now(),
        )
        order.refunds.append(refund)
        if returned is not None:
            returned.status = "REFUNDED"
        self._touch(state, order)
        finance_of(state).record_refund(state, order, refund)
        return refund

    def _linked_return(self, order: Order, return_id: str | None) -> Return | None:
        if return_id is None:
            return None
        returned = self.returns.get(return_id)
        if returned is None or returned.order_id != order.id:
            raise InvalidParameter(f"(#100) return {return_id} is not a return of this order")
        return returned

    def _refund_lines(
        self, order: Order, items: list[dict[str, Any]] | None
    ) -> list[tuple[str, int | None, int, int]]:
        if items is None:
            lines = []
            for item in order.items:
                amount = item.refundable_amount()
                if amount > 0:
                    lines.append((item.id, None, amount, self._refund_tax(item, amount)))
            if not lines and order.refunded_shipping >= order.shipping_captured:
                raise CommerceError("Items already refunded", code=2382319)
            return lines

        if not isinstance(items, list) or not items:
            raise InvalidParameter("(#100) items must be a non-empty list")
        lines, seen = [], set()
        for entry in items:
            item = self._resolve_item(order, entry, invalid_code=2382021)
            if item.id in seen:
                raise InvalidParameter(f"(#100) item {item.id} appears twice in one refund")
            seen.add(item.id)
            quantity, amount = self._refund_quantity_or_amount(order, item, entry)
            if item.refundable_amount() <= 0:
                raise CommerceError("Item already refunded", code=2382319)
            if amount > item.refundable_amount():
                raise CommerceError(
                    f"Item refund {amount} greater than charged {item.refundable_amount()} "
                    "(minor units)",
                    code=2382023,
                )
            lines.append((item.id, quantity, amount, self._refund_tax(item, amount)))
        return lines

    def _refund_quantity_or_amount(
        self, order: Order, item: Item, entry: dict[str, Any]
    ) -> tuple[int | None, int]:
        quantity = entry.get("item_refund_quantity")
        amount = entry.get("item_refund_amount")
        if (quantity is None) == (amount is None):
            raise InvalidParameter(
                "(#100) give exactly one of item_refund_quantity or item_refund_amount"
            )
        if amount is not None:
            return None, _money_param(amount, order.currency, "item_refund_amount")
        quantity = _positive_int(quantity, "item_refund_quantity")
        if item.order_allocations and not self.config.quantity_refund_with_order_level_offer:
            raise InvalidParameter(
                "(#100) items with an order-level offer can only be refunded by amount "
                "(item_refund_amount)"
            )
        if quantity > item.shipped - item.refunded_quantity:
            if item.shipped and item.refunded_quantity >= item.shipped:
                raise CommerceError("Item already refunded", code=2382319)
            raise CommerceError("Item refund greater than charged", code=2382023)
        return quantity, item.unit_price * quantity

    @staticmethod
    def _refund_tax(item: Item, amount: int) -> int:
        """Tax follows the refunded share of the captured base, cumulatively (never over)."""
        return cumulative_rounded(
            item.captured_tax,
            item.captured_base,
            item.refunded_amount,
            item.refunded_amount + amount,
        )

    def _shipping_refund(self, order: Order, shipping: dict[str, Any] | None, full: bool) -> int:
        remaining = order.shipping_captured - order.refunded_shipping
        if shipping is None:
            return remaining if full else 0
        money = shipping.get("shipping_refund") if isinstance(shipping, dict) else None
        if money is None:
            raise InvalidParameter("(#100) shipping must be {shipping_refund: currency_amount}")
        amount = _money_param(money, order.currency, "shipping_refund")
        if amount > remaining:
            raise CommerceError("Shipping refund greater than charged", code=2382022)
        return amount

    @staticmethod
    def _deductions(order: Order, deductions: list[dict[str, Any]] | None) -> int:
        total = 0
        for deduction in deductions or []:
            if deduction.get("deduction_type") != "RETURN_SHIPPING":
                raise InvalidParameter("(#100) deduction_type must be RETURN_SHIPPING")
            total += _money_param(
                deduction.get("deduction_amount"), order.currency, "deduction_amount"
            )
        return total

    # -- returns -------------------------------------------------------------------------------

    def create_return(
        self,
        state: SandboxState,
        shop_id: str,
        order_id: str,
        items: list[dict[str, Any]],
        message: str | None,
    ) -> Return:
        """A buyer asks to return shipped units (admin only: buyers act on Meta's side)."""
        order = self.get(state, shop_id, order_id)
        quantities, reasons = {}, {}
        for entry in items:
            item = self._resolve_item(order, entry, invalid_code=100)
            quantity = _positive_int(entry.get("quantity", 1), "quantity")
            if quantity > item.shipped - item.refunded_quantity:
                raise InvalidParameter(f"(#100) only shipped units of {item.id} can be returned")
            quantities[item.id] = quantity
            reasons[item.id] = str(entry.get("reason") or "OTHER").lower()
        returned = Return(
            id=state.new_id(),
            order_id=order.id,
            status="REQUESTED",
            message=message,
            merchant_return_id=None,
            quantities=quantities,
            reasons=reasons,
            created=state.now(),
        )
        self.returns[returned.id] = returned
        order.returns.append(returned.id)
        state.register_node(returned.id, "return", shop_id)
        self._touch(state, order)
        return returned

    def update_return(
        self,
        state: SandboxState,
        shop_id: str,
        return_id: str,
        event: str | None,
        merchant_return_id: str | None,
        notes: str | None,
    ) -> Return:
        returned = self.returns.get(return_id)
        if returned is None or self.orders[returned.order_id].shop_id != shop_id:
            raise UnknownObject(return_id)
        if event not in RETURN_EVENTS:
            raise InvalidParameter(f"(#100) update_event must be one of {sorted(RETURN_EVENTS)}")
        target = RETURN_EVENTS[event]
        allowed_from = {
            "APPROVED": {"REQUESTED"},
            "DISAPPROVED": {"REQUESTED"},
            "MERCHANT_MARKED_COMPLETED": {"APPROVED", "REFUNDED"},
        }[target]
        if returned.status not in allowed_from:
            raise InvalidParameter(
                f"(#100) a {returned.status} return cannot take the event {event}"
            )
        returned.status = target
        if merchant_return_id:
            returned.merchant_return_id = merchant_return_id
        if notes:
            returned.notes = notes
        self._touch(state, self.orders[returned.order_id])
        return returned

    # -- payments ------------------------------------------------------------------------------

    def capture_pending(self, state: SandboxState, shop_id: str, order_id: str) -> int:
        """Mark the order's pending payments captured (admin); returns how many were."""
        order = self.get(state, shop_id, order_id)
        count = 0
        for payment in order.payments:
            if not payment.captured:
                payment.captured = True
                payment.captured_at = state.now()
                finance_of(state).record_sale(state, order, payment)
                count += 1
        if count:
            self._touch(state, order)
        return count

    # -- item references -----------------------------------------------------------------------

    def _resolve_item(self, order: Order, entry: dict[str, Any], invalid_code: int) -> Item:
        if not isinstance(entry, dict):
            raise InvalidParameter("(#100) each item must be an object")
        item_id, retailer_id = entry.get("item_id"), entry.get("retailer_id")
        if (item_id is None) == (retailer_id is None):
            raise InvalidParameter("(#100) give exactly one of retailer_id or item_id per item")
        if item_id is not None:
            matches = [i for i in order.items if i.id == str(item_id)]
        else:
            matches = [i for i in order.items if i.retailer_id == str(retailer_id)]
        if not matches:
            raise CommerceError(
                f"Invalid item {item_id or retailer_id} for this order", code=invalid_code
            )
        if len(matches) > 1:
            # Buy-X-Get-Y orders hold two lines of one product: only item_id is unambiguous.
            raise InvalidParameter(
                f"(#100) retailer_id {retailer_id} matches several lines; use item_id"
            )
        return matches[0]

    def _resolve_quantities(
        self, order: Order, items: list[dict[str, Any]], quantity_key: str
    ) -> list[tuple[Item, int]]:
        if not isinstance(items, list):
            raise InvalidParameter("(#100) items must be a list")
        totals: dict[str, int] = {}
        for entry in items:
            item = self._resolve_item(order, entry, invalid_code=100)
            quantity = _positive_int(entry.get(quantity_key), quantity_key)
            totals[item.id] = totals.get(item.id, 0) + quantity
        return [(order.item(item_id), quantity) for item_id, quantity in totals.items()]


# -- helpers -----------------------------------------------------------------------------------


def orders_backend(state: SandboxState) -> OrdersBackend:
    backend = state.domains.get(DOMAIN)
    if backend is None:
        backend = state.domains[DOMAIN] = OrdersBackend()
    return backend


def finance_of(state: SandboxState):
    # Imported here: finance reads orders, orders feed finance; neither owns the other.
    from sandbox.finance.models import finance_backend

    return finance_backend(state)


def _matches(order: Order, name: str) -> bool:
    shipped = any(i.shipped for i in order.items)
    cancelled = any(i.cancelled for i in order.items)
    refunded = bool(order.refunds)
    return {
        "has_cancellations": cancelled,
        "no_cancellations": not cancelled,
        "has_refunds": refunded,
        "no_refunds": not refunded,
        "has_fulfillments": shipped,
        "no_shipments": any(i.open_quantity for i in order.items),
    }[name]


def _ack_error(order_id: str, code: int, message: str) -> dict[str, Any]:
    return {"id": order_id, "error": {"error_code": code, "error_message": message}}


def _validate_tracking(tracking: Any) -> dict[str, str]:
    if not isinstance(tracking, dict):
        raise InvalidParameter("(#100) tracking_info must be an object")
    carrier = str(tracking.get("carrier") or "").strip()
    number = str(tracking.get("tracking_number") or "").strip()
    if not carrier or not number:
        raise InvalidParameter("(#100) tracking_info needs carrier and tracking_number")
    if carrier.upper() not in CARRIER_CODES:
        raise InvalidParameter(f"(#100) Unknown carrier code {carrier}")
    result = {"carrier": carrier.lower(), "tracking_number": number}
    if tracking.get("shipping_method_name"):
        result["shipping_method_name"] = str(tracking["shipping_method_name"])
    return result


def _validate_external_id(value: str) -> None:
    if not value or not set(value) <= EXTERNAL_ID_CHARS:
        raise InvalidParameter("(#100) external_shipment_id may only use [A-Za-z0-9_]")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise InvalidParameter(f"(#100) {name} must be a positive integer")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise InvalidParameter(f"(#100) {name} must be a positive integer") from None
    if number <= 0 or str(number) != str(value).strip():
        raise InvalidParameter(f"(#100) {name} must be a positive integer")
    return number


def _money_param(value: Any, currency: str, name: str) -> int:
    """A currency_amount parameter in the order's currency, as minor units."""
    from sandbox.orders.allocation import to_minor

    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise InvalidParameter(f"(#100) {name} must be a currency_amount object") from None
    if not isinstance(value, dict) or "amount" not in value or "currency" not in value:
        raise InvalidParameter(f"(#100) {name} must be {{amount, currency}}")
    if str(value["currency"]).upper() != currency:
        raise InvalidParameter(f"(#100) {name} must be in the order currency {currency}")
    if isinstance(value["amount"], float):
        raise InvalidParameter(f"(#100) {name}.amount must be a decimal string")
    try:
        units = to_minor(Decimal(str(value["amount"])), currency)
    except (ArithmeticError, ValueError):
        raise InvalidParameter(f"(#100) {name}.amount {value['amount']!r} is invalid") from None
    if units < 0:
        raise InvalidParameter(f"(#100) {name} must not be negative")
    return units


def _validate_spec(spec: OrderSpec) -> None:
    if not spec.lines:
        raise InvalidParameter("an order needs at least one item")
    for line in spec.lines:
        if line.quantity <= 0 or line.unit_price < 0:
            raise InvalidParameter(f"line {line.retailer_id}: bad quantity or price")
        if not 0 <= line.item_discount_per_unit <= line.unit_price:
            raise InvalidParameter(f"line {line.retailer_id}: discount above the price")
    if spec.state is not None and spec.state not in STATES:
        raise InvalidParameter(f"state must be one of {STATES}")
