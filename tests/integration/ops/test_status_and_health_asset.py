"""Per-shop health where people look: `metasync status` and the shop_health asset in the UI."""

import json
from datetime import timedelta

import dagster as dg
from click.testing import CliRunner

from pipelines.ops.alerts import AlertResource, AlertSink
from pipelines.ops.assets import shop_health
from pipelines.ops.cli import status
from pipelines.ops.definitions import defs
from pipelines.ops.health import all_shop_health
from pipelines.ops.sensors import token_alerts
from pipelines.resources import MetasyncResource
from resources.db.types import utcnow
from resources.shops import ShopStatus
from tests.unit.ops.helpers import accept_item, add_shop, import_order, open_issue


def _two_shops(metasync_db, registry) -> None:
    now = utcnow()
    add_shop(registry, "acme")
    add_shop(registry, "bolt", status=ShopStatus.NEEDS_REAUTH, reason="190: expired")
    accept_item(metasync_db, "acme", "A", now - timedelta(hours=3))
    open_issue(metasync_db, "acme", "missing_image", "error", now)
    import_order(metasync_db, "acme", "o1", now - timedelta(minutes=20))


def test_status_prints_a_row_per_shop_and_fails_when_a_shop_needs_reauth(metasync_db, registry):
    _two_shops(metasync_db, registry)
    result = CliRunner().invoke(status, [])
    lines = result.output.splitlines()
    assert result.exit_code == 1
    acme = next(line for line in lines if line.startswith("acme"))
    assert acme.split()[:6] == ["acme", "active", "3.0", "1", "0", "1"]
    assert next(line for line in lines if line.startswith("bolt")).split()[1] == "needs_reauth"


def test_status_json_and_single_shop(metasync_db, registry):
    _two_shops(metasync_db, registry)
    AlertSink(metasync_db).raise_alert(token_alerts(all_shop_health(metasync_db))[0])

    result = CliRunner().invoke(status, ["--json"])
    report = json.loads(result.output)
    assert [s["shop"] for s in report["shops"]] == ["acme", "bolt"]
    assert report["shops"][0]["unacked_orders"] == 1
    assert [a["kind"] for a in report["open_alerts"]] == ["token_needs_reauth"]

    one = CliRunner().invoke(status, ["--shop", "bolt", "--alerts"])
    assert "status_reason        190: expired" in one.output
    assert "1 open alert(s)" in one.output


def test_status_is_healthy_with_exit_code_zero(metasync_db, registry):
    add_shop(registry, "acme")
    assert CliRunner().invoke(status, []).exit_code == 0
    unknown = CliRunner().invoke(status, ["--shop", "nope"])
    assert unknown.exit_code != 0 and "nope" in unknown.output


def test_shop_health_asset_puts_a_row_per_shop_in_its_metadata(metasync_db, registry):
    _two_shops(metasync_db, registry)
    result = dg.materialize(
        [shop_health], resources={"metasync": MetasyncResource(database_url=metasync_db.url)}
    )
    [event] = result.get_asset_materialization_events()
    metadata = event.materialization.metadata
    assert metadata["dagster/row_count"].value == 2
    assert metadata["shops_needing_reauth"].value == ["bolt"]
    rows = {r.data["shop"]: r.data for r in metadata["health"].value.records}
    assert rows["acme"]["issues_error"] == 1 and rows["bolt"]["token"] == "needs_reauth"


def test_ops_definitions_load_with_their_resources(metasync_db):
    bound = dg.Definitions.merge(
        defs,
        dg.Definitions(resources={"metasync": MetasyncResource(), "alerts": AlertResource()}),
    )
    dg.Definitions.validate_loadable(bound)
    assert {s.name for s in bound.sensors} == {
        "run_failure_alert_sensor",
        "catalog_staleness_sensor",
        "order_ack_sla_sensor",
        "finance_lag_sensor",
        "token_state_sensor",
    }
    assert bound.resolve_job_def("shop_health_job") is not None
