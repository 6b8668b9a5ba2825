"""Scale benchmark: 1,000 registered shops on one machine.

    python -m benchmarks scale

Measures, against the local sandbox (never Meta) and a SQLite metasync database:
1. one tick of every sensor and schedule of every domain, with 1,000 shops registered;
2. the fixed cost of one shop-run (a run whose step does nothing), in-process and with the
   multiprocess executor the deployment uses (a process per step), plus a cold Python process
   importing the code location (what the default run launcher pays per run);
3. the batched catalog job (`pipelines.ops.scaleout.catalog_batch_job`, a step per shop inside one
   run): its fixed cost per shop-step, and a real stock/price batch of BATCH_SIZE shops with small
   store exports against the sandbox;
4. from (2) and (3), how many shops one 2-core machine sustains at the 15-minute cadence, one run
   per shop per tick, against one run per batch of shops.

Prints figures; returns 0 when the 15-minute cadence fits 1,000 shops on this machine when shops
are batched (the deployment the scaling plan recommends), 1 otherwise.
"""

import importlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from cryptography.fernet import Fernet

SHOPS = 1000
CADENCE_SECONDS = 15 * 60
CORES = 2
UTILISATION = 0.7  # headroom for the daemon, webserver, database and the runs' own work
RUN_SAMPLES = 5
BATCH_SIZE = 50  # shops per run when batched (dagster-notes §1.3)
REPO_ROOT = str(Path(__file__).resolve().parents[1])
DOMAINS = ("catalog", "orders", "finance", "signals", "ops")


def _setup_environment(workdir: Path) -> None:
    os.environ["METASYNC_STATE_DIR"] = str(workdir / "state")
    os.environ["METASYNC_VAULT_KEY"] = Fernet.generate_key().decode()
    os.environ.pop("METASYNC_DATABASE_URL", None)
    # The working directory stays the repository: step subprocesses import the job from it.
    from resources.settings import get_settings

    get_settings.cache_clear()


def _register_shops(sandbox_url: str) -> float:
    from resources.onboarding import register_from_install
    from resources.shops import ShopRegistry
    from sandbox.client import SandboxAdmin

    os.environ["METASYNC_GRAPH_BASE_URL"] = sandbox_url
    registry = ShopRegistry.from_settings()
    admin = SandboxAdmin(sandbox_url)
    started = time.perf_counter()
    for n in range(SHOPS):
        shop_id = f"shop-{n:04d}"
        created = admin.create_shop(shop_id, shop_id, currency="EUR", onsite_orders=n % 2 == 0)
        register_from_install(
            registry,
            shop_id=shop_id,
            name=shop_id,
            install=created,
            token=created["access_token"],
            currency="EUR",
            timezone="UTC",
            source_kind="shopify_csv",
            source_location=os.path.join(os.environ["METASYNC_STATE_DIR"], "missing.csv"),
            onsite_orders=n % 2 == 0,
            offers=False,
        )
    admin.close()
    return time.perf_counter() - started


def _domain_defs() -> tuple[dg.Definitions, list[str]]:
    from pipelines.ops.alerts import AlertResource
    from pipelines.ops.scaleout import batch_defs
    from pipelines.orders.resources import OmsResource
    from pipelines.resources import MetasyncResource
    from pipelines.shops import shop_registry_sensor

    parts, missing = [dg.Definitions(sensors=[shop_registry_sensor]), batch_defs], []
    for domain in DOMAINS:
        try:
            parts.append(importlib.import_module(f"pipelines.{domain}.definitions").defs)
        except ImportError as exc:
            missing.append(f"{domain} ({exc})")
    resources = {"metasync": MetasyncResource(), "alerts": AlertResource(), "oms": OmsResource()}
    return dg.Definitions.merge(*parts, dg.Definitions(resources=resources)), missing


