"""Pydantic models of Meta's Commerce order, promotion and finance payloads.

    order = MetaOrder.model_validate(graph.get(order_id, params={"fields": ORDER_FIELDS}))
    order.items[0].price_per_unit.amount      # Decimal("20.00"), never a float
    order.estimated_payment_details.total_amount

Field names follow Meta's wire names (orders.md §5, §7-§13). Every model tolerates fields it does
not know (`extra="allow"`): Meta adds fields, and a new one must not break an import. Money is
Meta's `currency_amount` object, `{"amount": "12.30", "currency": "EUR"}`, parsed from its decimal
string into `Decimal`; a float amount is refused, because a float has already lost cents.

Edges that Graph nests as `{"data": [...], "paging": {...}}` (an order's `items`, a shipment's
`items`, `promotion_details`, ...) are flattened to plain lists on reading.
"""

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)


class OrderState(StrEnum):
    FB_PROCESSING = "FB_PROCESSING"
    CREATED = "CREATED"
    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"


class OrderFilter(StrEnum):
    """`filters` of `commerce_orders` (orders.md §4); Meta takes either case, we send lowercase."""

    HAS_CANCELLATIONS = "has_cancellations"
    HAS_REFUNDS = "has_refunds"
    HAS_FULFILLMENTS = "has_fulfillments"
    NO_SHIPMENTS = "no_shipments"
    NO_CANCELLATIONS = "no_cancellations"
    NO_REFUNDS = "no_refunds"


class CancelReasonCode(StrEnum):
    CUSTOMER_REQUESTED = "CUSTOMER_REQUESTED"
    OUT_OF_STOCK = "OUT_OF_STOCK"
    INVALID_ADDRESS = "INVALID_ADDRESS"
    SUSPICIOUS_ORDER = "SUSPICIOUS_ORDER"
    CANCEL_REASON_OTHER = "CANCEL_REASON_OTHER"


class RefundReasonCode(StrEnum):
    BUYERS_REMORSE = "BUYERS_REMORSE"
    DAMAGED_GOODS = "DAMAGED_GOODS"
    NOT_AS_DESCRIBED = "NOT_AS_DESCRIBED"
    QUALITY_ISSUE = "QUALITY_ISSUE"
    REFUND_REASON_OTHER = "REFUND_REASON_OTHER"
    WRONG_ITEM = "WRONG_ITEM"
    FACEBOOK_INITIATED = "FACEBOOK_INITIATED"
    # In the reference/SDK only; meanings undocumented.
    REFUND_COMPROMISED = "REFUND_COMPROMISED"
    REFUND_FOR_RETURN = "REFUND_FOR_RETURN"
    REFUND_SFI_FAKE = "REFUND_SFI_FAKE"
    REFUND_SFI_REAL = "REFUND_SFI_REAL"


class ReturnStatus(StrEnum):
    REQUESTED = "REQUESTED"
    APPROVED = "APPROVED"
    DISAPPROVED = "DISAPPROVED"
    REFUNDED = "REFUNDED"
    MERCHANT_MARKED_COMPLETED = "MERCHANT_MARKED_COMPLETED"


class ReturnUpdateEvent(StrEnum):
    """`update_event` of `update_return` (orders.md §10.2: SDK/gem only, lower confidence)."""

    ACCEPT_RETURN = "ACCEPT_RETURN"
    # TODO(returns-decline): Meta documents no decline event name; the sandbox accepts this one.
    DECLINE_RETURN = "DECLINE_RETURN"
    CLOSE_RETURN = "CLOSE_RETURN"


class PromotionSponsor(StrEnum):
    """Who funds a discount; Meta's wire values are lowercase `merchant` / `facebook`."""

    MERCHANT = "merchant"
    FACEBOOK = "facebook"


class TargetGranularity(StrEnum):
    ITEM_LEVEL = "item_level"
    ORDER_LEVEL = "order_level"


class TransactionType(StrEnum):
    """Known `transaction_type` values; unknown ones are kept as strings (finance quarantines)."""

    SALE = "SALE"
    REFUND = "REFUND"
    CHARGEBACK = "CHARGEBACK"
    CHARGEBACK_FEE = "CHARGEBACK_FEE"
    CHARGEBACK_REVERSAL = "CHARGEBACK_REVERSAL"
    GOODWILL_TRANSFER = "GOODWILL_TRANSFER"


