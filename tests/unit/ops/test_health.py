"""Per-shop health figures, read from the other domains' tables."""

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from pipelines.ops.health import all_shop_health, shop_health
from resources.shops import ShopStatus
from tests.unit.ops.helpers import (
    accept_item,
    add_shop,
    import_order,
    load_finance_day,
    open_issue,
    record_write,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_health_reports_each_figure_for_its_own_shop(metasync_db, registry):
    """Every figure comes from the shop's own rows; another shop's rows never leak in."""
    add_shop(registry, "acme")
    add_shop(registry, "other", status=ShopStatus.NEEDS_REAUTH, reason="error 190")
    accept_item(metasync_db, "acme", "A", NOW - timedelta(hours=5))
    accept_item(metasync_db, "acme", "B", NOW - timedelta(hours=2))
    accept_item(metasync_db, "acme", "C", NOW - timedelta(hours=1), status="REJECTED")
    accept_item(metasync_db, "other", "Z", NOW)
    open_issue(metasync_db, "acme", "missing_image", "error", NOW)
    open_issue(metasync_db, "acme", "low_res", "warning", NOW)
    open_issue(metasync_db, "acme", "old", "error", NOW, resolved=True)
    import_order(metasync_db, "acme", "o1", NOW - timedelta(minutes=90))
    import_order(metasync_db, "acme", "o2", NOW - timedelta(minutes=30), state="issue")
    import_order(
        metasync_db,
        "acme",
        "o3",
        NOW - timedelta(days=2),
        state="acknowledged",
        acknowledged_at=NOW - timedelta(days=2),
    )
    import_order(metasync_db, "other", "o9", NOW - timedelta(days=9))
    load_finance_day(metasync_db, "acme", date(2026, 3, 7), NOW)
    load_finance_day(metasync_db, "acme", date(2026, 3, 8), NOW)
    record_write(metasync_db, "acme", "k1", "pending", NOW)
    record_write(metasync_db, "acme", "k2", "failed", NOW)
    record_write(metasync_db, "acme", "k3", "succeeded", NOW)

    health = shop_health(metasync_db, "acme")

    assert health.token_state == "active"
    assert health.last_accepted_catalog_write == NOW - timedelta(hours=2)
    assert health.open_issues == {"error": 1, "warning": 1}
    assert health.oldest_unacknowledged_order == NOW - timedelta(minutes=90)
    assert health.unacknowledged_orders == 2
    assert health.last_finance_day == date(2026, 3, 8)
    assert (health.pending_graph_writes, health.failed_graph_writes) == (1, 1)
    assert health.unavailable == ()
    assert health.catalog_age_hours(NOW) == pytest.approx(2.0)

    other = shop_health(metasync_db, "other")
    assert other.needs_reauth and other.status_reason == "error 190"
    assert other.open_issues == {} and other.last_finance_day is None


def test_a_shop_with_no_activity_has_empty_figures(metasync_db, registry):
    add_shop(registry, "new")
    health = shop_health(metasync_db, "new")
    assert health.last_accepted_catalog_write is None
    assert health.oldest_unacknowledged_order is None and health.unacknowledged_orders == 0
    record = health.as_record(NOW)
    assert record["catalog_age_h"] is None and record["issues_error"] == 0


def test_a_missing_domain_table_is_reported_not_fatal(metasync_db, registry):
    """A domain not deployed yet leaves its figures empty and names the source."""
    add_shop(registry, "acme")
    import_order(metasync_db, "acme", "o1", NOW - timedelta(minutes=5))
    with metasync_db.begin() as conn:
        conn.execute(text("DROP TABLE finance_partition_loads"))

    health = shop_health(metasync_db, "acme")

    assert health.unavailable == ("finance_partition_loads",)
    assert health.last_finance_day is None
    assert health.unacknowledged_orders == 1


def test_unknown_shop_is_a_clear_error(metasync_db, registry):
    with pytest.raises(LookupError, match="nope"):
        shop_health(metasync_db, "nope")


def test_all_shop_health_is_in_shop_order(metasync_db, registry):
    for shop_id in ("zeta", "alpha", "mid"):
        add_shop(registry, shop_id)
    assert [h.shop_id for h in all_shop_health(metasync_db)] == ["alpha", "mid", "zeta"]
