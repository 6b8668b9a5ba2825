"""Meta's per-item rules for PRODUCT_ITEM records (catalog.md §2.2-§2.4), shared by items_batch
and feed uploads.

    findings = validate_item(data, method="CREATE", settings=CatalogSettings())
    findings.errors     # ["A required field is missing: availability ...", ...]
    findings.warnings   # ["Unrecognised field: ...", ...]

Where Meta's documents disagree (field lengths, enums) the permissive reading is the default and
the stricter one a setting (`CatalogSettings`).
"""

import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

# ISO 4217 minor units for the currencies a shop may sell in; an unknown code is an error.
CURRENCY_MINOR_UNITS: dict[str, int] = {
    **dict.fromkeys(
        "USD EUR GBP CAD AUD NZD CHF SEK NOK DKK PLN CZK HUF RON BGN MXN BRL ARS COP PEN ZAR INR "
        "IDR PHP THB MYR SGD HKD TWD CNY ILS TRY AED SAR QAR EGP NGN KES MAD UAH".split(),
        2,
    ),
    **dict.fromkeys("JPY KRW CLP VND ISK PYG UGX XAF XOF".split(), 0),
    **dict.fromkeys("BHD KWD OMR JOD TND".split(), 3),
}

# The SDK supersets (catalog.md §2.4): the sandbox accepts anything Meta might.
AVAILABILITY = frozenset(
    {
        "in stock",
        "out of stock",
        "preorder",
        "available for order",
        "discontinued",
        "pending",
        "mark_as_sold",
        "mark_as_expired",
    }
)
CONDITION = frozenset(
    {"new", "refurbished", "used", "used_like_new", "used_good", "used_fair", "cpo", "open_box_new"}
)
GENDER = frozenset({"female", "male", "unisex"})
AGE_GROUP = frozenset({"newborn", "infant", "toddler", "kids", "adult", "all ages", "teen"})
STATUS = frozenset({"active", "archived", "published", "staging", "hidden", "whitelist_only"})
ENUMS: dict[str, frozenset[str]] = {
    "availability": AVAILABILITY,
    "condition": CONDITION,
    "gender": GENDER,
    "age_group": AGE_GROUP,
    "status": STATUS,
    "visibility": STATUS,
}

REQUIRED_ON_CREATE = (
    "id",
    "title",
    "description",
    "availability",
    "condition",
    "price",
    "link",
    "brand",
)

# Commerce fields page (D-FIELDS) limits; the items_batch reference is stricter for some
# (title 100, description 5000, color 100): configurable in CatalogSettings.field_limits.
DEFAULT_FIELD_LIMITS: dict[str, int] = {
    "id": 100,
    "title": 200,
    "description": 9999,
    "rich_text_description": 9999,
    "brand": 100,
    "item_group_id": 100,
    "google_product_category": 250,
    "product_type": 750,
    "color": 200,
    "size": 200,
    "material": 200,
    "pattern": 100,
    "gtin": 70,
    "mpn": 100,
    "vendor_id": 100,
    "additional_image_link": 2000,
    **{f"custom_label_{n}": 100 for n in range(5)},
}

KNOWN_FIELDS = frozenset(
    {
        *REQUIRED_ON_CREATE,
        *DEFAULT_FIELD_LIMITS,
        "image_link",
        "image",
        "video",
        "mobile_link",
        "sale_price",
        "sale_price_effective_date",
        "gender",
        "age_group",
        "fb_product_category",
        "quantity_to_sell_on_facebook",
        "inventory",
        "status",
        "visibility",
        "shipping",
        "shipping_weight",
        "internal_label",
        "additional_variant_attribute",
        "expiration_date",
        "disabled_capabilities",
        "origin_country",
        "importer_name",
        "importer_address",
        "manufacturer_info",
        "wa_compliance_category",
        "unit_price",
        "rating_count",
        "user_rating",
        "ordering_index",
        "applink",
        "commerce_tax_category",
        "item_sub_type",
        *(f"custom_number_{n}" for n in range(5)),
    }
)
INTEGER_FIELDS = ("quantity_to_sell_on_facebook", "inventory", "ordering_index", "rating_count")
URL_FIELDS = ("link", "image_link", "mobile_link")
PRICE_PATTERN = re.compile(r"^(?P<amount>\d+(?:\.\d+)?) (?P<currency>[A-Z]{3})$")


@dataclass(frozen=True)
class Problem:
    """One finding: `summary` names the kind (feed error groups key on it), `message` the case."""

    summary: str
    message: str


@dataclass
class Findings:
    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    def error(self, summary: str, message: str) -> None:
        self.errors.append(Problem(summary, message))

    def warning(self, summary: str, message: str) -> None:
        self.warnings.append(Problem(summary, message))


@dataclass(frozen=True)
class Price:
    amount: Decimal
    currency: str

    @property
    def minor_units(self) -> int:
        """Amount x 100, as the ProductItem API and product-set filters count it (§2.1)."""
        return int(self.amount * 100)


