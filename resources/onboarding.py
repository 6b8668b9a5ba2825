"""Onboarding: turn what Meta Business Extension's install gives into a registered shop.

MBE's `fbe_installs` answer names the business, catalog, commerce merchant settings, page and
pixel; together with the system-user token that is everything metasync needs for a shop.
"""

from typing import Any

from resources.shops import Capability, ShopProfile, ShopRegistry


def register_from_install(
    registry: ShopRegistry,
    *,
    shop_id: str,
    name: str,
    install: dict[str, Any],
    token: str,
    currency: str,
    timezone: str,
    source_kind: str,
    source_location: str,
    onsite_orders: bool = False,
    offers: bool = False,
    admin_url_template: str | None = None,
    storefront_url_template: str | None = None,
    default_brand: str | None = None,
) -> ShopProfile:
    """Register (or update) a shop from an MBE install record and its token."""
    capabilities = [
        c
        for c, on in ((Capability.ONSITE_ORDERS, onsite_orders), (Capability.OFFERS, offers))
        if on
    ]
    profile = ShopProfile(
        shop_id=shop_id,
        name=name,
        catalog_id=str(install["catalog_id"]),
        cms_id=_optional(install, "commerce_merchant_settings_id", "cms_id"),
        page_id=_optional(install, "page_id", "pages"),
        pixel_id=_optional(install, "pixel_id"),
        business_id=_optional(install, "business_id", "business_manager_id"),
        currency=currency,
        timezone=timezone,
        source_kind=source_kind,
        source_location=source_location,
        capabilities=capabilities,
        admin_url_template=admin_url_template,
        storefront_url_template=storefront_url_template,
        default_brand=default_brand,
    )
    return registry.add(profile, token)


def _optional(install: dict[str, Any], *names: str) -> str | None:
    for name in names:
        value = install.get(name)
        if isinstance(value, list):
            value = value[0] if value else None
        if value:
            return str(value)
    return None
