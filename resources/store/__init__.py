"""Store catalog sources: where a shop's products come from.

    from resources.store import source_for
    source = source_for("woocommerce_csv", "exports/products.csv")
    raw = source.read()                       # raises StoreSourceError when unreadable
    rows = source.to_store_rows(raw)          # store-neutral variant rows + accounted-for rest

Adding a store is one small `StoreSource` subclass (a `kind`, `read`, `to_store_rows`) and one
line in `SOURCES`.
"""

from resources.store.base import (
    EXCLUDED_COLUMNS,
    REJECTED_COLUMNS,
    STORE_COLUMNS,
    ExclusionReason,
    RejectionReason,
    StoreRows,
    StoreSource,
    StoreSourceError,
)
from resources.store.shopify_csv import ShopifyCsvSource
from resources.store.sql import SqlSource
from resources.store.woocommerce_csv import WooCommerceCsvSource

SOURCES: dict[str, type[StoreSource]] = {
    source.kind: source for source in (ShopifyCsvSource, WooCommerceCsvSource, SqlSource)
}


def source_class(kind: str) -> type[StoreSource]:
    """The StoreSource class for `kind`; a clear error lists the kinds that exist."""
    try:
        return SOURCES[kind]
    except KeyError:
        known = ", ".join(sorted(SOURCES))
        raise StoreSourceError(kind, "", f"unknown source kind; use one of {known}") from None


def source_for(kind: str, location: str) -> StoreSource:
    """The store source of `kind` reading from `location` (a file path or `<url>#<table>`)."""
    return source_class(kind)(location)


__all__ = [
    "EXCLUDED_COLUMNS",
    "REJECTED_COLUMNS",
    "SOURCES",
    "STORE_COLUMNS",
    "ExclusionReason",
    "RejectionReason",
    "ShopifyCsvSource",
    "SqlSource",
    "StoreRows",
    "StoreSource",
    "StoreSourceError",
    "WooCommerceCsvSource",
    "source_class",
    "source_for",
]