def parse_price(text: Any) -> Price:
    """`"9.99 EUR"` -> Price; ValueError saying what is wrong otherwise."""
    if not isinstance(text, str):
        raise ValueError(f"price must be a string like '9.99 USD', got {type(text).__name__}")
    match = PRICE_PATTERN.match(text.strip())
    if not match:
        raise ValueError(
            f"Invalid price '{text}': prices must include the cost and an ISO currency code, "
            "with a period as decimal separator (for example: 10.00 GBP)"
        )
    currency = match["currency"]
    if currency not in CURRENCY_MINOR_UNITS:
        raise ValueError(f"Invalid price '{text}': unknown currency code {currency}")
    try:
        amount = Decimal(match["amount"])
    except InvalidOperation as exc:  # the pattern makes this unreachable, kept for safety
        raise ValueError(f"Invalid price '{text}'") from exc
    decimals = -amount.as_tuple().exponent if amount.as_tuple().exponent < 0 else 0
    if decimals > CURRENCY_MINOR_UNITS[currency]:
        raise ValueError(
            f"Invalid price '{text}': {currency} has {CURRENCY_MINOR_UNITS[currency]} decimal "
            "places"
        )
    return Price(amount, currency)


def validate_item(
    data: dict[str, Any],
    *,
    method: str,
    field_limits: dict[str, int],
    require_image: bool = True,
) -> Findings:
    """Check one record's `data` (feed vocabulary). CREATE needs every required field; UPDATE
    checks only what it carries; DELETE only the id."""
    findings = Findings()
    retailer_id = data.get("id")
    if not isinstance(retailer_id, str) or not retailer_id.strip():
        findings.error(
            "A required field is missing: id.",
            "A required field is missing: id. Every item needs a retailer id.",
        )
        return findings
    if method == "DELETE":
        return findings
    if method == "CREATE":
        _check_required(data, findings, require_image)
    _check_unknown(data, retailer_id, findings)
    _check_enums(data, findings)
    _check_lengths(data, field_limits, findings)
    _check_prices(data, findings)
    _check_urls(data, findings)
    _check_integers(data, findings)
    if data.get("item_group_id") is not None and data.get("item_group_id") == retailer_id:
        findings.error(
            "Item id used as item group id",
            f"Invalid value: the id '{retailer_id}' is also used as an item_group_id; an item "
            "id must not equal any item group id",
        )
    return findings


def missing(name: str) -> tuple[str, str]:
    return (
        f"A required field is missing: {name}.",
        f"A required field is missing: {name}. You cannot create a product item without "
        f"required field {name}.",
    )


def invalid(name: str, detail: str) -> tuple[str, str]:
    return f"Invalid value for {name}", f"Invalid value for {name}: {detail}"


def _check_required(data: dict[str, Any], findings: Findings, require_image: bool) -> None:
    for name in REQUIRED_ON_CREATE:
        if _blank(data.get(name)):
            findings.error(*missing(name))
    if require_image and _blank(data.get("image_link")) and not data.get("image"):
        findings.error(*missing("image_link"))


def _check_unknown(data: dict[str, Any], retailer_id: str, findings: Findings) -> None:
    for name in data:
        if name not in KNOWN_FIELDS:
            findings.warning(
                f"Unrecognised field: {name}",
                f"Unrecognised field: A request for item {retailer_id} contains unrecognised "
                f"field: '{name}'",
            )


def _check_enums(data: dict[str, Any], findings: Findings) -> None:
    for name, allowed in ENUMS.items():
        if name not in data:
            continue
        value = data[name]
        if not isinstance(value, str) or value not in allowed:
            supported = ", ".join(f'"{v}"' for v in sorted(allowed))
            findings.error(
                *invalid(name, f"'{value}'. Supported values are {supported} in US English.")
            )


def _check_lengths(data: dict[str, Any], limits: dict[str, int], findings: Findings) -> None:
    for name, value in data.items():
        limit = limits.get(name)
        if limit is not None and isinstance(value, str) and len(value) > limit:
            findings.error(*invalid(name, f"{len(value)} characters, the maximum is {limit}"))


def _check_prices(data: dict[str, Any], findings: Findings) -> None:
    prices: dict[str, Price] = {}
    for name in ("price", "sale_price"):
        value = data.get(name)
        if _blank(value):
            continue
        try:
            prices[name] = parse_price(value)
        except ValueError as exc:
            findings.error(*invalid(name, str(exc)))
    price, sale = prices.get("price"), prices.get("sale_price")
    if price is not None and price.amount <= 0:
        findings.error(*invalid("price", "the price must be positive"))
    if price is not None and sale is not None:
        if sale.currency != price.currency:
            findings.error(*invalid("sale_price", "the currency differs from the price's"))
        elif sale.amount >= price.amount:
            findings.error(*invalid("sale_price", "the sale price must be less than the price"))


def _check_urls(data: dict[str, Any], findings: Findings) -> None:
    for name in URL_FIELDS:
        value = data.get(name)
        if _blank(value):
            continue
        if not isinstance(value, str) or not value.startswith(("http://", "https://")):
            findings.error(*invalid(name, "URLs must start with http:// or https://"))
        elif "facebook.com" in value.split("/")[2]:
            findings.error(*invalid(name, "the link must not be a Facebook URL"))


def _check_integers(data: dict[str, Any], findings: Findings) -> None:
    names = (*INTEGER_FIELDS, *(f"custom_number_{n}" for n in range(5)))
    for name in names:
        value = data.get(name)
        if value is None or value == "":
            continue
        if not _is_whole_number(value):
            findings.error(*invalid(name, f"'{value}' is not a whole number"))


def _is_whole_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, str) and value.isdigit()


def _blank(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())