def _tick_all(defs: dg.Definitions, instance: dg.DagsterInstance) -> list[tuple[str, float, str]]:
    resources = dict(defs.resources or {})
    repository = defs.get_repository_def()  # partitioned RunRequests are checked against it
    rows = []
    when = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    for sensor in defs.sensors or []:
        if isinstance(sensor, dg.RunStatusSensorDefinition):
            continue  # fires per failed run, not per tick over shops
        started = time.perf_counter()
        try:
            with dg.build_sensor_context(instance=instance, resources=resources) as context:
                result = sensor(context)
            outcome = _describe(result)
        except Exception as exc:  # a broken tick is a figure to report, not a crash
            outcome = f"error: {type(exc).__name__}: {str(exc)[:80]}"
        rows.append((f"sensor {sensor.name}", time.perf_counter() - started, outcome))
    for schedule in defs.schedules or []:
        started = time.perf_counter()
        try:
            with dg.build_schedule_context(
                instance=instance,
                scheduled_execution_time=when,
                resources=resources,
                repository_def=repository,
            ) as context:
                if _is_decorated(schedule):
                    result = schedule(context)
                else:
                    resolved = defs.resolve_schedule_def(schedule.name)
                    result = resolved.evaluate_tick(context).run_requests
            outcome = _describe(result)
        except Exception as exc:
            outcome = f"error: {type(exc).__name__}: {str(exc)[:80]}"
        rows.append((f"schedule {schedule.name}", time.perf_counter() - started, outcome))
    return rows


def _is_decorated(schedule) -> bool:
    """A @schedule function (called directly) rather than a cron-only or partitioned schedule."""
    return type(schedule).__name__ == "DecoratedScheduleDefinition"


def _describe(result) -> str:
    if result is None:
        return "nothing"
    if isinstance(result, dg.SkipReason):
        return f"skip: {(result.skip_message or '')[:70]}"
    requests = getattr(result, "run_requests", None)
    if requests is None and isinstance(result, list):
        requests = result
    return f"{len(requests or [])} run requests"


@dg.asset(partitions_def=dg.DynamicPartitionsDefinition(name="shops"))
def bench_noop_shop_asset(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"shop": context.partition_key})


bench_noop_job = dg.define_asset_job("bench_noop_job", selection=[bench_noop_shop_asset])
bench_defs = dg.Definitions(assets=[bench_noop_shop_asset], jobs=[bench_noop_job])


def _bench_job() -> dg.JobDefinition:
    return bench_defs.resolve_job_def("bench_noop_job")


def _run_overhead(instance: dg.DagsterInstance) -> dict[str, float]:
    job = _bench_job()
    in_process, multiprocess = [], []
    for n in range(RUN_SAMPLES):
        started = time.perf_counter()
        assert job.execute_in_process(instance=instance, partition_key=f"shop-{n:04d}").success
        in_process.append(time.perf_counter() - started)
    recon = dg.reconstructable(_bench_job)
    for n in range(RUN_SAMPLES):
        started = time.perf_counter()
        with dg.execute_job(
            recon, instance=instance, tags={"dagster/partition": f"shop-{n:04d}"}
        ) as result:
            assert result.success
        multiprocess.append(time.perf_counter() - started)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", "import pipelines.ops.definitions, pipelines.catalog.definitions"],
        check=True,
        cwd=REPO_ROOT,
    )
    cold_import = time.perf_counter() - started
    return {
        "in_process": statistics.median(in_process),
        "multiprocess": statistics.median(multiprocess),
        "cold_process": cold_import,
    }


@dg.op(out=dg.DynamicOut(str))
def bench_fan_out():
    for n in range(BATCH_SIZE):
        yield dg.DynamicOutput(f"shop-{n:04d}", mapping_key=f"shop_{n:04d}")


@dg.op
def bench_noop_shop(shop_id: str) -> str:
    return shop_id


@dg.op
def bench_gather(shop_ids: list[str]) -> int:
    return len(shop_ids)


@dg.job(executor_def=dg.in_process_executor)
def bench_noop_batch_job():
    bench_gather(bench_fan_out().map(bench_noop_shop).collect())


