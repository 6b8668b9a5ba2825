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


def _add_acme(*extra: str):
    arguments = ["shops", "add", "--id", "acme", "--name", "Acme", "--catalog-id", "cat-1",
                 "--currency", "EUR", "--source", "shopify_csv:/data/acme.csv", *extra]  # fmt: skip
    return CliRunner().invoke(main, arguments, env={"METASYNC_SHOP_TOKEN": TOKEN})


def test_adding_a_shop_id_that_exists_is_refused_and_changes_nothing():
    first = _add_acme("--cms-id", "cms-1", "--page-id", "page-1", "--pixel-id", "px-1",
                      "--timezone", "Europe/Berlin", "--onsite-orders")  # fmt: skip
    assert first.exit_code == 0, first.output
    before = ShopRegistry.from_settings().get("acme")

    again = _add_acme()

    assert again.exit_code == 1, again.output
    message = again.output.strip()
    assert message.startswith("Error: shop acme already exists") and "--replace" in message
    assert len(message.splitlines()) == 1
    assert ShopRegistry.from_settings().get("acme") == before


def test_replace_overwrites_an_existing_shop_deliberately():
    assert _add_acme("--cms-id", "cms-1", "--onsite-orders").exit_code == 0

    replaced = _add_acme("--replace", "--timezone", "Europe/Paris")

    assert replaced.exit_code == 0, replaced.output
    shop = ShopRegistry.from_settings().get("acme")
    assert (shop.cms_id, shop.timezone, shop.capabilities) == (None, "Europe/Paris", [])


def test_replace_also_registers_a_shop_that_does_not_exist_yet():
    result = _add_acme("--replace")

    assert result.exit_code == 0, result.output
    assert ShopRegistry.from_settings().get("acme").catalog_id == "cat-1"


def test_shops_add_refuses_a_time_zone_that_is_not_iana_and_stores_nothing():
    result = _add_acme("--timezone", "Mars/Olympus")

    assert result.exit_code == 2
    assert "Invalid value for '--timezone'" in result.output and "'Mars/Olympus'" in result.output
    assert ShopRegistry.from_settings().list_shops() == []


def test_shops_list_says_when_no_shop_is_registered():
    result = CliRunner().invoke(main, ["shops", "list"])

    assert result.exit_code == 0, result.output
    assert "no shops registered" in result.output


def test_shops_resume_has_a_description():
    result = CliRunner().invoke(main, ["shops", "resume", "--help"])

    assert result.exit_code == 0
    assert "Resume a paused shop" in result.output
    shops_help = CliRunner().invoke(main, ["shops", "--help"]).output
    assert "Resume a paused shop" in shops_help
