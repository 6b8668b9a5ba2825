"""A catalog kept in a SQL table or view, in any database SQLAlchemy can reach.

    source = SqlSource("postgresql://reader@db/shop#catalog.meta_variants")
    rows = source.to_store_rows(source.read())

`location` is `<SQLAlchemy URL>#<table or view>` (`schema.table` allowed). The table holds one row
per sellable variant or per product that should be accounted for, with these columns (names are
the contract; extra columns are ignored):

required
    variant_id      text   the store's stable variant id (becomes Meta's `id` / retailer_id)
    product_id      text   the product's id; equals variant_id for a product without variants
    title           text
    price           text or NUMERIC, never a float column (money is read as exact decimals)
optional (empty or NULL means "not known")
    item_group_id   text   parent product id for variants; defaults to product_id when it
                           differs from variant_id
    description     text   HTML allowed; cleaned like store exports
    sale_price, compare_at_price            text or NUMERIC
    sale_start, sale_end                    text `YYYY-MM-DD[ HH:MM[:SS]]`, shop's local time
    currency        text   ISO 4217; defaults to the shop's currency
    availability    text   a Meta availability value
    inventory       integer
    image_link, link                        text URLs
    additional_image_links                  text, comma separated URLs
    brand, condition, google_product_category, product_type, color, size, gender, age_group,
    material, pattern, additional_variant_attribute, gtin, mpn, shipping_weight, handle, sku
    status          text   `active`, `archived`, or `draft` (drafts are not synced)
    kind            text   `physical` (default), `parent`, `digital`, `grouped`, `external`

Rows are read in `variant_id` order so `source_row` (1-based) is stable between runs.
"""

from decimal import Decimal
from typing import ClassVar

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import NoSuchTableError, SQLAlchemyError

from resources.store.base import (
    REJECTED_COLUMNS,
    STORE_COLUMNS,
    ExclusionReason,
    StoreRows,
    StoreSource,
    column,
    concat_frames,
    empty_frame,
    excluded_rows,
    store_items,
)

REQUIRED_COLUMNS = ("variant_id", "product_id", "title", "price")
KIND_EXCLUSIONS = {
    "parent": ExclusionReason.PARENT_OF_VARIANTS,
    "digital": ExclusionReason.DIGITAL,
    "grouped": ExclusionReason.GROUPED,
    "external": ExclusionReason.EXTERNAL,
}


class SqlSource(StoreSource):
    """A table or view following the column contract in this module's docstring."""

    kind = "sql"
    required_columns: ClassVar[tuple[str, ...]] = REQUIRED_COLUMNS
    excluded_order: ClassVar[tuple[str, ...]] = (
        *KIND_EXCLUSIONS.values(),
        ExclusionReason.DRAFT,
        ExclusionReason.UNSUPPORTED_TYPE,
    )

    @classmethod
    def product_keys(cls, raw: pd.DataFrame) -> pd.Series:
        """`product_id`: each row becomes an item or a reject on its own."""
        return column(raw, "product_id")

    def read(self) -> pd.DataFrame:
        url, _, table_name = self.location.rpartition("#")
        if not url or not table_name:
            raise self.error("location must be '<SQLAlchemy URL>#<table>'")
        schema, _, name = table_name.rpartition(".")
        try:
            engine = sa.create_engine(url)
            with engine.connect() as connection:
                table = sa.Table(
                    name, sa.MetaData(), schema=schema or None, autoload_with=connection
                )
                self._check_columns(table)
                # untyped columns: values arrive as stored, so a bad NUMERIC cell becomes a
                # rejected row later instead of failing the whole read
                names = [sa.column(c.name) for c in table.columns]
                query = (
                    sa.select(*names)
                    .select_from(sa.table(name, schema=schema or None))
                    .order_by(sa.column("variant_id"))
                )
                raw = pd.DataFrame(
                    connection.execute(query).mappings().all(),
                    columns=[c.name for c in table.columns],
                )
        except NoSuchTableError as exc:
            raise self.error(f"table or view {table_name!r} not found") from exc
        except SQLAlchemyError as exc:
            raise self.error(f"cannot read ({type(exc).__name__}: {exc})") from exc
        finally:
            if "engine" in locals():
                engine.dispose()

        raw = raw.apply(lambda values: values.map(_as_text)).astype("str")
        raw["source_row"] = range(1, len(raw) + 1)
        return raw

    def _check_columns(self, table: sa.Table) -> None:
        missing = [name for name in REQUIRED_COLUMNS if name not in table.c]
        if missing:
            raise self.error(f"missing required column(s) {', '.join(missing)}")

    @classmethod
    def to_store_rows(cls, raw: pd.DataFrame) -> StoreRows:
        frame = pd.DataFrame({name: column(raw, name) for name in STORE_COLUMNS[1:]})
        frame["source_row"] = raw["source_row"].astype("int64")
        frame["kind"] = column(raw, "kind").str.casefold()
        default_group = frame["product_id"].where(frame["product_id"] != frame["variant_id"], "")
        frame["item_group_id"] = frame["item_group_id"].where(
            frame["item_group_id"] != "", default_group
        )
        frame["status"] = frame["status"].str.casefold()

        excluded, taken = [], pd.Series(False, index=frame.index)
        for kind, reason in KIND_EXCLUSIONS.items():
            mask = (frame["kind"] == kind) & ~taken
            excluded.append(excluded_rows(frame, mask, reason, f"kind is {kind}"))
            taken |= mask
        draft = (frame["status"] == "draft") & ~taken
        excluded.append(excluded_rows(frame, draft, ExclusionReason.DRAFT, "status is draft"))
        taken |= draft
        unknown = ~frame["kind"].isin(["", "physical", *KIND_EXCLUSIONS]) & ~taken
        excluded.append(
            excluded_rows(frame, unknown, ExclusionReason.UNSUPPORTED_TYPE, "kind " + frame["kind"])
        )
        taken |= unknown

        frame["status"] = frame["status"].where(frame["status"] == "archived", "active")
        return StoreRows(
            items=store_items(frame.loc[~taken]),
            excluded=concat_frames(excluded, excluded[0].columns),
            rejected=empty_frame(REJECTED_COLUMNS),
        )


def _as_text(value: object) -> str:
    """Database values as the strings the normaliser parses; floats keep their shortest repr."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value).strip()
