"""The SLA rules: which shops breach, and which are left alone on purpose."""

from datetime import UTC, date, datetime, timedelta

from pipelines.ops.health import ShopHealth
from pipelines.ops.sensors import (
    catalog_stale_alerts,
    finance_lag_alerts,
    order_ack_alerts,
    run_failure_alert,
    token_alerts,
)

NOW = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def _health(shop_id: str = "acme", **values) -> ShopHealth:
    values.setdefault("token_state", "active")
    values.setdefault("status_reason", None)
    values.setdefault("capabilities", ("onsite_orders",))
    values.setdefault("registered_at", NOW - timedelta(days=30))
    return ShopHealth(shop_id=shop_id, **values)


def test_catalog_staleness_threshold_is_exclusive_and_per_shop():
    fresh = _health("fresh", last_accepted_catalog_write=NOW - timedelta(hours=26))
    stale = _health("stale", last_accepted_catalog_write=NOW - timedelta(hours=27))
    [alert] = catalog_stale_alerts([fresh, stale], NOW, hours=26)
    assert alert.shop_id == "stale" and alert.key == "catalog_stale:stale"
    assert alert.detail["age_hours"] == 27.0


def test_a_shop_never_accepted_is_stale_only_after_the_threshold_since_registration():
    recent = _health("recent", registered_at=NOW - timedelta(hours=3))
    old = _health("old", registered_at=NOW - timedelta(days=3))
    assert [a.shop_id for a in catalog_stale_alerts([recent, old], NOW, 26)] == ["old"]


def test_paused_shops_and_unreadable_sources_raise_no_sla_alert():
    long_ago = NOW - timedelta(days=10)
    paused = _health("paused", token_state="paused", last_accepted_catalog_write=long_ago)
    blind = _health("blind", last_accepted_catalog_write=None, unavailable=("catalog_ledger",))
    assert catalog_stale_alerts([paused, blind], NOW, 26) == []


def test_order_ack_alerts_only_for_meta_checkout_shops_past_the_sla():
    late = _health(
        "late", oldest_unacknowledged_order=NOW - timedelta(minutes=61), unacknowledged_orders=3
    )
    ok = _health("ok", oldest_unacknowledged_order=NOW - timedelta(minutes=59))
    catalog_only = _health(
        "cat", capabilities=(), oldest_unacknowledged_order=NOW - timedelta(days=1)
    )
    [alert] = order_ack_alerts([late, ok, catalog_only], NOW, minutes=60)
    assert alert.shop_id == "late" and alert.severity == "critical"
    assert "3 order(s)" in alert.summary


def test_finance_lag_counts_days_since_the_last_loaded_day():
    today = date(2026, 3, 10)
    behind = _health("behind", last_finance_day=date(2026, 3, 5))
    current = _health("current", last_finance_day=date(2026, 3, 6))
    [alert] = finance_lag_alerts([behind, current], today, days=4)
    assert alert.shop_id == "behind" and alert.detail["lag_days"] == 5


def test_token_alert_names_the_fix():
    [alert] = token_alerts(
        [_health("a"), _health("b", token_state="needs_reauth", status_reason="190: token expired")]
    )
    assert alert.shop_id == "b" and "metasync shops set-token b" in alert.summary


def test_run_failure_alert_is_keyed_by_run_and_finds_the_shop_tag():
    alert = run_failure_alert(
        "catalog_job", "abcdef123456", {"dagster/partition/shop": "acme"}, "boom"
    )
    assert alert.key == "run_failure:acme:abcdef123456"
    assert alert.shop_id == "acme" and "catalog_job failed for shop acme" in alert.summary
    anonymous = run_failure_alert("health", "r2", {}, "boom")
    assert anonymous.shop_id is None and anonymous.key == "run_failure:*:r2"
    assert anonymous.summary.startswith("health failed (run r2): boom")


def test_an_interrupted_run_is_a_warning_asking_for_a_rerun():
    """A stopped `dagster dev` or a lost worker marks its runs failed; nothing in them failed."""
    tags = {"dagster/partition/shop": "acme"}
    failed = run_failure_alert("catalog_job", "abcdef123456", tags, "boom")
    stopped = run_failure_alert("catalog_job", "abcdef123456", tags, "boom", interrupted=True)
    assert (failed.severity, stopped.severity) == ("critical", "warning")
    assert "interrupted" in stopped.summary and "rerun" in stopped.summary
    assert "shop acme" in stopped.summary and stopped.key == failed.key


def test_interrupted_means_dagster_saw_the_process_stop():
    from types import SimpleNamespace

    from dagster._core.events import JobFailureData, RunFailureReason

    from pipelines.ops.sensors import was_interrupted

    def event(reason):
        return SimpleNamespace(event_specific_data=JobFailureData(None, reason, None))

    assert was_interrupted(event(RunFailureReason.UNEXPECTED_TERMINATION))
    assert was_interrupted(event(RunFailureReason.RUN_WORKER_RESTART))
    assert not was_interrupted(event(RunFailureReason.STEP_FAILURE))
    assert not was_interrupted(event(None))
