"""Plain data the OMS adapter takes and returns. Money is Decimal plus the order's currency."""

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import Any

ZERO = Decimal(0)


class OrderSource(StrEnum):
    META = "meta"
    WEB = "web"
    POS = "pos"


class OmsOrderStatus(StrEnum):
    PENDING = "pending"  # imported, not yet acknowledged to the marketplace
    PROCESSING = "processing"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class ChangeKind(StrEnum):
    SHIPMENT = "shipment"
    TRACKING_UPDATE = "tracking_update"
    CANCELLATION = "cancellation"
    REFUND = "refund"
    RETURN_DECISION = "return_decision"


class ReturnState(StrEnum):
    REQUESTED = "requested"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    CLOSED = "closed"


class OmsError(ValueError):
    """The OMS refused an operation (more units than are left, unknown line, ...)."""


@dataclass(frozen=True)
class LineAllocation:
    promotion_id: str
    sponsor: str  # seller | meta
    amount: Decimal


@dataclass(frozen=True)
class DraftLine:
    external_line_id: str | None
    sku: str
    name: str | None
    quantity: int
    unit_price: Decimal
    item_discount: Decimal = ZERO
    order_discount: Decimal = ZERO
    meta_funded_discount: Decimal = ZERO
    tax: Decimal = ZERO
    allocations: tuple[LineAllocation, ...] = ()


@dataclass(frozen=True)
class DraftDiscount:
    promotion_id: str
    granularity: str
    sponsor: str
    amount: Decimal
    offer_id: str | None = None
    campaign_name: str | None = None
    coupon_code: str | None = None
    applied_after_tax: bool = False
    external_line_id: str | None = None


@dataclass(frozen=True)
class OrderDraft:
    """An order to create in the OMS, exactly as the marketplace sold it."""

    shop_id: str
    source: str
    external_ref: str | None
    currency: str
    lines: tuple[DraftLine, ...]
    discounts: tuple[DraftDiscount, ...] = ()
    shipping_total: Decimal = ZERO
    shipping_discount_total: Decimal = ZERO
    tax_total: Decimal = ZERO
    buyer_name: str | None = None
    buyer_email: str | None = None
    buyer_marketing_opt_in: bool = False
    shipping_address: dict[str, Any] | None = None
    shipping_method: str | None = None
    channel: str | None = None
    placed_at: datetime | None = None

    @property
    def items_total(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), ZERO)

    @property
    def order_discount_total(self) -> Decimal:
        return sum((line.order_discount for line in self.lines), ZERO)

    @property
    def meta_funded_discount_total(self) -> Decimal:
        return sum((line.meta_funded_discount for line in self.lines), ZERO)

    @property
    def grand_total(self) -> Decimal:
        """What the buyer owes: items, less every order-level discount, plus shipping and tax."""
        return (
            self.items_total
            - self.order_discount_total
            - self.meta_funded_discount_total
            + self.shipping_total
            + self.tax_total
        )


@dataclass(frozen=True)
class OmsLine:
    line_id: int
    position: int
    external_line_id: str | None
    sku: str
    name: str | None
    quantity: int
    unit_price: Decimal
    item_discount: Decimal
    order_discount: Decimal
    meta_funded_discount: Decimal
    tax: Decimal
    qty_shipped: int
    qty_cancelled: int
    qty_refunded: int
    refunded_amount: Decimal
    allocations: tuple[LineAllocation, ...] = ()

    @property
    def qty_open(self) -> int:
        """Units neither shipped nor cancelled."""
        return self.quantity - self.qty_shipped - self.qty_cancelled

    @property
    def net_paid(self) -> Decimal:
        """What the seller is owed for the whole line after its seller-funded discount share."""
        return self.unit_price * self.quantity - self.order_discount


@dataclass(frozen=True)
class OmsOrder:
    order_id: int
    reference: str
    shop_id: str
    source: str
    external_ref: str | None
    status: str
    currency: str
    items_total: Decimal
    order_discount_total: Decimal
    meta_funded_discount_total: Decimal
    shipping_total: Decimal
    shipping_discount_total: Decimal
    tax_total: Decimal
    grand_total: Decimal
    buyer_name: str | None
    buyer_email: str | None
    buyer_marketing_opt_in: bool
    shipping_address: dict[str, Any] | None
    placed_at: datetime | None
    lines: tuple[OmsLine, ...] = ()
    discounts: tuple[DraftDiscount, ...] = ()

    def line(self, line_id: int) -> OmsLine:
        for line in self.lines:
            if line.line_id == line_id:
                return line
        raise OmsError(f"order {self.reference} has no line {line_id}")

    def line_by_sku(self, sku: str) -> OmsLine:
        for line in self.lines:
            if line.sku == sku:
                return line
        raise OmsError(f"order {self.reference} has no line for {sku}")


@dataclass(frozen=True)
class ImportResult:
    order_id: int
    reference: str
    created: bool  # False: the order was already there (a rerun or an overlapping run)


@dataclass(frozen=True)
class EventLine:
    line_id: int
    quantity: int | None = None
    amount: Decimal | None = None


@dataclass(frozen=True)
class Shipment:
    shipment_id: int
    order_id: int
    external_shipment_id: str
    carrier: str
    tracking_number: str
    shipping_method: str | None
    lines: tuple[EventLine, ...]


@dataclass(frozen=True)
class Cancellation:
    cancellation_id: int
    order_id: int
    reason_code: str | None
    reason_description: str | None
    restock: bool
    full_order: bool
    origin: str
    lines: tuple[EventLine, ...]


@dataclass(frozen=True)
class Refund:
    refund_id: int
    order_id: int
    reason_code: str
    reason_text: str | None
    items_amount: Decimal
    shipping_amount: Decimal
    deduction_amount: Decimal
    total_amount: Decimal
    full_refund: bool
    return_id: int | None
    origin: str
    lines: tuple[EventLine, ...]


@dataclass(frozen=True)
class Return:
    return_id: int
    order_id: int
    external_ref: str | None
    status: str
    reason: str | None
    message: str | None
    lines: tuple[EventLine, ...]


@dataclass(frozen=True)
class OmsChange:
    change_id: int
    order_id: int
    shop_id: str
    kind: str
    ref_id: int
    details: dict[str, Any] = field(default_factory=dict)
    created_at: datetime | None = None
