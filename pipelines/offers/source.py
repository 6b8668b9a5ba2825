"""The store's discounts: a small CSV contract, read into typed discounts plus rejects with reasons.

    discounts, rejects = read_discounts(Path("discounts.csv"), currency="EUR")

Contract (one row per discount, UTF-8 CSV with a header; column order free, unknown columns
ignored, empty cells mean "not set"):

| column         | required | meaning                                                              |
|----------------|----------|----------------------------------------------------------------------|
| code           | yes      | the store's discount id, unique: [A-Za-z0-9_-], at most 64 chars;    |
|                |          | becomes Meta's offer_id (and the coupon code when `coupon` = yes)    |
| type           | yes      | percent | fixed | free_shipping | bxgy                               |
| value          | see type | percent: whole percent 1-100; fixed: amount off the order (> 0,      |
|                |          | cents at most); bxgy: percent off the free units, default 100;       |
|                |          | free_shipping: empty                                                 |
| currency       | see note | ISO 4217 code of `value` (fixed) and `min_subtotal`; must be the     |
|                |          | shop's currency; required when either is given                       |
| min_subtotal   | no       | the order subtotal needed (decimal)                                  |
| starts_at      | yes      | ISO-8601 with a UTC offset                                           |
| ends_at        | no       | ISO-8601 with a UTC offset, after starts_at; empty = no end          |
| retailer_ids   | no       | the products it applies to, separated by "|"; empty = whole catalog  |
| coupon         | no       | yes = the buyer enters `code`; no (default) = applied automatically  |
| buy_quantity   | bxgy     | units to buy (>= 1)                                                  |
| get_quantity   | bxgy     | units then discounted (>= 1)                                         |
| title          | no       | a name for Commerce Manager                                          |
| enabled        | no       | yes (default) | no; a disabled discount is deactivated on Meta       |

A row breaking a rule becomes a reject (row number, code, reason) and nothing else of it is used;
the other rows still count. Money is Decimal, never parsed through float.
"""

import csv
import re
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path

CODE_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
CURRENCY_PATTERN = re.compile(r"^[A-Z]{3}$")


class DiscountType(StrEnum):
    PERCENT = "percent"
    FIXED = "fixed"
    FREE_SHIPPING = "free_shipping"
    BXGY = "bxgy"


@dataclass(frozen=True)
class StoreDiscount:
    code: str
    type: DiscountType
    starts_at: datetime
    ends_at: datetime | None = None
    percent: int | None = None  # percent and bxgy
    amount: Decimal | None = None  # fixed
    currency: str | None = None
    min_subtotal: Decimal | None = None
    retailer_ids: tuple[str, ...] = ()
    coupon: bool = False
    buy_quantity: int = 0
    get_quantity: int = 0
    title: str | None = None
    enabled: bool = True


@dataclass(frozen=True)
class DiscountReject:
    row_number: int  # the header is row 1
    code: str
    reason: str


class DiscountError(ValueError):
    pass


def read_discounts(path: Path, currency: str) -> tuple[list[StoreDiscount], list[DiscountReject]]:
    """The file's discounts and rejects. A missing file is a store with no discounts."""
    if not path.exists():
        return [], []
    with path.open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    return parse_discounts(rows, currency)


def parse_discounts(
    rows: list[dict[str, str]], currency: str
) -> tuple[list[StoreDiscount], list[DiscountReject]]:
    discounts: list[StoreDiscount] = []
    rejects: list[DiscountReject] = []
    seen: set[str] = set()
    for index, raw in enumerate(rows):
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items()}
        code = row.get("code", "")
        try:
            if code.lower() in seen:
                raise DiscountError(f"code {code} appears twice (codes are case-insensitive)")
            discount = parse_discount(row, currency)
        except DiscountError as error:
            rejects.append(DiscountReject(index + 2, code, str(error)))
            continue
        seen.add(code.lower())
        discounts.append(discount)
    return discounts, rejects


