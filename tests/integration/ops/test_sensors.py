"""Every alert condition fires through its sensor: to the log, the alerts table and a webhook."""

import logging
from datetime import timedelta

import dagster as dg
import pytest

from pipelines.ops.alerts import AlertSink
from pipelines.ops.sensors import (
    catalog_staleness_sensor,
    finance_lag_sensor,
    order_ack_sla_sensor,
    run_failure_alert_sensor,
    token_state_sensor,
)
from resources.db.types import utcnow
from resources.shops import ShopStatus
from tests.unit.ops.helpers import accept_item, add_shop, import_order, load_finance_day


def _tick(sensor, resources: dict) -> str:
    with dg.build_sensor_context(resources=resources) as context:
        result = sensor(context)
    assert isinstance(result, dg.SkipReason)  # SLA sensors never launch runs
    return result.skip_message


def test_catalog_staleness_alerts_once_then_resolves(
    metasync_db, registry, ops_resources, webhook, caplog
):
    now = utcnow()
    add_shop(registry, "acme")
    add_shop(registry, "bolt")
    accept_item(metasync_db, "acme", "A", now - timedelta(hours=40))
    accept_item(metasync_db, "bolt", "B", now - timedelta(hours=1))

    with caplog.at_level(logging.WARNING):
        first = _tick(catalog_staleness_sensor, ops_resources)
    second = _tick(catalog_staleness_sensor, ops_resources)

    assert webhook.kinds() == [("catalog_stale", "acme")]
    assert "no catalog write accepted by Meta for 40.0 h" in webhook.received[0]["summary"]
    assert "ALERT catalog_stale" in caplog.text
    assert "1 of 2 shops breach: 1 new" in first
    assert "0 new alert(s), 1 already open" in second

    accept_item(metasync_db, "acme", "A2", now)
    cleared = _tick(catalog_staleness_sensor, ops_resources)
    assert "1 alert(s) resolved" in cleared and "(2 shops checked)" in cleared
    assert AlertSink(metasync_db).open_keys() == []


def test_order_ack_sla_alerts_on_the_oldest_unacknowledged_order(
    metasync_db, registry, ops_resources, webhook
):
    add_shop(registry, "acme")
    import_order(metasync_db, "acme", "o1", utcnow() - timedelta(hours=3))
    message = _tick(order_ack_sla_sensor, ops_resources)
    assert webhook.kinds() == [("order_ack_late", "acme")]
    assert webhook.received[0]["severity"] == "critical"
    assert "1 new alert" in message


def test_finance_lag_alerts_and_respects_the_threshold_setting(
    metasync_db, registry, ops_resources, webhook, monkeypatch
):
    add_shop(registry, "acme")
    load_finance_day(metasync_db, "acme", (utcnow() - timedelta(days=3)).date(), utcnow())
    assert "every Meta-checkout shop" in _tick(finance_lag_sensor, ops_resources)
    assert webhook.received == []

    monkeypatch.setenv("METASYNC_SLA_FINANCE_LAG_DAYS", "2")
    _tick(finance_lag_sensor, ops_resources)
    assert webhook.kinds() == [("finance_lag", "acme")]
    assert webhook.received[0]["detail"]["threshold_days"] == 2


def test_token_state_alerts_for_needs_reauth(metasync_db, registry, ops_resources, webhook):
    add_shop(registry, "acme")
    assert _tick(token_state_sensor, ops_resources).startswith("no shop needs re-authentication")
    registry.set_status("acme", ShopStatus.NEEDS_REAUTH, "190: session expired")
    _tick(token_state_sensor, ops_resources)
    assert webhook.kinds() == [("token_needs_reauth", "acme")]
    assert "190: session expired" in webhook.received[0]["summary"]

    registry.replace_token("acme", "EAAnewtoken")
    assert "1 alert(s) resolved" in _tick(token_state_sensor, ops_resources)


@dg.op
def _failing_op():
    raise RuntimeError("Graph said no (code 100)")


@dg.job(tags={"shop": "acme"})
def _failing_job():
    _failing_op()


def test_run_failure_sensor_alerts_with_job_shop_and_message(metasync_db, ops_resources, webhook):
    with dg.instance_for_test() as instance:
        result = _failing_job.execute_in_process(instance=instance, raise_on_error=False)
        assert not result.success
        with dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert_sensor",
            dagster_instance=instance,
            dagster_run=result.dagster_run,
            dagster_event=result.get_run_failure_event(),
            resources=ops_resources,
        ) as context:
            failure_context = context.for_run_failure()
            run_failure_alert_sensor(failure_context)
            run_failure_alert_sensor(failure_context)  # the same failure seen twice alerts once

    assert webhook.kinds() == [("run_failure", "acme")]
    alert = webhook.received[0]
    assert alert["detail"]["job"] == "_failing_job"
    assert alert["detail"]["run_id"] == result.run_id
    assert "_failing_op" in alert["summary"]


@pytest.mark.parametrize("status", [500, 404])
def test_a_webhook_outage_does_not_break_the_sensor(
    metasync_db, registry, ops_resources, webhook, status
):
    webhook.status = status
    add_shop(registry, "acme", status=ShopStatus.NEEDS_REAUTH, reason="190")
    assert "1 new alert" in _tick(token_state_sensor, ops_resources)
    [row] = AlertSink(metasync_db).open_alerts()
    assert row["webhook_status"] == "failed" and f"HTTP {status}" in row["webhook_error"]
