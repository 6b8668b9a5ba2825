"""Scale-out: the real catalog and finance jobs for 10 shops run on two Celery workers (RabbitMQ
broker, Postgres instance storage, Postgres metasync database, step outputs through Postgres) and
leave exactly what an in-process run leaves on a second, identically seeded world.

A world is a live sandbox plus a Postgres database (metasync and OMS tables) plus the shops' store
exports. Both worlds are seeded by the same sequence of calls; the celery world is worked by
`dagster-celery worker start` processes (the production command and deploy/celery/celery.yaml) on
a queue unique to this test, the other by `execute_in_process`. Then the catalog ledger, item
status history, store rejects, the finance tables and the sandbox's catalog items are compared
with only what legitimately differs taken out: timestamps, row ids, Meta handles and item ids
(both sandboxes count ids, but steps on two workers reach them in another order).

Never skipped: CI provides RabbitMQ and PostgreSQL, and a missing one must fail.
"""

import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._core.definitions.reconstruct import ReconstructableJob, ReconstructableRepository
from kombu import Connection
from sqlalchemy import DateTime, select
from sqlalchemy.engine import make_url

from pipelines.catalog.assets import catalog_assets
from pipelines.catalog.generator import write_shopify_csv
from pipelines.catalog.schedules import catalog_delta_job
from pipelines.finance.assets import finance_assets
from pipelines.finance.partitions import finance_partition_key
from pipelines.finance.schedules import finance_job
from pipelines.ops.scaleout import (
    DEFAULT_BROKER,
    QUEUE_ENV,
    batch_run_config,
    make_catalog_batch_job,
)
from pipelines.orders.resources import OmsResource
from pipelines.resources import MetasyncResource
from pipelines.shops import sync_shop_partitions
from resources.db import MetasyncDatabase
from resources.db.catalog_tables import catalog_ledger, catalog_rejects, item_status_history
from resources.db.finance_tables import (
    finance_daily_settlement,
    finance_order_payments,
    finance_order_reconciliation,
    finance_payout_reconciliation,
    finance_payouts,
    finance_tax_summary,
    finance_transactions,
)
from resources.db.ops_tables import step_outputs
from resources.meta.orders import OrdersApi
from resources.oms.adapter import OmsAdapter
from resources.onboarding import register_from_install
from resources.settings import get_settings
from resources.shops import ShopRegistry, TokenVault
from sandbox.client import SandboxAdmin
from sandbox.orders.allocation import business_days_after
from sandbox.server import SandboxServer
from tests.conftest import REPO_ROOT, create_database, drop_database
from tests.integration.finance.scenario import OrderPlayer

SHOPS = [f"shop-{n:02d}" for n in range(10)]
COORDINATORS = 4  # processes coordinating runs at once
WORKER_START_DEADLINE = 90.0  # seconds; generous for a loaded 2-core CI machine
DAY = 86400
CATALOG_CONFIG = {
    "poll_interval_seconds": 0.0,
    "product_url_template": "https://shop.example/products/{handle}?p={product_id}",
    "default_brand": "Acme Outdoor",
}
COMPARED_TABLES = [
    catalog_ledger,
    item_status_history,
    catalog_rejects,
    finance_payouts,
    finance_transactions,
    finance_order_payments,
    finance_order_reconciliation,
    finance_payout_reconciliation,
    finance_daily_settlement,
    finance_tax_summary,
]
# Ids each sandbox hands out in the order requests reach it (batch handles, upload sessions,
# item and snapshot ids): the order differs between two workers and one process.
DIFFERING_COLUMNS = {"id", "snapshot_id", "handle", "last_handle", "upload_session_id"}


@dataclass
class World:
    """One sandbox and one Postgres database (metasync and OMS tables), seeded alike."""

    name: str
    sandbox: SandboxServer
    database_url: str
    store_dir: Path

    @property
    def urls(self) -> tuple[str, str]:
        return self.database_url, self.sandbox.url


def _resources(database_url: str, sandbox_url: str) -> dict:
    return {
        "metasync": MetasyncResource(database_url=database_url, graph_base_url=sandbox_url),
        "oms": OmsResource(database_url=database_url),
    }


