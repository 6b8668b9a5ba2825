"""Deterministic, realistic store exports for demos, tests and benchmarks.

    write_shopify_csv(path, seed=7, products=30)       # variants, sales, HTML, non-ASCII,
    write_woocommerce_csv(path, seed=7, products=30)   # a draft and a few invalid rows
    mutate_catalog(path, seed=8)                       # the demo's delta run: a few changes
    items = generate_items_frame(1_000_000, seed=1)    # normalised items for diff benchmarks

Same seed, same bytes: the generator uses its own `random.Random(seed)` and no clock.
"""

import csv
import random
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.catalog.normalise import ITEM_COLUMNS, content_hashes, format_price

SHOPIFY_COLUMNS = (
    "Handle", "Title", "Body (HTML)", "Vendor", "Product Category", "Type", "Tags", "Published",
    "Option1 Name", "Option1 Value", "Option1 Linked To", "Option2 Name", "Option2 Value",
    "Option2 Linked To", "Option3 Name", "Option3 Value", "Variant SKU", "Variant Grams",
    "Variant Inventory Tracker", "Variant Inventory Qty", "Variant Inventory Policy",
    "Variant Fulfillment Service", "Variant Price", "Variant Compare At Price",
    "Variant Requires Shipping", "Variant Taxable", "Variant Barcode", "Image Src",
    "Image Position", "Image Alt Text", "Gift Card", "Variant Image", "Variant Weight Unit",
    "Status",
)  # fmt: skip
WOO_COLUMNS = (
    "ID", "Type", "SKU", "Name", "Published", "Visibility in catalog", "Short description",
    "Description", "Date sale price starts", "Date sale price ends", "In stock?", "Stock",
    "Backorders allowed?", "Weight (kg)", "Sale price", "Regular price", "Categories", "Images",
    "Parent", "Attribute 1 name", "Attribute 1 value(s)", "Attribute 2 name",
    "Attribute 2 value(s)",
)  # fmt: skip
NAMES = (
    "Café Crème Mug", "Größe Wool Jumper", "Linen Shirt", "和紙ノート", "Canvas Tote",
    "Ceramic Vase", "Trail Runner", "Merino Beanie", "Denim Jacket", "抹茶 Tea Set",
    "Crème Brûlée Candle", "Straw Hat", "Leather Belt", "Silk Scarf", "Bamboo Socks",
)  # fmt: skip
SIZES = ("S", "M", "L", "XL")
COLORS = ("Black", "Crème", "Navy", "Olive")
VENDORS = ("Atelier Nord", "Kyōto Works", "Maison Café")
CATEGORY = "Apparel & Accessories > Clothing"


def _description(rng: random.Random, title: str) -> str:
    body = f"Soft &amp; durable {title} &ndash; made with care.<br>Size &gt; fit guide inside."
    if rng.random() < 0.5:
        return f"[vc_row][vc_column]<p>{body}</p>[/vc_column][/vc_row]"
    return f"<div><p><strong>{title}</strong></p><ul><li>{body}</li></ul></div>"


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return Decimal(rng.randrange(low * 100, high * 100)) / 100


def _shopify_product(rng: random.Random, index: int) -> list[dict[str, str]]:
    title = f"{NAMES[index % len(NAMES)]} {index}"
    handle = f"product-{index}"
    image = f"https://cdn.example.com/{handle}/main.jpg"
    sizes = SIZES[: rng.randint(1, 3)] if index % 3 else ("Default Title",)
    colors = COLORS[: rng.randint(1, 2)] if index % 3 and index % 2 else ("",)
    rows = []
    for number, (size, color) in enumerate((s, c) for s in sizes for c in colors):
        price = _money(rng, 10, 120)
        on_sale = rng.random() < 0.3
        row = dict.fromkeys(SHOPIFY_COLUMNS, "")
        row.update(
            {
                "Handle": handle,
                "Option1 Value": size,
                "Option2 Value": color,
                "Variant SKU": f"SKU-{index}-{number}",
                "Variant Grams": str(rng.randrange(100, 2000)),
                "Variant Inventory Tracker": "shopify",
                "Variant Inventory Qty": str(rng.choice((0, 3, 8, 25))),
                "Variant Inventory Policy": rng.choice(("deny", "continue")),
                "Variant Fulfillment Service": "manual",
                "Variant Price": str(price),
                "Variant Compare At Price": str(price + 10) if on_sale else "",
                "Variant Requires Shipping": "true",
                "Variant Taxable": "true",
                "Variant Weight Unit": "g",
            }
        )
        rows.append(row)
    first = rows[0]
    first.update(
        {
            "Title": title,
            "Body (HTML)": _description(rng, title),
            "Vendor": rng.choice(VENDORS),
            "Product Category": CATEGORY,
            "Type": "Apparel",
            "Published": "true",
            "Option1 Name": "Size" if sizes[0] != "Default Title" else "Title",
            "Option2 Name": "Color" if colors[0] else "",
            "Image Src": image,
            "Image Position": "1",
            "Gift Card": "false",
            "Status": "active",
        }
    )
    extra = dict.fromkeys(SHOPIFY_COLUMNS, "")
    extra.update(
        {"Handle": handle, "Image Src": image.replace("main", "side"), "Image Position": "2"}
    )
    return [*rows, extra]