def parse_discount(row: dict[str, str], shop_currency: str) -> StoreDiscount:
    code = row.get("code", "")
    if not CODE_PATTERN.match(code):
        raise DiscountError("code must be 1-64 letters, digits, '-' or '_'")
    try:
        kind = DiscountType(row.get("type", "").lower())
    except ValueError:
        raise DiscountError(
            f"type must be one of {', '.join(t.value for t in DiscountType)}"
        ) from None
    starts_at = _moment(row.get("starts_at", ""), "starts_at", required=True)
    ends_at = _moment(row.get("ends_at", ""), "ends_at")
    if ends_at is not None and ends_at <= starts_at:
        raise DiscountError("ends_at must be after starts_at")
    currency = row.get("currency", "").upper() or None
    if currency is not None:
        if not CURRENCY_PATTERN.match(currency):
            raise DiscountError("currency must be an ISO 4217 code such as EUR")
        if currency != shop_currency:
            raise DiscountError(f"currency {currency} is not the shop's currency {shop_currency}")
    min_subtotal = _amount(row.get("min_subtotal", ""), "min_subtotal", allow_zero=True)
    fields = _value_fields(kind, row)
    if (fields.get("amount") is not None or min_subtotal is not None) and currency is None:
        raise DiscountError("currency is required with a fixed value or a min_subtotal")
    if kind == DiscountType.BXGY and min_subtotal is not None:
        raise DiscountError("a bxgy discount takes buy_quantity, not min_subtotal")
    return StoreDiscount(
        code=code,
        type=kind,
        starts_at=starts_at,
        ends_at=ends_at,
        currency=currency,
        min_subtotal=min_subtotal,
        retailer_ids=tuple(r.strip() for r in row.get("retailer_ids", "").split("|") if r.strip()),
        coupon=_flag(row.get("coupon", ""), "coupon", default=False),
        title=row.get("title") or None,
        enabled=_flag(row.get("enabled", ""), "enabled", default=True),
        **fields,
    )


def _value_fields(kind: DiscountType, row: dict[str, str]) -> dict:
    value = row.get("value", "")
    if kind == DiscountType.PERCENT:
        return {"percent": _percent(value, default=None)}
    if kind == DiscountType.FIXED:
        amount = _amount(value, "value")
        if amount is None:
            raise DiscountError("a fixed discount needs value (the amount off)")
        return {"amount": amount}
    if kind == DiscountType.FREE_SHIPPING:
        if value:
            raise DiscountError("a free_shipping discount takes no value")
        return {}
    return {
        "percent": _percent(value, default=100),
        "buy_quantity": _count(row.get("buy_quantity", ""), "buy_quantity"),
        "get_quantity": _count(row.get("get_quantity", ""), "get_quantity"),
    }


def _percent(value: str, default: int | None) -> int:
    if not value:
        if default is None:
            raise DiscountError("a percent discount needs value (1-100)")
        return default
    if not value.isdigit() or not 1 <= int(value) <= 100:
        raise DiscountError("value must be a whole percent from 1 to 100")
    return int(value)


def _count(value: str, name: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise DiscountError(f"{name} must be a whole number of at least 1")
    return int(value)


def _amount(value: str, name: str, *, allow_zero: bool = False) -> Decimal | None:
    if not value:
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise DiscountError(f"{name} must be a decimal amount such as 10.00") from None
    if not amount.is_finite() or amount < 0 or (amount == 0 and not allow_zero):
        raise DiscountError(f"{name} must be a positive amount")
    if amount != amount.quantize(Decimal("0.01")):
        raise DiscountError(f"{name} has more than two decimals")
    return amount


def _moment(value: str, name: str, *, required: bool = False) -> datetime | None:
    if not value:
        if required:
            raise DiscountError(f"{name} is required")
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise DiscountError(f"{name} must be ISO-8601, e.g. 2026-05-01T00:00:00+02:00") from None
    if moment.tzinfo is None:
        raise DiscountError(f"{name} needs a UTC offset")
    return moment


def _flag(value: str, name: str, *, default: bool) -> bool:
    if not value:
        return default
    if value.lower() in ("yes", "true", "1"):
        return True
    if value.lower() in ("no", "false", "0"):
        return False
    raise DiscountError(f"{name} must be yes or no")