@pytest.fixture
def worlds(postgres_url: str, tmp_path: Path) -> Iterator[dict[str, World]]:
    admin_url = make_url(postgres_url).set(database="postgres").render_as_string(False)
    made: dict[str, World] = {}
    try:
        for name in ("celery", "in_process"):
            sandbox = SandboxServer(admin=True).__enter__()
            made[name] = World(
                name, sandbox, create_database(admin_url, "metasync_app"), tmp_path / name
            )
        yield made
    finally:
        for world in made.values():
            world.sandbox.__exit__(None, None, None)
            drop_database(admin_url, world.database_url)


def line(sku: str, quantity: int, price: str) -> dict:
    return {"retailer_id": sku, "quantity": quantity, "price": price, "tax_rate": "0.0725"}


def _seed(world: World) -> date:
    """Shops with store exports of different sizes, and orders placed and shipped ten days ago
    on both Meta's and the OMS's side. Returns the finance day holding their payouts."""
    world.store_dir.mkdir()
    db = MetasyncDatabase(world.database_url)
    db.create_schema()
    registry = ShopRegistry(db, TokenVault.from_settings())
    admin = SandboxAdmin(world.sandbox.url)
    oms = OmsAdapter(world.database_url)
    oms.create_schema()
    metasync = MetasyncResource(database_url=world.database_url, graph_base_url=world.sandbox.url)
    admin.advance_clock(-10 * DAY)
    placed_on = world.sandbox.state.now().date()
    for n, shop_id in enumerate(SHOPS):
        store_file = write_shopify_csv(world.store_dir / f"{shop_id}.csv", seed=n, products=3 + n)
        created = admin.create_shop(shop_id, shop_id.title(), currency="USD")
        register_from_install(
            registry,
            shop_id=shop_id,
            name=created["name"],
            install=created,
            token=created["access_token"],
            currency="USD",
            timezone="UTC",
            source_kind="shopify_csv",
            source_location=str(store_file),
            onsite_orders=True,
            offers=False,
        )
        profile = registry.get(shop_id)
        with metasync.graph_for(shop_id) as graph:
            player = OrderPlayer(
                admin, OrdersApi(graph, profile.cms_id, profile.page_id), oms, shop_id
            )
            for k in range(n % 3 + 1):
                order = player.place(
                    {"items": [line("A", k + 1, f"{10 + n}.50")], "shipping_price": "4.00"}
                )
                player.ship_rest(order)
    admin.advance_clock(8 * DAY)
    admin.close()
    oms.dispose()
    db.dispose()
    return business_days_after(placed_on, 3)


def _normalised(database_url: str) -> dict[str, list[tuple]]:
    db = MetasyncDatabase(database_url)
    tables = {}
    with db.begin() as conn:
        for table in COMPARED_TABLES:
            columns = [
                c
                for c in table.columns
                if c.name not in DIFFERING_COLUMNS
                and not isinstance(c.type, DateTime)
                and "DateTime" not in type(c.type).__name__
            ]
            rows = conn.execute(select(*columns)).all()
            tables[table.name] = sorted((tuple(row) for row in rows), key=repr)
    db.dispose()
    return tables