def shopify_rows(seed: int = 7, products: int = 30) -> list[dict[str, str]]:
    """Rows of a Shopify export: product 0 is a draft, 1 lacks a price, 2 has a negative one."""
    rng = random.Random(seed)
    rows = [row for index in range(products) for row in _shopify_product(rng, index)]
    for row in rows:
        if row["Handle"] == "product-0" and row["Title"]:
            row["Status"] = "draft"
    _first_variant(rows, "product-1")["Variant Price"] = ""
    _first_variant(rows, "product-2")["Variant Price"] = "-5.00"
    return rows


def _first_variant(rows: list[dict[str, str]], handle: str) -> dict[str, str]:
    return next(row for row in rows if row["Handle"] == handle and row["Variant SKU"])


def write_shopify_csv(path: Path, seed: int = 7, products: int = 30) -> Path:
    """A Shopify product export (2023 column set, with Product Category and Linked To)."""
    return _write(Path(path), SHOPIFY_COLUMNS, shopify_rows(seed, products))


def write_woocommerce_csv(
    path: Path, seed: int = 7, products: int = 30, currency_digits: int = 2
) -> Path:
    """A WooCommerce export: simple and variable products, one draft, one missing price.

    `currency_digits` matches the shop's currency (0 for JPY: prices in whole yen, a hundred
    times the two-decimal amounts)."""
    rng = random.Random(seed)

    def price(low: int, high: int) -> Decimal:
        amount = _money(rng, low, high)
        return amount if currency_digits == 2 else (amount * 100).quantize(Decimal(1))

    rows: list[dict[str, str]] = []
    next_id = 100
    for index in range(products):
        title = f"{NAMES[index % len(NAMES)]} {index}"
        base = dict.fromkeys(WOO_COLUMNS, "")
        base.update(
            {
                "ID": str(next_id),
                "SKU": f"woo-{index}",
                "Name": title,
                "Published": "-1" if index == 0 else "1",
                "Visibility in catalog": "visible",
                "Description": _description(rng, title),
                "In stock?": "1",
                "Weight (kg)": str(_money(rng, 0, 3)),
                "Categories": "Clothing > Knitwear",
                "Images": f"https://cdn.example.com/woo/{index}.png",
            }
        )
        parent_id, next_id = next_id, next_id + 1
        if index % 2:
            base.update({"Type": "variable", "Attribute 1 name": "Size",
                         "Attribute 1 value(s)": ", ".join(SIZES)})  # fmt: skip
            rows.append(base)
            for size in SIZES[:3]:
                variation = dict.fromkeys(WOO_COLUMNS, "")
                variation.update({
                    "ID": str(next_id), "Type": "variation", "SKU": f"woo-{index}-{size}",
                    "Name": f"{title} - {size}", "Published": "1", "In stock?": "1",
                    "Stock": str(rng.choice((0, 4, 12))), "Regular price": str(price(10, 90)),
                    "Parent": f"id:{parent_id}", "Attribute 1 name": "Size",
                    "Attribute 1 value(s)": size,
                })  # fmt: skip
                next_id += 1
                rows.append(variation)
        else:
            regular = price(10, 90)
            discount = Decimal(5) if currency_digits == 2 else Decimal(500)
            sale_window = index % 8 == 0
            base.update(
                {
                    "Type": "simple",
                    "Regular price": "" if index == 2 else str(regular),
                    "Sale price": str(regular - discount) if index % 4 == 0 else "",
                    "Date sale price starts": "2030-01-01" if sale_window else "",
                    "Date sale price ends": "2030-01-31" if sale_window else "",
                }
            )
            rows.append(base)
    return _write(Path(path), WOO_COLUMNS, rows)


