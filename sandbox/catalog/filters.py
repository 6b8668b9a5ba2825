"""The product-set filter rule language (catalog.md §5), evaluated over stored items.

    rule = parse_filter('{"or": [{"retailer_id": {"is_any": ["a", "b"]}},
                                 {"product_type": {"i_contains": "shirt"}}]}')
    matches(rule, item_fields)      # item_fields: the item in read vocabulary (see models.py)

An empty rule (`{}` or nothing) matches every item. A malformed rule is refused when the set is
created, not when it is read.
"""

import json
from collections.abc import Callable
from typing import Any

from sandbox.core.errors import InvalidParameter

NUMERIC_OPS = ("lt", "lte", "gt", "gte")


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _eq(left: Any, right: Any) -> bool:
    if isinstance(left, list):
        return any(_text(item).lower() == _text(right).lower() for item in left)
    return _text(left).lower() == _text(right).lower()


def _contains(left: Any, right: Any) -> bool:
    return _text(right).lower() in _text(left).lower()


def _is_any(left: Any, right: Any) -> bool:
    wanted = {_text(v).lower() for v in _as_list(right)}
    return any(_text(v).lower() in wanted for v in _as_list(left))


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _compare(op: str) -> Callable[[Any, Any], bool]:
    def compare(left: Any, right: Any) -> bool:
        a, b = _number(left), _number(right)
        if a is None or b is None:
            return False
        return {"lt": a < b, "lte": a <= b, "gt": a > b, "gte": a >= b}[op]

    return compare


# Meta says the operators are case-insensitive anyway, so `i_` variants share the function.
OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": _eq,
    "neq": lambda left, right: not _eq(left, right),
    "contains": _contains,
    "not_contains": lambda left, right: not _contains(left, right),
    "starts_with": lambda left, right: _text(left).lower().startswith(_text(right).lower()),
    "is_any": _is_any,
    "is_not_any": lambda left, right: not _is_any(left, right),
    **{op: _compare(op) for op in NUMERIC_OPS},
}
OPERATORS.update({f"i_{name}": fn for name, fn in list(OPERATORS.items())})

FILTER_FIELDS = frozenset(
    {
        "retailer_id",
        "retailer_product_group_id",
        "product_item_id",
        "product_feed_id",
        "feed_id",
        "name",
        "brand",
        "category",
        "product_type",
        "availability",
        "condition",
        "gender",
        "age_group",
        "color",
        "size",
        "material",
        "pattern",
        "price_amount",
        "sale_price_amount",
        "currency",
        "review_status",
        "visibility",
        "internal_label",
        *(f"custom_label_{n}" for n in range(5)),
        *(f"custom_number_{n}" for n in range(5)),
    }
)


def parse_filter(raw: Any) -> dict[str, Any]:
    """The rule from a JSON string or a native dict; InvalidParameter when malformed."""
    if raw in (None, ""):
        return {}
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise InvalidParameter("(#100) Param filter must be a JSON-encoded rule") from exc
    if not isinstance(raw, dict):
        raise InvalidParameter("(#100) Param filter must be a JSON object")
    _check_rule(raw)
    return raw


def canonical(rule: dict[str, Any]) -> str:
    """One spelling per rule, to find sets with identical filters (error 10803)."""
    return json.dumps(rule, sort_keys=True, separators=(",", ":"))


def _check_rule(rule: dict[str, Any]) -> None:
    for key, value in rule.items():
        if key in ("and", "or"):
            if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
                raise InvalidParameter(f"(#100) filter: '{key}' takes a list of rules")
            for sub in value:
                _check_rule(sub)
            continue
        if key not in FILTER_FIELDS:
            raise InvalidParameter(f"(#100) filter: unsupported field '{key}'")
        if not isinstance(value, dict) or len(value) != 1:
            raise InvalidParameter(f"(#100) filter: '{key}' needs one operator, e.g. {{'eq': x}}")
        op = next(iter(value))
        if op.lower() not in OPERATORS:
            raise InvalidParameter(f"(#100) filter: unsupported operator '{op}' on '{key}'")


def matches(rule: dict[str, Any], item: dict[str, Any]) -> bool:
    """True when `item` (read vocabulary plus filter-only fields) satisfies every clause."""
    for key, value in rule.items():
        if key == "and":
            if not all(matches(sub, item) for sub in value):
                return False
        elif key == "or":
            if not any(matches(sub, item) for sub in value):
                return False
        else:
            op, operand = next(iter(value.items()))
            if not OPERATORS[op.lower()](item.get(key), operand):
                return False
    return True
