"""`metasync shops add`: the token comes from the environment, never from an argument or the
output; a currency that is not ISO 4217 is refused before anything is stored."""

from click.testing import CliRunner

from pipelines.cli import main
from resources.shops import ShopRegistry

TOKEN = "EAAG-shops-cli-token-0123456789"


def _add(currency: str):
    arguments = ["shops", "add", "--id", "acme", "--name", "Acme", "--catalog-id", "cat-1",
                 "--currency", currency, "--source", "shopify_csv:/data/acme.csv",
                 "--storefront-url-template", "https://acme.example/products/{handle}",
                 "--brand", "Acme"]  # fmt: skip
    return CliRunner().invoke(main, arguments, env={"METASYNC_SHOP_TOKEN": TOKEN})


def test_shops_add_registers_the_shop_without_echoing_its_token():
    result = _add("EUR")

    assert result.exit_code == 0, result.output
    assert "shop acme registered" in result.output
    assert TOKEN not in result.output
    shop = ShopRegistry.from_settings().get("acme")
    assert (shop.currency, shop.source_kind) == ("EUR", "shopify_csv")
    assert shop.storefront_url_template == "https://acme.example/products/{handle}"
    assert shop.default_brand == "Acme"


def test_shops_add_refuses_a_currency_that_is_not_iso_4217_and_stores_nothing():
    result = _add("XYZ")

    assert result.exit_code == 2
    assert "not an ISO 4217 code" in result.output
    assert "Traceback" not in result.output
    assert ShopRegistry.from_settings().list_shops() == []


def test_an_unknown_shop_ends_the_command_with_its_message_not_a_traceback():
    result = CliRunner().invoke(main, ["issues", "--shop", "nosuch"])

    assert result.exit_code == 1
    assert "no shop 'nosuch'" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_pausing_a_shop_that_does_not_exist_is_an_error_not_a_claimed_success():
    result = CliRunner().invoke(main, ["shops", "pause", "nosuch", "--reason", "holiday"])

    assert result.exit_code == 1
    assert "no shop 'nosuch'" in result.output and "paused" not in result.output
