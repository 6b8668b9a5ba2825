"""A small client for the sandbox's admin API, used by the demo, tests and benchmarks.

admin = SandboxAdmin("http://127.0.0.1:8765")
shop = admin.create_shop("acme", "Acme Outdoor", currency="EUR")
shop["catalog_id"], shop["access_token"]
"""

from typing import Any

import httpx


class SandboxAdmin:
    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        self._http = httpx.Client(base_url=f"{base_url.rstrip('/')}/_sandbox", timeout=timeout)

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            raise RuntimeError(
                f"sandbox admin {method} {path}: {response.status_code} {response.text[:500]}"
            )
        return response.json()

    def create_shop(
        self, shop_id: str, name: str, *, currency: str = "EUR", onsite_orders: bool = True
    ) -> dict[str, Any]:
        return self.call(
            "POST",
            "/shops",
            json={
                "shop_id": shop_id,
                "name": name,
                "currency": currency,
                "onsite_orders": onsite_orders,
            },
        )

    def add_fault(self, **rule: Any) -> dict[str, Any]:
        return self.call("POST", "/faults", json=rule)

    def clear_faults(self) -> dict[str, Any]:
        return self.call("DELETE", "/faults")

    def advance_clock(self, seconds: float) -> dict[str, Any]:
        return self.call("POST", "/clock/advance", json={"seconds": seconds})

    def expire_token(self, shop_id: str) -> None:
        self.call("POST", f"/shops/{shop_id}/expire_token")

    def rotate_token(self, shop_id: str) -> str:
        return self.call("POST", f"/shops/{shop_id}/rotate_token")["access_token"]

    # -- catalog domain (sandbox/catalog) -------------------------------------------------------

    def catalog_items(self, shop_id: str) -> dict[str, Any]:
        """{"count": n, "items": [{id, retailer_id, data, feed_id, review_status, errors}]}"""
        return self.call("GET", f"/catalog/{shop_id}/items")

    def set_catalog_faults(self, shop_id: str, **faults: Any) -> None:
        """partial_failure_share, partial_failure_reason, handle_error, extra_upload_polls."""
        self.call("POST", f"/catalog/{shop_id}/faults", json=faults)

    def clear_catalog_faults(self, shop_id: str) -> None:
        self.call("DELETE", f"/catalog/{shop_id}/faults")

    def add_item_issue(self, shop_id: str, retailer_id: str, **issue: Any) -> None:
        """A Meta-side review issue on an item (default: image too small, clears on a new
        image_link)."""
        self.call("POST", f"/catalog/{shop_id}/items/{retailer_id}/issues", json=issue)

    def settle_catalog(self, shop_id: str) -> None:
        self.call("POST", f"/catalog/{shop_id}/settle")

    def catalog_settings(self, **settings: Any) -> None:
        """CatalogSettings values, plus batch_handle_steps / upload_session_steps."""
        self.call("POST", "/catalog/settings", json=settings)

    def host_feed_file(self, url: str, content: str) -> None:
        """Content the sandbox serves for a `url=` feed upload (it never uses the network)."""
        self.call("POST", "/catalog/files", json={"url": url, "content": content})

    # -- conversions domain (sandbox/conversions) -----------------------------------------------

    def conversion_events(self, shop_id: str) -> dict[str, Any]:
        """{"events_received": n, "duplicates_dropped": n, "events": [...]} for the shop's
        pixel."""
        return self.call("GET", f"/conversions/{shop_id}/events")

    # -- orders and finance domains ---------------------------------------------------------------

    def place_orders(
        self, shop_id: str, orders: list[dict[str, Any]] | None = None, **generate: Any
    ) -> list[dict[str, Any]]:
        """Create the given orders, or generate some: place_orders("acme", count=5, seed=1)."""
        body: dict[str, Any] = {"orders": orders} if orders else {}
        if generate:
            body["generate"] = generate
        return self.call("POST", f"/shops/{shop_id}/orders", json=body)["orders"]

    def order_state(self, shop_id: str, order_id: str) -> dict[str, Any]:
        """The order as Graph renders it plus the sandbox's internal counters."""
        return self.call("GET", f"/shops/{shop_id}/orders/{order_id}")

    def open_return(
        self, shop_id: str, order_id: str, items: list[dict[str, Any]], message: str | None = None
    ) -> dict[str, Any]:
        return self.call(
            "POST",
            f"/shops/{shop_id}/orders/{order_id}/returns",
            json={"items": items, "message": message},
        )

    def meta_cancel(self, shop_id: str, order_id: str, **spec: Any) -> dict[str, Any]:
        return self.call("POST", f"/shops/{shop_id}/orders/{order_id}/meta_cancel", json=spec)

    def meta_refund(self, shop_id: str, order_id: str, **spec: Any) -> dict[str, Any]:
        return self.call("POST", f"/shops/{shop_id}/orders/{order_id}/meta_refund", json=spec)

    def capture_payments(self, shop_id: str, order_id: str) -> int:
        return self.call("POST", f"/shops/{shop_id}/orders/{order_id}/capture")["captured"]

    def configure_orders(self, **settings: Any) -> dict[str, Any]:
        return self.call("POST", "/orders/config", json=settings)

    def configure_finance(self, **settings: Any) -> dict[str, Any]:
        return self.call("POST", "/finance/config", json=settings)

    def inject_transaction(
        self,
        shop_id: str,
        transaction_type: str = "MYSTERY_ADJUSTMENT",
        amount: str = "1.00",
        order_id: str | None = None,
    ) -> dict[str, Any]:
        return self.call(
            "POST",
            f"/shops/{shop_id}/finance/transactions",
            json={"transaction_type": transaction_type, "amount": amount, "order_id": order_id},
        )

    # -- offers ---------------------------------------------------------------------------------

    def offers(self, shop_id: str) -> list[dict[str, Any]]:
        """The shop's offers as the sandbox stores them, each with `active` (now, by its clock)."""
        return self.call("GET", f"/offers/{shop_id}")["offers"]

    def offers_settings(self, **settings: Any) -> None:
        self.call("POST", "/offers/settings", json=settings)