def _batch_overhead(instance: dg.DagsterInstance) -> float:
    """Wall seconds of a batched run (in-process executor) whose BATCH_SIZE shop-steps do
    nothing: the run's fixed cost plus Dagster's cost per step."""
    samples = []
    for _ in range(3):
        started = time.perf_counter()
        assert bench_noop_batch_job.execute_in_process(instance=instance).success
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def _real_batch(instance: dg.DagsterInstance, workdir: Path) -> dict[str, float]:
    """A real stock/price batch: BATCH_SIZE shops with 20-product store exports, first a delta
    batch (the items reach Meta), then the 15-minute stock/price batch that is timed."""
    from sqlalchemy import update

    from pipelines.catalog.generator import write_shopify_csv
    from pipelines.ops.scaleout import batch_run_config, catalog_batch_job
    from pipelines.resources import MetasyncResource
    from resources.db.schema import shops as shops_table

    metasync = MetasyncResource()
    batch = [f"shop-{n:04d}" for n in range(BATCH_SIZE)]
    with metasync.db().begin() as conn:
        for n, shop_id in enumerate(batch):
            store = write_shopify_csv(workdir / f"{shop_id}.csv", seed=n, products=20)
            conn.execute(
                update(shops_table)
                .where(shops_table.c.shop_id == shop_id)
                .values(source_location=str(store))
            )
    timings = {}
    for cadence in ("delta", "stock_price"):
        config = batch_run_config(batch, cadence)
        config["ops"]["sync_batch_shop"]["config"] = {
            "poll_interval_seconds": 0.0,
            "product_url_template": "https://shop.example/products/{handle}",
        }
        started = time.perf_counter()
        result = catalog_batch_job.execute_in_process(
            run_config=config,
            instance=instance,
            resources={"metasync": metasync},
            raise_on_error=False,
        )
        timings[cadence] = time.perf_counter() - started
        if not result.success:
            print(f"  {cadence} batch FAILED: see the run's report_batch step")
    return timings


def _capacity(per_run_seconds: float) -> int:
    return int(CADENCE_SECONDS * CORES * UTILISATION / per_run_seconds)


def main() -> int:
    from sandbox.server import SandboxServer

    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="scale_bench_")))
        _setup_environment(workdir)
        sandbox = stack.enter_context(SandboxServer(admin=True))
        registering = _register_shops(sandbox.url)
        print(f"registered {SHOPS} shops (sandbox + registry) in {registering:.1f} s")

        defs, missing = _domain_defs()
        if missing:
            print(f"domains not loadable, left out: {'; '.join(missing)}")
        instance = stack.enter_context(dg.instance_for_test())
        instance.add_dynamic_partitions("shops", [f"shop-{n:04d}" for n in range(SHOPS)])

        print(f"\none tick with {SHOPS} shops registered:")
        for name, seconds, outcome in _tick_all(defs, instance):
            print(f"  {name:45} {seconds:7.2f} s  {outcome}")

        overhead = _run_overhead(instance)
        batch_noop = _batch_overhead(instance)
        real = _real_batch(instance, workdir)
    per_run = overhead["multiprocess"] + overhead["cold_process"]
    # A batched run (in-process executor) pays a cold process once plus the timed run itself.
    per_batch = overhead["cold_process"] + real["stock_price"]
    one_run_per_shop = _capacity(per_run)
    # Batched: one cold process per BATCH_SIZE shops, the batch's own run and step cost, and the
    # measured stock/price work of those shops (20-product stores against the sandbox).
    batched = _capacity(per_batch / BATCH_SIZE)
    print(f"\nfixed cost of one shop-run (a step that does nothing), median of {RUN_SAMPLES}:")
    print(f"  in-process executor                 {overhead['in_process']:6.2f} s")
    print(f"  multiprocess executor (per step)    {overhead['multiprocess']:6.2f} s")
    print(f"  cold process importing the code     {overhead['cold_process']:6.2f} s")
    print(f"  per launched run (sum of the two)   {per_run:6.2f} s")
    print(f"\nbatched catalog job, {BATCH_SIZE} shops per run (in-process executor):")
    print(
        f"  run with {BATCH_SIZE} no-op shop steps        {batch_noop:6.2f} s "
        f"({batch_noop / BATCH_SIZE:.3f} s per shop-step)"
    )
    print(f"  delta batch (first sync, 20 products) {real['delta']:6.2f} s")
    print(
        f"  stock/price batch (steady state)      {real['stock_price']:6.2f} s "
        f"({real['stock_price'] / BATCH_SIZE:.3f} s per shop)"
    )
    print(f"  per batch incl. a cold process       {per_batch:6.2f} s")
    print(
        f"\n15-minute cadence on {CORES} cores at {UTILISATION:.0%} utilisation "
        f"({CADENCE_SECONDS * CORES * UTILISATION:.0f} core-seconds per tick):"
    )
    print(f"  one run per shop (fixed cost only): {one_run_per_shop:6d} shops")
    print(f"  one run per {BATCH_SIZE} shops (with the work):  {batched:6d} shops")
    return 0 if batched >= SHOPS else 1


if __name__ == "__main__":
    sys.exit(main())
