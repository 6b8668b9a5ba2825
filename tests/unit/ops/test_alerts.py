"""The alert sink: logged always, one notification per open condition, secrets never sent."""

import json
import logging

import httpx

from pipelines.ops.alerts import CRITICAL, WARNING, Alert, AlertResource, AlertSink, scrub


def _stale(shop_id: str = "acme", hours: int = 30) -> Alert:
    return Alert(
        kind="catalog_stale",
        shop_id=shop_id,
        severity=WARNING,
        summary=f"shop {shop_id}: stale {hours} h",
        detail={"age_hours": hours},
    )


def _recording_transport(received: list, status: int = 200) -> httpx.MockTransport:
    def handler(request: httpx.Request) -> httpx.Response:
        received.append(json.loads(request.content))
        return httpx.Response(status)

    return httpx.MockTransport(handler)


def test_a_persisting_condition_notifies_once_and_a_recurrence_again(metasync_db, caplog):
    received: list = []
    sink = AlertSink(metasync_db, "http://hooks.test/x", transport=_recording_transport(received))

    with caplog.at_level(logging.WARNING, logger="pipelines.ops.alerts"):
        assert sink.raise_alert(_stale()) is True
        assert sink.raise_alert(_stale(hours=31)) is False
    assert [p["key"] for p in received] == ["catalog_stale:acme"]
    assert sum("ALERT catalog_stale" in r.getMessage() for r in caplog.records) == 1

    assert sink.resolve("catalog_stale:acme") is True
    assert sink.open_keys() == []
    assert sink.raise_alert(_stale()) is True
    assert len(received) == 2


def test_conditions_of_other_shops_are_separate_alerts(metasync_db):
    sink = AlertSink(metasync_db)
    assert sink.raise_alert(_stale("acme")) and sink.raise_alert(_stale("bolt"))
    assert sink.resolve_others("catalog_stale", ["catalog_stale:bolt"]) == ["catalog_stale:acme"]
    assert sink.open_keys("catalog_stale") == ["catalog_stale:bolt"]


def test_without_a_webhook_the_alert_is_logged_and_stored(metasync_db, caplog):
    with caplog.at_level(logging.WARNING, logger="pipelines.ops.alerts"):
        AlertSink(metasync_db).raise_alert(_stale())
    [row] = AlertSink(metasync_db).open_alerts()
    assert row["webhook_status"] == "not_configured"
    assert row["detail"] == {"age_hours": 30}
    assert "shop acme: stale 30 h" in caplog.text


def test_a_failed_webhook_is_retried_while_the_alert_is_open(metasync_db):
    received: list = []
    down = AlertSink(
        metasync_db,
        "http://hooks.test/secret-path",
        transport=_recording_transport(received, status=503),
    )
    down.raise_alert(_stale())
    [row] = down.open_alerts()
    assert row["webhook_status"] == "failed"
    assert "hooks.test" in row["webhook_error"] and "secret-path" not in row["webhook_error"]

    up = AlertSink(
        metasync_db, "http://hooks.test/secret-path", transport=_recording_transport(received)
    )
    assert up.raise_alert(_stale()) is False  # not a new condition ...
    assert up.open_alerts()[0]["webhook_status"] == "delivered"  # ... but now delivered
    assert len(received) == 2
    up.raise_alert(_stale())
    assert len(received) == 2


def test_tokens_are_masked_before_logging_storing_or_posting(metasync_db):
    received: list = []
    sink = AlertSink(metasync_db, "http://hooks.test/x", transport=_recording_transport(received))
    leaked = "EAAB" + "x" * 40
    sink.raise_alert(
        Alert(
            kind="run_failure",
            shop_id="acme",
            severity=CRITICAL,
            summary=f"GET /me?access_token={leaked}&fields=id failed",
            detail={"message": f"token {leaked}"},
            condition="run1",
        )
    )
    assert leaked not in json.dumps(received)
    assert leaked not in json.dumps(sink.open_alerts(), default=str)
    assert "access_token=***" in received[0]["summary"]


def test_scrub_leaves_ordinary_text_alone():
    assert scrub("shop acme: 3 orders late") == "shop acme: 3 orders late"


def test_resource_reads_the_webhook_url_from_the_environment(monkeypatch, metasync_db):
    monkeypatch.setenv("METASYNC_ALERT_WEBHOOK_URL", "http://hooks.test/from-env")
    assert AlertResource().resolved_webhook_url() == "http://hooks.test/from-env"
    assert (
        AlertResource(webhook_url="http://explicit/").resolved_webhook_url() == "http://explicit/"
    )
    monkeypatch.delenv("METASYNC_ALERT_WEBHOOK_URL")
    assert AlertResource().sink(metasync_db).webhook_host == ""