class MetaModel(BaseModel):
    """Tolerant base: unknown fields are kept (reachable through `model_extra`), never an error."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


def unwrap_edge(value: Any) -> Any:
    """Graph nests edges as {"data": [...], "paging": ...}; callers want the list."""
    if isinstance(value, dict) and "data" in value:
        return value["data"]
    return [] if value is None else value


# Marks a list field that Meta may send as a nested edge.
EDGE = BeforeValidator(unwrap_edge)


class Money(BaseModel):
    """Meta's currency_amount: a Decimal in major units and an ISO 4217 code."""

    model_config = ConfigDict(frozen=True, extra="allow")

    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)

    @field_validator("amount", mode="before")
    @classmethod
    def _refuse_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("money amounts must be decimal strings or Decimal, never floats")
        if isinstance(value, str):
            return value.strip()
        return value

    @field_validator("currency")
    @classmethod
    def _upper_code(cls, value: str) -> str:
        return value.upper()

    @classmethod
    def of(cls, amount: Decimal | str | int, currency: str) -> "Money":
        return cls(amount=Decimal(str(amount)), currency=currency)

    def to_graph(self) -> dict[str, str]:
        """The wire form: two-decimal string in major units (orders.md §1.4)."""
        return {"amount": f"{self.amount.quantize(Decimal('0.01'))}", "currency": self.currency}

    def __add__(self, other: "Money") -> "Money":
        self._same_currency(other)
        return Money(amount=self.amount + other.amount, currency=self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same_currency(other)
        return Money(amount=self.amount - other.amount, currency=self.currency)

    def __neg__(self) -> "Money":
        return Money(amount=-self.amount, currency=self.currency)

    def _same_currency(self, other: "Money") -> None:
        if other.currency != self.currency:
            raise ValueError(f"cannot combine {self.currency} with {other.currency}")


# -- order parts ----------------------------------------------------------------------------------


class BuyerDetails(MetaModel):
    name: str | None = None
    email: str | None = None
    email_remarketing_option: bool | None = None


class ShippingAddress(MetaModel):
    name: str | None = None
    street1: str | None = None
    street2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = None


class EstimatedShippingTime(MetaModel):
    min_days: int | None = None
    max_days: int | None = None


class ShippingOption(MetaModel):
    name: str | None = None
    price: Money | None = None
    calculated_tax: Money | None = None
    estimated_shipping_time: EstimatedShippingTime | None = None
    promotion_details: Annotated[list["PromotionDetail"], EDGE] = Field(default_factory=list)


class PaymentSubtotal(MetaModel):
    items: Money | None = None
    shipping: Money | None = None


class EstimatedPaymentDetails(MetaModel):
    subtotal: PaymentSubtotal | None = None
    tax: Money | None = None
    total_amount: Money | None = None
    tax_remitted: bool | None = None
    facebook_paid_amount: Money | None = None
    buyer_paid_amount: Money | None = None


class CapturedTax(MetaModel):
    total_tax: Money | None = None


class ItemTaxDetails(MetaModel):
    estimated_tax: Money | None = None
    captured_tax: CapturedTax | None = None


class PromotionDetail(MetaModel):
    """One applied offer (orders.md §11.1). `retailer_id` is the seller's offer id."""

    promotion_id: str | None = None
    retailer_id: str | None = None
    campaign_name: str | None = None
    coupon_code: str | None = None
    applied_amount: Money | None = None
    applied_after_tax: bool | None = None
    sponsor: str | None = None  # PromotionSponsor value; kept a string to tolerate new ones
    target_granularity: str | None = None  # TargetGranularity value

    @field_validator("sponsor", "target_granularity", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @property
    def is_meta_funded(self) -> bool:
        return self.sponsor == PromotionSponsor.FACEBOOK

    @property
    def is_order_level(self) -> bool:
        return self.target_granularity == TargetGranularity.ORDER_LEVEL


# Meta's own name for this object (CommercePromotionDetail); the brief calls it a Promotion.
Promotion = PromotionDetail


class PromotionAllocation(MetaModel):
    """The part of an order-level discount allocated to an item at a fulfilment/cancellation."""

    promotion_id: str
    allocation_amount: Money


class ItemStatus(MetaModel):
    """The item's quantity breakdown (`status`, non-default field)."""

    in_progress: int | None = None
    fulfilled: int | None = None
    cancelled: int | None = None
    refunded: int | None = None


class MetaOrderItem(MetaModel):
    id: str
    retailer_id: str | None = None
    product_id: str | None = None
    quantity: int | None = None
    price_per_unit: Money | None = None
    product_name: str | None = None
    tax_details: ItemTaxDetails | None = None
    promotion_details: Annotated[list[PromotionDetail], EDGE] = Field(default_factory=list)
    selected_shipping_option: ShippingOption | None = None
    status: ItemStatus | None = None
    amount_available_for_refund: Money | None = None
    customization: str | None = None
    ship_by: datetime | None = None


class OrderStatus(MetaModel):
    state: str


class MetaOrder(MetaModel):
    """A CommerceOrder (orders.md §5.1). Only `id` is always there; the rest depends on fields."""

    id: str
    order_status: OrderStatus | None = None
    created: datetime | None = None
    last_updated: datetime | None = None
    merchant_order_id: str | None = None
    channel: str | None = None
    buyer_details: BuyerDetails | None = None
    shipping_address: ShippingAddress | None = None
    selected_shipping_option: ShippingOption | None = None
    estimated_payment_details: EstimatedPaymentDetails | None = None
    items: Annotated[list[MetaOrderItem], EDGE] = Field(default_factory=list)
    promotion_details: Annotated[list[PromotionDetail], EDGE] = Field(default_factory=list)
    ship_by_date: date | None = None
    is_group_buy: bool | None = None
    is_test_order: bool | None = None
    contains_bopis_items: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_status(cls, data: Any) -> Any:
        # Legacy v3.2 answers carry order_status.status_code instead of .state.
        if isinstance(data, dict):
            status = data.get("order_status")
            if isinstance(status, dict) and "state" not in status and "status_code" in status:
                data = {**data, "order_status": {**status, "state": status["status_code"]}}
        return data

    @property
    def state(self) -> str | None:
        return self.order_status.state if self.order_status else None


# -- write payloads and their results -------------------------------------------------------------


class OrderAck(BaseModel):
    """One order of a batch acknowledgement."""

    order_id: str = Field(min_length=1)
    merchant_order_reference: str | None = None

    def to_graph(self) -> dict[str, str]:
        body = {"id": self.order_id}
        if self.merchant_order_reference:
            body["merchant_order_reference"] = self.merchant_order_reference
        return body


class AckError(MetaModel):
    error_code: int | None = None
    error_message: str | None = None


class AckResult(MetaModel):
    """One order's outcome of an acknowledgement: a new `state`, or an `error`."""

    order_id: str = Field(alias="id")
    state: str | None = None
    error: AckError | None = None

    @model_validator(mode="before")
    @classmethod
    def _legacy_status(cls, data: Any) -> Any:
        if isinstance(data, dict) and "state" not in data and "status" in data:
            data = {**data, "state": data["status"]}
        return data

    @property
    def ok(self) -> bool:
        return self.error is None


class _ItemRef(BaseModel):
    """Exactly one of Meta's line `item_id` or the seller's `retailer_id` names an order item."""

    retailer_id: str | None = None
    item_id: str | None = None

    @model_validator(mode="after")
    def _exactly_one_ref(self):
        if (self.retailer_id is None) == (self.item_id is None):
            raise ValueError("give exactly one of retailer_id or item_id")
        return self

    def _ref(self) -> dict[str, str]:
        return {"item_id": self.item_id} if self.item_id else {"retailer_id": self.retailer_id}


class ShipmentItem(_ItemRef):
    quantity: int = Field(gt=0)

    def to_graph(self) -> dict[str, Any]:
        return self._ref() | {"quantity": self.quantity}


class CancelItem(_ItemRef):
    quantity: int = Field(gt=0)

    def to_graph(self) -> dict[str, Any]:
        return self._ref() | {"quantity": self.quantity}


class RefundItem(_ItemRef):
    """Refund whole units (`quantity`) or a pre-tax amount (`item_refund_amount`), not both."""

    quantity: int | None = Field(default=None, gt=0)
    item_refund_amount: Money | None = None

    @model_validator(mode="after")
    def _quantity_xor_amount(self):
        if (self.quantity is None) == (self.item_refund_amount is None):
            raise ValueError("give exactly one of quantity or item_refund_amount")
        return self

    def to_graph(self) -> dict[str, Any]:
        if self.quantity is not None:
            return self._ref() | {"item_refund_quantity": self.quantity}
        return self._ref() | {"item_refund_amount": self.item_refund_amount.to_graph()}


class RefundDeduction(BaseModel):
    deduction_type: str = "RETURN_SHIPPING"  # the only type Meta allows
    deduction_amount: Money

    def to_graph(self) -> dict[str, Any]:
        return {
            "deduction_type": self.deduction_type,
            "deduction_amount": self.deduction_amount.to_graph(),
        }


class TrackingInfo(MetaModel):
    carrier: str = Field(min_length=1)
    tracking_number: str = Field(min_length=1)
    shipping_method_name: str | None = None

    def to_graph(self) -> dict[str, str]:
        return self.model_dump(exclude_none=True)


class FulfillmentAddress(BaseModel):
    street_1: str
    street_2: str | None = None
    city: str
    state: str
    country: str
    postal_code: str
    province_code: str | None = None


class Fulfillment(BaseModel):
    """Ship-from location: a configured location id or an address (one is required)."""

    fulfillment_location_id: str | None = None
    fulfillment_address: FulfillmentAddress | None = None

    @model_validator(mode="after")
    def _one_location(self):
        if self.fulfillment_location_id is None and self.fulfillment_address is None:
            raise ValueError("give fulfillment_location_id or fulfillment_address")
        return self

    def to_graph(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)


class WriteResult(MetaModel):
    """Meta's `{"success": true}` answer to shipments, cancellations, update_shipment, ..."""

    success: bool = False


class ShipmentResult(WriteResult):
    """A created shipment. Meta answers only `success`; the client reads the shipment back by
    `external_shipment_id` to learn its Meta id when it can."""

    shipment_id: str | None = None
    external_shipment_id: str | None = None


class CancellationResult(WriteResult):
    cancellation_id: str | None = None


class RefundResult(WriteResult):
    refund_id: str | None = None


# -- order edges ----------------------------------------------------------------------------------


class ShipmentItemTax(MetaModel):
    final_tax: Money | None = None


class MetaShipmentItem(MetaModel):
    id: str | None = None
    retailer_id: str | None = None
    product_id: str | None = None
    quantity: int | None = None
    tax: ShipmentItemTax | None = None


class MetaShipment(MetaModel):
    id: str
    external_shipment_id: str | None = None
    items: Annotated[list[MetaShipmentItem], EDGE] = Field(default_factory=list)
    tracking_info: TrackingInfo | None = None


class CancelReason(MetaModel):
    reason_code: str | None = None
    reason_description: str | None = None


class MetaCancellationItem(MetaModel):
    id: str | None = None
    retailer_id: str | None = None
    product_id: str | None = None
    quantity: int | None = None
    promotion_allocations: Annotated[list[PromotionAllocation], EDGE] = Field(default_factory=list)


class MetaCancellation(MetaModel):
    id: str
    items: Annotated[list[MetaCancellationItem], EDGE] = Field(default_factory=list)
    cancel_reason: CancelReason | None = None


class RefundReason(MetaModel):
    reason_code: str | None = None
    reason_text: str | None = None


class RefundAmount(MetaModel):
    """`refund_amount`: a currency_amount plus bare decimal-string breakdowns (orders.md §9.4).

    Meta's sign of `tax` is inconsistent in its own example; read `total`/`amount`, not a sum."""

    amount: Decimal
    currency: str
    subtotal: Decimal | None = None
    shipping: Decimal | None = None
    tax: Decimal | None = None
    total: Decimal | None = None

    @field_validator("amount", "subtotal", "shipping", "tax", "total", mode="before")
    @classmethod
    def _refuse_float(cls, value: Any) -> Any:
        if isinstance(value, float):
            raise ValueError("money amounts must be decimal strings, never floats")
        return value

    def money(self) -> Money:
        return Money(amount=self.amount, currency=self.currency)


class MetaRefundItem(MetaModel):
    id: str | None = None
    retailer_id: str | None = None
    product_id: str | None = None
    refund_subtotal: Money | None = None
    quantity: int | None = None


class MetaRefund(MetaModel):
    id: str
    items: Annotated[list[MetaRefundItem], EDGE] = Field(default_factory=list)
    refund_reason: RefundReason | None = None
    refund_amount: RefundAmount | None = None
    return_id: str | None = None


class KeyValue(MetaModel):
    key: str
    value: Any = None


class MetaReturn(MetaModel):
    id: str
    return_status: str | None = None
    return_message: str | None = None
    merchant_return_id: str | None = None
    item_return_quantities: Annotated[list[KeyValue], EDGE] = Field(default_factory=list)
    item_return_reasons: Annotated[list[KeyValue], EDGE] = Field(default_factory=list)
    order: MetaOrder | None = None

    def quantities_by_item(self) -> dict[str, int]:
        return {kv.key: int(kv.value) for kv in self.item_return_quantities}

    def reasons_by_item(self) -> dict[str, str]:
        return {kv.key: str(kv.value).upper() for kv in self.item_return_reasons}


# -- finance --------------------------------------------------------------------------------------


class TaxDetail(MetaModel):
    tax_category: str | None = None
    jurisdiction: str | None = None
    imposition: str | None = None
    item_tax_rate: str | None = None
    item_tax_amount: Money | None = None


class Transaction(MetaModel):
    """A commerce transaction_detail (orders.md §13.3). `transaction_type` stays a string so an
    unknown type reaches the caller (to quarantine) instead of failing validation."""

    id: str | None = None
    transaction_type: str
    transaction_date: datetime | None = None
    order_id: str | None = None
    merchant_order_id: str | None = None
    order_details: MetaOrder | None = None
    items: Annotated[list[MetaOrderItem], EDGE] = Field(default_factory=list)
    transfer_id: str | None = None
    processing_fee: Money | None = None
    net_payment_amount: Money | None = None
    tax_rate: str | None = None
    tax_details: Annotated[list[TaxDetail], EDGE] = Field(default_factory=list)
    payout_reference_id: str | None = None

    @property
    def known_type(self) -> bool:
        return self.transaction_type in TransactionType.__members__

    @property
    def resolved_order_id(self) -> str | None:
        if self.order_id:
            return self.order_id
        return self.order_details.id if self.order_details else None


class Payout(MetaModel):
    amount: Money
    payout_date: datetime | None = None
    payout_reference_id: str | None = None
    status: str | None = None
    transfer_id: str | None = None

    @field_validator("payout_date", mode="before")
    @classmethod
    def _empty_date(cls, value: Any) -> Any:
        # An empty payout_date means the money is still in the processor balance.
        return value or None


class PaymentShipmentRef(MetaModel):
    id: str | None = None
    external_shipment_id: str | None = None


class PaymentItem(MetaModel):
    id: str
    quantity: int | None = None
    promotion_allocations: Annotated[list[PromotionAllocation], EDGE] = Field(default_factory=list)


class OrderPayment(MetaModel):
    """One payment of an order: one per shipment (orders.md §13.4)."""

    id: str
    subtotal: PaymentSubtotal | None = None
    tax: Money | None = None
    tax_remitted: bool | None = None
    total_amount: Money | None = None
    shipments: Annotated[list[PaymentShipmentRef], EDGE] = Field(default_factory=list)
    transaction_details: Annotated[list[Transaction], EDGE] = Field(default_factory=list)
    items: Annotated[list[PaymentItem], EDGE] = Field(default_factory=list)

    @property
    def captured(self) -> bool:
        """Orders whose payment has no transaction details can't be refunded (orders.md §13.4)."""
        return bool(self.transaction_details)


ShippingOption.model_rebuild()
MetaOrderItem.model_rebuild()
