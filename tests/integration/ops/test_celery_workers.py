"""Scale-out: steps run on two Celery worker processes (RabbitMQ broker, Postgres instance and
metasync database, outputs exchanged through Postgres) and give the same result as in-process.

The workers are started with the production command (`dagster-celery worker start`, the same
deploy/celery/celery.yaml) on a queue unique to this test run, and stopped and the queue deleted
afterwards. Never skipped: CI provides RabbitMQ and PostgreSQL, and a missing one must fail.
"""

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import dagster as dg
import pytest
from kombu import Connection
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url

from pipelines.ops.scaleout import DEFAULT_BROKER, celery_run_config, scaleout_probe_job
from resources.db import MetasyncDatabase
from resources.db.ops_tables import step_outputs
from resources.db.types import utcnow
from resources.settings import get_settings
from resources.shops import ShopRegistry, ShopStatus, TokenVault
from tests.conftest import REPO_ROOT
from tests.unit.ops.helpers import accept_item, add_shop, import_order, load_finance_day

SHOPS = [f"shop-{n:02d}" for n in range(10)]
WORKER_START_DEADLINE = 90.0  # seconds; generous for a loaded 2-core CI machine


@pytest.fixture
def metasync_pg_url(postgres_url: str) -> Iterator[str]:
    """A second throwaway database beside the Dagster one, for the metasync tables."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"metasync_app_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture
def deployment(postgres_url, metasync_pg_url, tmp_path, monkeypatch) -> dict[str, str]:
    """The environment every process of the deployment shares (test process and workers)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "celery" / "dagster.yaml", home / "dagster.yaml")
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": postgres_url,
        "METASYNC_DATABASE_URL": metasync_pg_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return env


def _seed_shops(db: MetasyncDatabase) -> None:
    registry = ShopRegistry(db, TokenVault.from_settings())
    now = utcnow()
    for n, shop_id in enumerate(SHOPS):
        status = ShopStatus.NEEDS_REAUTH if n == 7 else ShopStatus.ACTIVE
        add_shop(registry, shop_id, status=status, reason="190" if n == 7 else None)
        for item in range(n + 1):
            accept_item(
                db,
                shop_id,
                f"SKU-{item}",
                now - timedelta(hours=item),
                status="REJECTED" if item == 3 else "ACCEPTED",
            )
        for order in range(n % 3):
            import_order(db, shop_id, f"o{order}", now - timedelta(minutes=10 * order))
        load_finance_day(db, shop_id, (now - timedelta(days=n % 4)).date(), now)


class Worker:
    def __init__(self, name: str, queue: str, env: dict[str, str], log: Path) -> None:
        self.name, self.log = name, log
        command = [
            str(Path(sys.executable).with_name("dagster-celery")),
            "worker",
            "start",
            "-A",
            "dagster_celery.app",
            "-y",
            str(REPO_ROOT / "deploy/celery/celery.yaml"),
            "-q",
            queue,
            "-n",
            name,
            "--",
            "--concurrency=1",
        ]
        with log.open("wb") as out:
            # Own session: the worker and the celery processes it forks stop as one group.
            self.process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"worker {self.name} exited:\n{self.log.read_text()[-3000:]}")
        return " ready." in self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()


@pytest.fixture
def celery_workers(deployment, tmp_path) -> Iterator[str]:
    """Two single-process workers on a fresh queue; yields the queue name."""
    queue = f"metasync-test-{uuid.uuid4().hex[:10]}"
    env = (
        os.environ
        | deployment
        | {
            "PYTHONPATH": str(REPO_ROOT),
            "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        }
    )
    workers = [Worker(f"{queue}-w{n}@%h", queue, env, tmp_path / f"worker{n}.log") for n in (1, 2)]
    try:
        deadline = time.monotonic() + WORKER_START_DEADLINE
        while not all(worker.ready() for worker in workers):
            if time.monotonic() > deadline:
                raise RuntimeError(
                    "celery workers did not become ready: "
                    + "\n".join(w.log.read_text()[-2000:] for w in workers)
                )
            time.sleep(0.5)
        yield queue
    finally:
        for worker in workers:
            worker.stop()
        with Connection(DEFAULT_BROKER) as connection:
            connection.default_channel.queue_delete(queue)


# dagster-celery registers its task once per run it submits; harmless, reported upstream-side.
@pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered")
@pytest.mark.postgres
def test_two_celery_workers_give_the_in_process_result(deployment, celery_workers):
    db = MetasyncDatabase(deployment["METASYNC_DATABASE_URL"])
    db.create_schema()
    _seed_shops(db)
    ops_config = {"fan_out_shops": {"config": {"shop_ids": SHOPS}}}

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        with dg.execute_job(
            dg.reconstructable(scaleout_probe_job),
            instance=instance,
            run_config={
                "ops": ops_config,
                "execution": {"config": celery_run_config(queue=celery_workers)},
            },
        ) as celery_result:
            assert celery_result.success
            on_workers = celery_result.output_for_node("gather_digests")
            worker_events = [
                e
                for e in instance.all_logs(celery_result.run_id)
                if "in celery worker" in (e.message or "")
            ]
        in_process = scaleout_probe_job.execute_in_process(
            run_config={"ops": ops_config}, instance=instance
        ).output_for_node("gather_digests")

    assert on_workers["shops"] == in_process["shops"]
    assert [s["shop_id"] for s in on_workers["shops"]] == SHOPS
    assert on_workers["shops"][7]["token_state"] == "needs_reauth"
    assert on_workers["shops"][9]["accepted"] == 9  # 10 items, one rejected
    # Every step (fan-out, 10 digests, gather) ran in a worker process, not in this one.
    assert len(worker_events) == len(SHOPS) + 2
    assert f":{os.getpid()}" not in " ".join(on_workers["workers"])
    # What the steps exchanged went through Postgres, not a local pickle.
    with db.begin() as conn:
        stored = (
            conn.execute(
                select(step_outputs.c.step_key).where(step_outputs.c.run_id == celery_result.run_id)
            )
            .scalars()
            .all()
        )
    # fan_out_shops' ten dynamic outputs, ten digests, one gathered result
    assert len(stored) == 2 * len(SHOPS) + 1
    db.dispose()
