"""The catalog CLI: render and plan work offline; issues lists what the seller must fix."""

import json
from datetime import UTC, datetime

from click.testing import CliRunner

from pipelines.catalog.cli import catalog, issues
from pipelines.catalog.generator import write_woocommerce_csv
from pipelines.catalog.issues import SellerIssue, SellerIssueStore
from resources.shops import ShopProfile

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


def _lines(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{")]


def test_render_accounts_for_every_source_row_without_network(tmp_path):
    store = write_woocommerce_csv(tmp_path / "woo.csv", products=6)
    source_rows = sum(1 for _ in store.open(encoding="utf-8")) - 1

    result = CliRunner().invoke(
        catalog,
        ["render", "--source", f"woocommerce_csv:{store}", "--currency", "EUR",
         "--timezone", "Europe/Berlin", "--product-url-template",
         "https://shop.example/p/{product_id}", "--brand", "Acme"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    records = _lines(result.output)
    kinds = {r["type"] for r in records}
    assert kinds <= {"item", "excluded", "rejected"}
    assert len(records) == source_rows
    items = [r for r in records if r["type"] == "item"]
    assert items and all(r["price"].endswith(" EUR") for r in items)
    assert all(r["reason"] for r in records if r["type"] != "item")


def test_render_with_a_bad_source_is_a_clear_error(tmp_path):
    result = CliRunner().invoke(
        catalog, ["render", "--source", "no_such_kind:x.csv", "--currency", "EUR"]
    )
    assert result.exit_code != 0
    assert "unknown source kind" in result.output


def _register_woocommerce_shop(registry, folder, products: int) -> None:
    store = write_woocommerce_csv(folder / "woo.csv", products=products)
    registry.add(
        ShopProfile(shop_id="acme", name="Acme", catalog_id="c1", currency="EUR",
                    source_kind="woocommerce_csv", source_location=str(store)),
        token="secret-token",
    )  # fmt: skip


def test_plan_prints_the_creates_of_a_first_sync(registry, tmp_path):
    _register_woocommerce_shop(registry, tmp_path, products=4)

    result = CliRunner().invoke(
        catalog,
        ["plan", "--shop", "acme", "--product-url-template", "https://s.example/{product_id}",
         "--brand", "Acme"],
    )  # fmt: skip

    assert result.exit_code == 0, result.output
    records = _lines(result.output)
    assert records and {r["method"] for r in records} == {"CREATE"}
    assert "secret-token" not in result.output


def test_issues_lists_call_to_action_and_admin_link(registry, metasync_db):
    registry.add(
        ShopProfile(shop_id="acme", name="Acme", catalog_id="c1", currency="EUR",
                    source_kind="shopify_csv", source_location="x.csv"),
        token="t",
    )  # fmt: skip
    issue = SellerIssue(
        issue_type="meta:items_batch_rejected",
        retailer_id="sku-1",
        severity="error",
        source="items_batch",
        title="Meta rejected item sku-1",
        call_to_action="Use an image of at least 500x500 pixels.",
        admin_url="https://admin.example/products/9",
        affected_retailer_ids=("sku-1",),
    )
    SellerIssueStore(metasync_db).sync("acme", "items_batch", [issue], NOW)

    text = CliRunner().invoke(issues, ["--shop", "acme"])
    as_json = CliRunner().invoke(issues, ["--shop", "acme", "--json"])

    assert text.exit_code == 0, text.output
    assert "Use an image of at least 500x500 pixels." in text.output
    assert "https://admin.example/products/9" in text.output
    assert _lines(as_json.output)[0]["retailer_id"] == "sku-1"


def test_issues_for_an_unknown_shop_fails(metasync_db):
    result = CliRunner().invoke(issues, ["--shop", "nobody"])
    assert result.exit_code != 0


def test_a_manual_sync_of_a_paused_shop_is_refused_with_the_reason(registry, tmp_path):
    from resources.shops import ShopStatus

    _register_woocommerce_shop(registry, tmp_path, products=2)
    registry.set_status("acme", ShopStatus.PAUSED, "holiday closure")

    result = CliRunner().invoke(catalog, ["sync", "--shop", "acme", "--cadence", "full"])

    assert result.exit_code == 1
    assert "holiday closure" in result.output
    assert registry.get("acme").status == ShopStatus.PAUSED  # never reached Meta, never re-marked


def test_a_bad_currency_timezone_or_url_template_is_one_line_naming_the_option(tmp_path):
    store = write_woocommerce_csv(tmp_path / "woo.csv", products=1)
    source = f"woocommerce_csv:{store}"
    cases = (
        (["--currency", "eur"], "Error: Invalid value for '--currency': must be an ISO 4217 code "
                                "such as EUR, got 'eur' (did you mean 'EUR'?)"),
        (["--currency", "XXX"], "Error: Invalid value for '--currency': must be an ISO 4217 code "
                                "such as EUR, got 'XXX'\n"),
        (["--currency", "EUR", "--timezone", "Mars/Olympus"],
         "Error: Invalid value for '--timezone': must be an IANA time zone such as Europe/Berlin "
         "or UTC, got 'Mars/Olympus'"),
        (["--currency", "EUR", "--timezone", "Europe"],
         "Error: Invalid value for '--timezone': must be an IANA time zone such as Europe/Berlin "
         "or UTC, got 'Europe'"),
        (["--currency", "EUR", "--product-url-template", "https://s.example/{slug}"],
         "Error: Invalid value for '--product-url-template': URL template "
         "'https://s.example/{slug}': use only the placeholders"),
    )  # fmt: skip
    for options, message in cases:
        result = CliRunner().invoke(catalog, ["render", "--source", source, *options])

        assert result.exit_code == 2, result.output
        assert message in result.output
        for noise in ("pydantic", "validation error", "registration", "Traceback"):
            assert noise not in result.output


def test_a_manual_sync_of_an_unknown_shop_says_to_add_it(metasync_db):
    result = CliRunner().invoke(catalog, ["sync", "--shop", "nosuch"])

    assert result.exit_code == 1
    assert "no shop 'nosuch' in the registry" in result.output
    assert "metasync shops add" in result.output
    assert "resume" not in result.output and "set-token" not in result.output
