"""Catalog commands, mounted on `metasync` by pipelines/cli.py:

    metasync catalog render --source shopify_csv:products.csv --currency EUR   # no network
    metasync catalog plan --shop acme        # what the next delta sync would send (no network)
    metasync catalog sync --shop acme --cadence delta
    metasync issues --shop acme              # open seller issues

Output is JSON lines (one object per line) so it pipes into jq or a spreadsheet import.
"""

import json
from datetime import UTC, datetime
from typing import Any

import click
from pydantic import ValidationError

from pipelines.catalog.normalise import ShopContext, normalise_catalog
from resources.store import StoreSourceError, source_for

URL_TEMPLATE_HELP = (
    "Product page URL template with {handle} {product_id} {variant_id} {sku}, e.g. "
    "https://shop.example/products/{handle} (Shopify) or https://shop.example/?p={product_id} "
    "(WooCommerce exports have no handle)."
)


def iana_timezone(_context, _param, name: str) -> str:
    """An option callback: an IANA time zone name, or a usage error naming the option."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Europe" is a tzdata folder
        raise click.BadParameter(
            f"must be an IANA time zone such as Europe/Berlin or UTC, got {name!r}"
        ) from None
    return name


def iso_currency(_context, _param, code: str) -> str:
    """An option callback: an ISO 4217 currency code, or a usage error naming the option."""
    from resources.currencies import CURRENCIES

    if code not in CURRENCIES:
        hint = f" (did you mean {code.upper()!r}?)" if code.upper() in CURRENCIES else ""
        raise click.BadParameter(f"must be an ISO 4217 code such as EUR, got {code!r}{hint}")
    return code


def _line(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, default=str, sort_keys=False)


def _records(frame, kind: str, columns=None) -> list[dict[str, Any]]:
    frame = frame if columns is None else frame[[c for c in columns if c in frame.columns]]
    out = []
    for row in frame.to_dict("records"):
        clean = {k: (None if _missing(v) else v) for k, v in row.items()}
        out.append({"type": kind, **clean})
    return out


def _missing(value: Any) -> bool:
    try:
        return value is None or bool(value != value)
    except (TypeError, ValueError):
        return False


@click.group()
def catalog() -> None:
    """Catalog sync: render, plan and run."""


@catalog.command()
@click.option("--source", required=True, help="KIND:LOCATION, e.g. shopify_csv:products.csv")
@click.option(
    "--currency", required=True, callback=iso_currency, help="ISO 4217 code of the shop, e.g. EUR."
)
@click.option(
    "--timezone", default="UTC", show_default=True, callback=iana_timezone, help="IANA time zone."
)
@click.option("--product-url-template", default=None, help=URL_TEMPLATE_HELP)
@click.option("--brand", default=None, help="Brand for products whose store gives none.")
def render(
    source: str,
    currency: str,
    timezone: str,
    product_url_template: str | None,
    brand: str | None,
) -> None:
    """Print the Meta items, exclusions and rejects a store export gives, as JSON lines."""
    from pipelines.catalog.normalise import META_FIELDS

    kind, _, location = source.partition(":")
    if not location:
        raise click.BadParameter(
            "use KIND:LOCATION, e.g. shopify_csv:products.csv", param_hint="--source"
        )
    try:
        shop = ShopContext(
            currency=currency,
            timezone=timezone,
            product_url_template=product_url_template,
            brand=brand,
        )
    except ValidationError as invalid:  # the URL template: the other options are checked above
        error = invalid.errors()[0]
        context = click.get_current_context()
        field = error["loc"][0] if error["loc"] else None
        option = next((p for p in context.command.params if p.name == field), None)
        message = error["msg"].removeprefix("Value error, ")
        raise click.BadParameter(message, ctx=context, param=option) from None
    try:
        raw = source_for(kind, location).read()
        result = normalise_catalog(raw, kind, shop, now=datetime.now(UTC))
    except (StoreSourceError, ValueError) as error:
        raise click.ClickException(str(error)) from error
    item_columns = ("retailer_id", *[f for f in META_FIELDS if f != "id"], "warnings")
    for record in _records(result.items, "item", item_columns):
        click.echo(_line(record))
    for record in _records(result.excluded, "excluded"):
        click.echo(_line(record))
    for record in _records(result.rejected, "rejected"):
        click.echo(_line(record))
    counts = result.counts()
    click.echo(
        f"{counts['items']} items, {counts['excluded']} excluded, {counts['rejected']} rejected",
        err=True,
    )


@catalog.command()
@click.option("--shop", "shop_id", required=True)
@click.option("--product-url-template", default=None, help=URL_TEMPLATE_HELP)
@click.option("--brand", default=None, help="Brand for products whose store gives none.")
def plan(shop_id: str, product_url_template: str | None, brand: str | None) -> None:
    """Print what the next delta sync would send (items_batch records), without sending."""
    from pipelines.catalog import sync

    settings = sync.SyncSettings(product_url_template=product_url_template, default_brand=brand)
    delta = sync.plan(_metasync(), shop_id, settings=settings)
    for number, (requests, _items) in enumerate(delta.chunks, start=1):
        for entry in requests:
            click.echo(_line({"batch": number, "method": entry["method"], "data": entry["data"]}))
    if delta.held_reason:
        click.echo(f"held: {delta.held_deletions} deletions ({delta.held_reason})", err=True)
    counts = delta.counts
    click.echo(", ".join(f"{value} {name}" for name, value in counts.items()), err=True)


def _refuse_a_shop_that_may_not_run(metasync, shop_id: str) -> None:
    """A paused shop or one waiting for a new token is skipped by the schedules; a manual sync
    must not quietly do what they refuse to."""
    from pipelines.shops import runnable_shops
    from resources.shops import UnknownShop

    try:
        metasync.registry().get(shop_id)
    except UnknownShop as unknown:  # to add, not to resume
        raise click.ClickException(str(unknown)) from None
    _, skipped = runnable_shops(metasync, [shop_id])
    if shop_id in skipped:
        raise click.ClickException(
            f"shop {shop_id} may not sync now ({skipped[shop_id]}); "
            "`metasync shops resume` or `metasync shops set-token` first"
        )


@catalog.command("sync")
@click.option("--shop", "shop_id", required=True)
@click.option(
    "--cadence",
    type=click.Choice(["full", "delta", "stock_price", "product_sets", "diagnostics"]),
    default="delta",
    show_default=True,
)
@click.option("--product-url-template", default=None, help=URL_TEMPLATE_HELP)
@click.option("--brand", default=None, help="Brand for products whose store gives none.")
@click.option("--allow-mass-deletion", is_flag=True, help="Send deletions past the cap.")
@click.option("--allow-shrink", is_flag=True, help="Upload a replace feed that shrank a lot.")
def sync_command(
    shop_id: str,
    cadence: str,
    product_url_template: str | None,
    brand: str | None,
    allow_mass_deletion: bool,
    allow_shrink: bool,
) -> None:
    """Run one catalog sync for a shop now (what the schedules run), without Dagster."""
    from pipelines.catalog import sync

    settings = sync.SyncSettings(
        product_url_template=product_url_template,
        default_brand=brand,
        allow_mass_deletion=allow_mass_deletion,
        allow_shrink=allow_shrink,
    )
    metasync = _metasync()
    _refuse_a_shop_that_may_not_run(metasync, shop_id)
    runners = {
        "full": sync.full_sync,
        "delta": sync.delta_sync,
        "stock_price": sync.stock_and_price_sync,
    }
    try:
        if cadence in runners:
            summary = runners[cadence](metasync, shop_id, settings=settings)
            click.echo(summary.line())
        elif cadence == "product_sets":
            click.echo(str(sync.product_sets_sync(metasync, shop_id, settings=settings)))
        else:
            click.echo(str(sync.pull_diagnostics(metasync, shop_id)))
    except sync.CatalogRefused as refused:
        raise click.ClickException(f"{refused} {refused.numbers}") from refused


@click.command()
@click.option("--shop", "shop_id", required=True)
@click.option("--json", "as_json", is_flag=True, help="JSON lines instead of text.")
def issues(shop_id: str, as_json: bool) -> None:
    """List a shop's open seller issues, with what to do and where."""
    from pipelines.catalog.issues import SellerIssueStore

    metasync = _metasync()
    metasync.registry().get(shop_id)  # an unknown shop is an error, not an empty list
    open_issues = SellerIssueStore(metasync.db()).open_issues(shop_id)
    for issue in open_issues:
        if as_json:
            click.echo(_line(issue))
            continue
        item = f" [{issue['retailer_id']}]" if issue["retailer_id"] else ""
        click.echo(f"{issue['severity'].upper()}{item} {issue['title']}")
        click.echo(f"    {issue['call_to_action']}")
        if issue["admin_url"]:
            click.echo(f"    {issue['admin_url']}")
    click.echo(f"{len(open_issues)} open seller issues for {shop_id}", err=True)


def _metasync():
    from pipelines.resources import MetasyncResource

    return MetasyncResource()