def _sandbox_catalog(world: World) -> dict[str, list[tuple]]:
    admin = SandboxAdmin(world.sandbox.url)
    try:
        return {
            shop_id: sorted(
                (repr(i["retailer_id"]), repr(i["data"]), i["review_status"], repr(i["errors"]))
                for i in admin.catalog_items(shop_id)["items"]
            )
            for shop_id in SHOPS
        }
    finally:
        admin.close()


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
def deployment(postgres_url, worlds, tmp_path, monkeypatch) -> dict[str, str]:
    """The environment every process of the celery deployment shares (this process, which
    coordinates the runs, and the workers, which execute the steps)."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy" / "celery" / "dagster.yaml", home / "dagster.yaml")
    celery_world = worlds["celery"]
    env = {
        "DAGSTER_HOME": str(home),
        "DAGSTER_PG_URL": postgres_url,
        "METASYNC_DATABASE_URL": celery_world.database_url,
        "METASYNC_OMS_DATABASE_URL": celery_world.database_url,
        "METASYNC_GRAPH_BASE_URL": celery_world.sandbox.url,
        QUEUE_ENV: f"metasync-test-{uuid.uuid4().hex[:10]}",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    return env


@pytest.fixture
def celery_workers(deployment, tmp_path) -> Iterator[list[Worker]]:
    """Two single-process workers on the test's own queue, stopped and the queue deleted after."""
    queue = deployment[QUEUE_ENV]
    env = os.environ | {
        "PYTHONPATH": str(REPO_ROOT),
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
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
        yield workers
    finally:
        for worker in workers:
            worker.stop()
        with Connection(DEFAULT_BROKER) as connection:
            connection.default_channel.queue_delete(queue)


def _celery_job(name: str) -> ReconstructableJob:
    """The job as the workers load it: from the Celery deployment's Definitions, by module."""
    repository = ReconstructableRepository.for_module(
        "pipelines.ops.scaleout", "celery_definitions", working_directory=str(REPO_ROOT)
    )
    return repository.get_reconstructable_job(name)


@dataclass(frozen=True)
class Run:
    """One run of a job: on the celery workers, or in process against the reference world."""

    job: str
    run_config: dict
    partition_key: str | None = None
    day: str | None = None
    # The reference world's (database url, sandbox url); None: the celery world, on the workers.
    reference: tuple[str, str] | None = None

    def execute(self) -> tuple[str, bool]:
        """In a forked child: each run is coordinated by its own process, so several runs keep
        both workers busy (the Celery executor polls its steps once a second)."""
        with dg.DagsterInstance.get() as instance:
            key = (
                finance_partition_key(self.day, self.partition_key)
                if self.day
                else self.partition_key
            )
            if self.reference is None:
                tags = _partition_tags(key) if key else {}
                with dg.execute_job(
                    _celery_job(self.job), instance, run_config=self.run_config, tags=tags
                ) as result:
                    return result.run_id, result.success
            definitions = dg.Definitions(
                assets=catalog_assets + finance_assets,
                jobs=[
                    catalog_delta_job,
                    finance_job,
                    make_catalog_batch_job(dg.in_process_executor),
                ],
                resources=_resources(*self.reference),
            )
            result = definitions.resolve_job_def(self.job).execute_in_process(
                run_config=self.run_config, partition_key=key, instance=instance
            )
            return result.run_id, result.success


def _execute(run: Run) -> tuple[str, bool]:
    try:
        return run.execute()
    finally:
        # A run maps SIGTERM to SIGINT's handler (dagster's interrupts), and SIGINT is ignored in
        # a process started in the background (CI): the pool's terminate() then never ended
        # this forked worker and hung the test. Put SIGTERM back to its default.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _partition_tags(key) -> dict[str, str]:
    tags = {"dagster/partition": str(key)}
    if isinstance(key, dg.MultiPartitionKey):
        tags |= {f"dagster/partition/{dim}": value for dim, value in key.keys_by_dimension.items()}
    return tags


# dagster-celery registers its task once per run it submits; harmless, reported upstream-side.
@pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered")
@pytest.mark.postgres
def test_catalog_and_finance_jobs_on_two_celery_workers_equal_an_in_process_run(
    worlds, deployment, celery_workers
):
    finance_day = {name: _seed(world) for name, world in worlds.items()}
    assert finance_day["celery"] == finance_day["in_process"]
    day = finance_day["celery"].isoformat()
    catalog_config = {"ops": {"catalog_delta_sync": {"config": CATALOG_CONFIG}}}
    batch_config = batch_run_config(SHOPS, "stock_price")
    batch_config["ops"]["sync_batch_shop"]["config"] = CATALOG_CONFIG
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        sync_shop_partitions(instance, SHOPS)

    # Both worlds at once: per shop the hourly catalog job and the day's finance job, then (once
    # every shop has items on Meta) the batched stock/price job over all ten shops.
    sync = [
        Run(job, config, shop, job_day, reference)
        for reference in (None, worlds["in_process"].urls)
        for shop in SHOPS
        for job, config, job_day in (
            ("catalog_delta_job", catalog_config, None),
            ("finance_job", {}, day),
        )
    ]
    batches = [
        Run("catalog_batch_job", batch_config, reference=r)
        for r in (None, worlds["in_process"].urls)
    ]
    with multiprocessing.get_context("fork").Pool(COORDINATORS) as pool:
        outcomes = pool.map(_execute, sync, chunksize=1) + pool.map(_execute, batches)
    failed = [run for run, (_, ok) in zip(sync + batches, outcomes, strict=True) if not ok]
    assert not failed, f"runs failed: {failed}"
    celery_run_ids = [
        run_id
        for run, (run_id, _) in zip(sync + batches, outcomes, strict=True)
        if not run.reference
    ]

    on_celery = _normalised(worlds["celery"].database_url)
    reference = _normalised(worlds["in_process"].database_url)
    for table in COMPARED_TABLES:
        assert on_celery[table.name] == reference[table.name], table.name
    assert _sandbox_catalog(worlds["celery"]) == _sandbox_catalog(worlds["in_process"])

    # Not an empty comparison: every shop has items on Meta and reconciled, paid-out orders.
    assert {row[0] for row in on_celery["catalog_ledger"]} == set(SHOPS)
    reconciled = on_celery["finance_order_reconciliation"]
    assert len(reconciled) == sum(n % 3 + 1 for n in range(len(SHOPS)))
    assert on_celery["finance_payout_reconciliation"]
    with dg.DagsterInstance.get() as instance:
        worker_steps = [
            e
            for run_id in celery_run_ids
            for e in instance.all_logs(run_id)
            if "in celery worker" in (e.message or "")
        ]
    # Every step ran in a worker process: 1 per catalog run, 5 per finance run, 12 in the batch.
    assert len(worker_steps) == len(SHOPS) + 5 * len(SHOPS) + len(SHOPS) + 2
    # The batch's steps handed their values over through Postgres, not a local pickle: the
    # fan-out's 10 shops and its skipped map, 10 shop results, the batch report.
    db = MetasyncDatabase(worlds["celery"].database_url)
    with db.begin() as conn:
        exchanged = (
            conn.execute(
                select(step_outputs.c.step_key).where(step_outputs.c.run_id == celery_run_ids[-1])
            )
            .scalars()
            .all()
        )
    db.dispose()
    assert len(exchanged) == 2 * len(SHOPS) + 2


def test_celery_definitions_send_every_job_to_the_workers_with_outputs_in_the_database(
    monkeypatch,
):
    """The deployment's Definitions: the same jobs as pipelines.definitions, Celery for every job
    that does not pin its executor, the queue from the environment, the broker URL (which may
    carry a password) kept as an env reference; the production workspace loads exactly this."""
    from pipelines.definitions import defs as metasync_defs
    from pipelines.ops.scaleout import (
        BROKER_ENV,
        DatabaseIOManager,
        celery_definitions,
        celery_executor_config,
    )

    monkeypatch.setenv(QUEUE_ENV, "metasync-blue")
    monkeypatch.setenv(BROKER_ENV, "amqp://metasync:s3cret@broker.internal:5672//")
    celery_defs = celery_definitions()
    dg.Definitions.validate_loadable(celery_defs)

    plain = metasync_defs.get_repository_def()
    on_celery = celery_defs.get_repository_def()
    assert {job.name for job in plain.get_all_jobs()} <= {j.name for j in on_celery.get_all_jobs()}
    for job in plain.get_all_jobs():
        moved = on_celery.get_job(job.name)
        expected = job.executor_def.name if job.has_specified_executor else "metasync_celery"
        if job.name == "catalog_batch_job":  # in process on one host, a step per worker here
            expected = "metasync_celery"
        assert moved.executor_def.name == expected, job.name
    assert on_celery.get_job("catalog_batch_job").executor_def.name == "metasync_celery"
    assert isinstance(celery_defs.resources["io_manager"], DatabaseIOManager)

    config = celery_executor_config()
    assert config["broker"] == {"env": BROKER_ENV}
    assert "s3cret" not in repr(config)
    assert config["config_source"]["task_default_queue"] == "metasync-blue"

    workspace = yaml.safe_load((REPO_ROOT / "deploy/celery/workspace.yaml").read_text())
    [location] = workspace["load_from"]
    assert location["python_module"]["module_name"] == "pipelines.ops.scaleout"
    assert location["python_module"]["attribute"] == celery_definitions.__name__
