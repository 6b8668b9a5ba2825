"""Product sets that follow the store's collections (one set per product_type).

    desired = desired_product_sets(catalog.items)          # pure: collection -> filter rule
    summary = sync_product_sets(ctx, desired)              # created / updated / deleted

Each set is keyed in `product_set_map` by the collection it mirrors and the hash of its filter.
A create is recorded in the Graph write outbox first; when a crash lost the new set's id, the
rerun's create meets Meta's 10803 (a set with this filter exists) and adopts that set.
"""

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd
from sqlalchemy import delete, insert, select, update

from resources.db.catalog_tables import product_set_map
from resources.db.outbox import GraphWriteOutbox, idempotency_key
from resources.meta.errors import GraphError

logger = logging.getLogger(__name__)

DUPLICATE_FILTER_CODE = 10803
MAX_SET_NAME = 100  # TODO(meta-limits): Meta documents no product set name limit; kept short


@dataclass(frozen=True)
class DesiredSet:
    collection: str
    name: str
    filter_rule: dict[str, Any]

    @property
    def filter_hash(self) -> str:
        return filter_hash(self.filter_rule)


@dataclass
class ProductSetSummary:
    created: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    adopted: int = 0


def filter_hash(rule: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(rule, sort_keys=True).encode()).hexdigest()[:32]


def desired_product_sets(items: pd.DataFrame, column: str = "product_type") -> list[DesiredSet]:
    """One set per distinct collection the store uses; items without one belong to none."""
    values = items[column].astype("string").fillna("").astype("str").str.strip()
    collections = sorted(set(values[values != ""]))
    return [
        DesiredSet(collection=c, name=c[:MAX_SET_NAME], filter_rule={column: {"eq": c}})
        for c in collections
    ]


def sync_product_sets(ctx, desired: list[DesiredSet]) -> ProductSetSummary:
    """Create, update and delete the shop's product sets to match `desired`."""
    summary = ProductSetSummary()
    known = _mapped(ctx)
    wanted = {d.collection: d for d in desired}
    for collection, want in wanted.items():
        row = known.get(collection)
        if row is None:
            _create(ctx, want, summary)
        elif row["filter_hash"] != want.filter_hash:
            ctx.api.update_product_set(
                row["product_set_id"], name=want.name, filter_rule=want.filter_rule
            )
            _save(ctx, want, row["product_set_id"], replace=True)
            summary.updated += 1
        else:
            summary.unchanged += 1
    for collection, row in known.items():
        if collection not in wanted:
            ctx.api.delete_product_set(row["product_set_id"])
            with ctx.db.begin() as conn:
                conn.execute(
                    delete(product_set_map).where(
                        product_set_map.c.shop_id == ctx.shop_id,
                        product_set_map.c.collection == collection,
                    )
                )
            summary.deleted += 1
    return summary


def _create(ctx, want: DesiredSet, summary: ProductSetSummary) -> None:
    key = idempotency_key(ctx.shop_id, "product_set_create", want.collection, want.filter_hash)
    outbox = GraphWriteOutbox(ctx.db)
    outbox.record_intent(
        key,
        shop_id=ctx.shop_id,
        action="product_set_create",
        target_id=ctx.shop.catalog_id,
        body={"name": want.name, "filter": want.filter_rule},
    )
    try:
        set_id = ctx.api.create_product_set(want.name, want.filter_rule)
        summary.created += 1
    except GraphError as error:
        if error.code != DUPLICATE_FILTER_CODE:
            outbox.mark_failed(key, str(error))
            raise
        set_id = _existing_set(ctx, want)
        summary.adopted += 1
    outbox.mark_succeeded(key, {"id": set_id})
    _save(ctx, want, set_id, replace=False)


def _existing_set(ctx, want: DesiredSet) -> str:
    for product_set in ctx.api.list_product_sets():
        try:
            rule = json.loads(product_set.filter or "{}")
        except ValueError:
            continue
        if filter_hash(rule) == want.filter_hash:
            return product_set.id
    raise RuntimeError(
        f"shop {ctx.shop_id}: Meta says a set with filter {want.filter_rule} exists, "
        "but none is listed"
    )


def _mapped(ctx) -> dict[str, dict[str, Any]]:
    with ctx.db.begin() as conn:
        rows = conn.execute(
            select(product_set_map).where(product_set_map.c.shop_id == ctx.shop_id)
        ).all()
    return {row.collection: dict(row._mapping) for row in rows}


def _save(ctx, want: DesiredSet, set_id: str, replace: bool) -> None:
    values = {
        "product_set_id": set_id,
        "filter_hash": want.filter_hash,
        "filter": want.filter_rule,
        "updated_at": ctx.now,
    }
    with ctx.db.begin() as conn:
        if replace:
            conn.execute(
                update(product_set_map)
                .where(
                    product_set_map.c.shop_id == ctx.shop_id,
                    product_set_map.c.collection == want.collection,
                )
                .values(**values)
            )
        else:
            conn.execute(
                insert(product_set_map).values(
                    shop_id=ctx.shop_id, collection=want.collection, **values
                )
            )
