"""The production instance configs in deploy/: they stay in step with dagster.yaml, and the
Postgres one really runs jobs with runs, events and partitions stored in PostgreSQL."""

import shutil
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml
from sqlalchemy import create_engine, text

from pipelines.ops.assets import shop_health, shop_health_job
from pipelines.ops.health import shop_health as read_shop_health
from pipelines.resources import MetasyncResource
from resources.db import MetasyncDatabase
from resources.db.types import utcnow
from resources.shops import ShopRegistry, TokenVault
from tests.conftest import REPO_ROOT
from tests.unit.ops.helpers import accept_item, add_shop, import_order, load_finance_day

DEV_CONFIG = REPO_ROOT / "dagster.yaml"
PRODUCTION_CONFIGS = [
    REPO_ROOT / "deploy" / "dagster.postgres.yaml",
    REPO_ROOT / "deploy" / "celery" / "dagster.yaml",
]


def _load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def test_dev_config_has_no_storage_block():
    """Storage in the repo root file would make every local `dagster dev` reach for Postgres."""
    assert "storage" not in _load(DEV_CONFIG)


@pytest.mark.parametrize("path", PRODUCTION_CONFIGS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_production_configs_equal_dagster_yaml_except_storage(path: Path):
    production = _load(path)
    storage = production.pop("storage")
    assert production == _load(DEV_CONFIG)
    assert storage == {"postgres": {"postgres_url": {"env": "DAGSTER_PG_URL"}}}


@pytest.mark.postgres
def test_postgres_instance_runs_a_job_and_stores_it_in_postgres(
    postgres_url, tmp_path, monkeypatch
):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PRODUCTION_CONFIGS[0], home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_URL", postgres_url)

    # The metasync database on the same server: the ops tables must work on Postgres too.
    db = MetasyncDatabase(postgres_url)
    db.create_schema()
    registry = ShopRegistry(db, TokenVault.from_settings())
    add_shop(registry, "acme")
    now = utcnow()
    accept_item(db, "acme", "A", now - timedelta(hours=2))
    import_order(db, "acme", "o1", now - timedelta(minutes=30))
    load_finance_day(db, "acme", (now - timedelta(days=1)).date(), now)

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        instance.add_dynamic_partitions("shops", ["acme"])
        bound = dg.Definitions(
            assets=[shop_health],
            jobs=[shop_health_job],
            resources={"metasync": MetasyncResource(database_url=postgres_url)},
        )
        result = bound.resolve_job_def("shop_health_job").execute_in_process(instance=instance)
        assert result.success

    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        stored = conn.execute(
            text("SELECT status FROM runs WHERE run_id = :id"), {"id": result.run_id}
        ).scalar()
        partitions = conn.execute(text("SELECT partition FROM dynamic_partitions")).scalars().all()
    engine.dispose()
    assert stored == "SUCCESS"
    assert partitions == ["acme"]

    health = read_shop_health(db, "acme")
    assert health.unacknowledged_orders == 1
    assert health.last_finance_day == (now - timedelta(days=1)).date()
    db.dispose()
