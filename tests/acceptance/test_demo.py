"""The main job end to end: two shops, catalog, orders, Conversions API and finance.

The same `run_demo` that `make demo` runs, once on the embedded default (SQLite for everything)
and once with Dagster's instance storage and the metasync and OMS tables on the machine's
PostgreSQL. Each asserts what a data engineer would check after a first sync.
"""

from pathlib import Path

import dagster as dg
import pytest

from pipelines.demo import DemoSummary, run_demo
from resources.settings import get_settings


def _assert_end_to_end(summary: DemoSummary) -> None:
    assert summary.ok, summary.failures
    assert len(summary.shops) == 2
    for report in summary.shops:
        full = report.catalog["full"]
        accounted = full["dagster/row_count"] + full["excluded"] + full["rejected_in_store"]
        assert accounted == report.source_rows > 0
        assert full["accepted"] == full["dagster/row_count"] > 0
        assert report.items_on_meta > 0
        assert report.orders_placed == report.orders_imported == report.orders_acknowledged > 0
        assert report.changes_synced == {"shipment": 2, "refund": 1}
        assert report.changes_not_synced == {}
        assert report.capi_events == report.orders_placed
        assert report.payouts >= 1 and report.transactions >= 3
        assert report.reconciliation.get("matched", 0) == 2
    outdoor = summary.shops[0]
    # The generated Shopify store changes between the two runs; the delta sends only that.
    assert outdoor.catalog["delta"]["created"] == 1
    assert outdoor.catalog["delta"]["deleted"] == 2
    assert outdoor.catalog["delta"]["unchanged"] > 0
    assert "missing_price" in outdoor.reject_reasons
    kimono = summary.shops[1]
    assert kimono.catalog["delta"]["api_calls"] == 0  # nothing changed: nothing sent


def test_demo_on_the_embedded_default(tmp_path: Path):
    summary = run_demo(workdir=tmp_path / "demo")

    _assert_end_to_end(summary)
    assert "demo-outdoor" in summary.render()
    with dg.DagsterInstance.get() as instance:  # the UI (`make dev`) sees the demo's runs
        assert len(instance.get_runs()) >= 10
        assert set(instance.get_dynamic_partitions("shops")) == {"demo-outdoor", "demo-kimono"}


@pytest.mark.postgres
def test_demo_on_postgres(tmp_path: Path, postgres_url: str):
    summary = run_demo(
        workdir=tmp_path / "demo", database_url=postgres_url, dagster_storage_url=postgres_url
    )

    _assert_end_to_end(summary)
    assert get_settings().resolved_database_url() == postgres_url
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert len(instance.get_runs()) >= 10