def _write(path: Path, columns: tuple[str, ...], rows: list[dict[str, str]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    return path


@dataclass
class CatalogMutation:
    """What `mutate_catalog` changed, so a demo can say what the delta run should send."""

    price_changed: list[str] = field(default_factory=list)  # variant SKUs
    stock_changed: list[str] = field(default_factory=list)
    title_changed: list[str] = field(default_factory=list)  # handles
    deleted: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def mutate_catalog(path: Path, seed: int = 8) -> CatalogMutation:
    """Change a generated Shopify export in place: one price, one stock level, one title,
    one product deleted and one added."""
    path = Path(path)
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    rng = random.Random(seed)
    summary = CatalogMutation()
    handles = [
        h
        for h in dict.fromkeys(frame["Handle"])
        if h not in {"product-0", "product-1", "product-2"}
    ]
    price_h, stock_h, title_h, gone_h = rng.sample(handles, 4)

    row = frame.index[(frame["Handle"] == price_h) & (frame["Variant SKU"] != "")][0]
    frame.loc[row, "Variant Price"] = str(Decimal(frame.loc[row, "Variant Price"]) + 1)
    summary.price_changed.append(frame.loc[row, "Variant SKU"])
    row = frame.index[(frame["Handle"] == stock_h) & (frame["Variant SKU"] != "")][0]
    frame.loc[row, "Variant Inventory Qty"] = str(int(frame.loc[row, "Variant Inventory Qty"]) + 7)
    summary.stock_changed.append(frame.loc[row, "Variant SKU"])
    row = frame.index[(frame["Handle"] == title_h) & (frame["Title"] != "")][0]
    frame.loc[row, "Title"] = frame.loc[row, "Title"] + " (new season)"
    summary.title_changed.append(title_h)
    frame = frame.loc[frame["Handle"] != gone_h]
    summary.deleted.append(gone_h)

    added = pd.DataFrame(_shopify_product(rng, 10_000 + seed))
    summary.added.append(added["Handle"].iloc[0])
    pd.concat([frame, added[list(frame.columns)]], ignore_index=True).to_csv(
        path, index=False, lineterminator="\n"
    )
    return summary


def generate_items_frame(rows: int, seed: int = 1, currency: str = "EUR") -> pd.DataFrame:
    """Normalised items (ITEM_COLUMNS, hashed) built column-wise: 1M rows in a few seconds."""
    rng = np.random.default_rng(seed)
    numbers = pd.Series(np.arange(rows)).astype("str")
    group = pd.Series(np.arange(rows) // 4).astype("str")
    cents = rng.integers(500, 50_000, size=rows)
    on_sale = rng.random(rows) < 0.2
    price_text, price_amount = _money_columns(cents, currency)
    sale_text, sale_amount = _money_columns(cents * 9 // 10, currency)
    stock = rng.integers(0, 50, size=rows)
    items = pd.DataFrame(
        {
            "retailer_id": "sku-" + numbers,
            "id": "sku-" + numbers,
            "item_group_id": "grp-" + group,
            "title": "Generated product " + group,
            "description": "A generated product for benchmarks, number " + group,
            "availability": np.where(stock > 0, "in stock", "out of stock"),
            "condition": "new",
            "price": price_text,
            "sale_price": np.where(on_sale, sale_text, ""),
            "sale_price_effective_date": "",
            "link": "https://shop.example/products/grp-" + group,
            "image_link": "https://cdn.example/img/grp-" + group + ".jpg",
            "additional_image_link": "",
            "brand": "Benchmark Co",
            "quantity_to_sell_on_facebook": pd.array(stock, dtype="Int64"),
            "status": "active",
            "currency": currency,
            "source_row": np.arange(2, rows + 2),
        }
    )
    items["price_amount"] = price_amount
    items["sale_price_amount"] = pd.Series(sale_amount).where(on_sale, None)
    items["sale_start"] = pd.Series(pd.NaT, index=items.index, dtype="datetime64[ns, UTC]")
    items["sale_end"] = items["sale_start"]
    items["product_id"] = "grp-" + group
    items["warnings"] = ""
    for name in ITEM_COLUMNS:
        if name not in items.columns and name not in ("content_hash", "volatile_hash"):
            items[name] = ""
    items["content_hash"], items["volatile_hash"] = content_hashes(items)
    return items[list(ITEM_COLUMNS)]


def _money_columns(cents: np.ndarray, currency: str) -> tuple[np.ndarray, np.ndarray]:
    """Rendered prices and Decimal amounts, computed once per distinct amount."""
    codes, values = pd.factorize(cents)
    amounts = np.empty(len(values), dtype=object)
    amounts[:] = [Decimal(int(c)).scaleb(-2) for c in values]
    text = np.array([format_price(a, currency) for a in amounts])
    return text[codes], amounts[codes]
