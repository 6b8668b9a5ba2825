"""The shop registry keeps tokens encrypted and hands each shop only its own token."""

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select

from resources.db.schema import shops
from resources.shops import (
    Capability,
    ShopProfile,
    ShopRegistry,
    ShopStatus,
    TokenVault,
    UnknownShop,
    VaultError,
)


def _profile(shop_id: str = "acme", **overrides) -> ShopProfile:
    values = dict(
        shop_id=shop_id,
        name="Acme",
        catalog_id="111",
        currency="EUR",
        source_kind="shopify_csv",
        source_location="acme.csv",
    )
    return ShopProfile(**(values | overrides))


def test_token_is_encrypted_at_rest_and_round_trips(registry: ShopRegistry, metasync_db):
    registry.add(_profile(), token="EAAB-secret-token-acme")

    with metasync_db.begin() as conn:
        stored = conn.execute(select(shops.c.token_ciphertext, shops.c.token_fingerprint)).one()
    assert b"EAAB-secret-token-acme" not in stored.token_ciphertext
    assert "secret" not in stored.token_fingerprint
    assert registry.token_for("acme") == "EAAB-secret-token-acme"


def test_each_shop_gets_its_own_token(registry: ShopRegistry):
    registry.add(_profile("acme"), token="token-a")
    registry.add(_profile("bolt"), token="token-b")

    assert registry.token_for("acme") == "token-a"
    assert registry.token_for("bolt") == "token-b"


def test_a_different_vault_key_cannot_read_tokens(registry: ShopRegistry, metasync_db):
    registry.add(_profile(), token="token-a")
    stranger = ShopRegistry(metasync_db, TokenVault(Fernet.generate_key()))

    with pytest.raises(VaultError, match="METASYNC_VAULT_KEY"):
        stranger.token_for("acme")


def test_shop_ids_must_be_slugs():
    with pytest.raises(ValueError, match="slug"):
        _profile("Acme Shop/1")


def test_replacing_a_token_reactivates_a_shop_paused_for_reauth(registry: ShopRegistry):
    registry.add(_profile(), token="old")
    registry.set_status("acme", ShopStatus.NEEDS_REAUTH, "token expired (190)")
    assert registry.active() == []

    registry.replace_token("acme", "new")

    shop = registry.get("acme")
    assert shop.status == ShopStatus.ACTIVE and shop.status_reason is None
    assert registry.token_for("acme") == "new"


def test_capabilities_survive_the_round_trip(registry: ShopRegistry):
    registry.add(_profile(capabilities=[Capability.ONSITE_ORDERS]), token="t")

    shop = registry.get("acme")
    assert shop.has(Capability.ONSITE_ORDERS)
    assert not shop.has(Capability.OFFERS)


def test_unknown_shop_is_a_clear_error(registry: ShopRegistry):
    with pytest.raises(UnknownShop, match="metasync shops add"):
        registry.get("nope")
