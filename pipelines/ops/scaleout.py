"""Running steps on several worker processes or machines with dagster-celery.

    # every worker (any host), with the same code, DAGSTER_HOME and environment:
    dagster-celery worker start -A dagster_celery.app -y deploy/celery/celery.yaml -q metasync
    # a job picks the Celery executor through its run config (or Definitions(executor=...)):
    run_config = {"execution": {"config": celery_run_config(broker, queue="metasync")}}

What steps exchange must be readable from every worker, so nothing goes through local pickles:
instance storage is Postgres (deploy/celery/dagster.yaml) and step outputs go to the metasync
database through `DatabaseIOManager` (table `step_outputs`). metasync's own steps exchange small
values only (shop ids, counts) and write their DataFrames to the metasync database explicitly.

`celery_definitions()` (module attribute `defs`, loaded by deploy/celery/workspace.yaml) is the
whole of metasync with the Celery executor and `DatabaseIOManager` bound: the same jobs, their steps
on the workers. The broker comes from METASYNC_CELERY_BROKER (read by Celery at run start, never
stored in the run's config) and the queue from METASYNC_CELERY_QUEUE (default `metasync`).

Batched catalog runs (`catalog_batch_job`): one run carries a list of shops in its config and fans
out inside the run, a step per shop; a shop's failure is recorded by its own step and the others
go on. At the 15-minute cadence this is what keeps Dagster's per-run cost from eating the machine
(docs/scaling.md); `catalog_stock_price_batch_schedule` requests one run per batch of shops.

`scaleout_probe_job` is a small job that proves a deployment: it fans out over shops, reads each
shop's catalog ledger and health from the metasync database on whichever worker picks the step,
and gathers one digest per shop; its result must equal an in-process run of the same job.
"""

import hashlib
import os
import pickle
import re
import socket
from typing import Any

import dagster as dg
from dagster_celery import celery_executor
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import delete, func, select

from pipelines.catalog.assets import CatalogSyncConfig, shop_guard
from pipelines.catalog.sync import delta_sync, stock_and_price_sync
from pipelines.ops.health import shop_health
from pipelines.resources import MetasyncResource
from pipelines.shops import runnable_shops, shop_partitions
from resources.db import MetasyncDatabase
from resources.db.catalog_tables import catalog_ledger
from resources.db.ops_tables import step_outputs
from resources.db.types import utcnow
from resources.settings import get_settings

DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_QUEUE = "metasync"
BROKER_ENV = "METASYNC_CELERY_BROKER"
QUEUE_ENV = "METASYNC_CELERY_QUEUE"


def celery_run_config(broker: str = DEFAULT_BROKER, queue: str = DEFAULT_QUEUE) -> dict[str, Any]:
    """The `execution.config` block for the Celery executor: steps go to `queue` on `broker`.

    Results come back over the broker (rpc://), so no result store is needed beside it.
    """
    return {
        "broker": broker,
        "backend": "rpc://",
        "config_source": {"task_default_queue": queue, "worker_prefetch_multiplier": 1},
    }


class DatabaseIOManager(dg.ConfigurableIOManager):
    """Step outputs as pickles in the metasync database, readable from every worker.

    Asset outputs are keyed by asset key and partition (so a later run reads the latest), op
    outputs by run, step and output name. Keep values small: DataFrames belong in domain tables.
    """

    database_url: str = ""

    def _db(self) -> MetasyncDatabase:
        db = MetasyncDatabase(self.database_url or get_settings().resolved_database_url())
        db.create_schema()
        return db

    @staticmethod
    def storage_key(context: dg.OutputContext) -> str:
        if context.has_asset_key:
            key = "asset/" + "/".join(context.asset_key.path)
            return f"{key}/{context.partition_key}" if context.has_asset_partitions else key
        parts = ["run", context.run_id, context.step_key, context.name]
        if context.mapping_key:
            parts.append(context.mapping_key)
        return "/".join(parts)

    def handle_output(self, context: dg.OutputContext, obj: Any) -> None:
        if obj is None and context.has_asset_key:
            return  # a MaterializeResult without a value: the asset wrote its own tables
        payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
        key = self.storage_key(context)
        db = self._db()
        try:
            with db.begin() as conn:
                conn.execute(delete(step_outputs).where(step_outputs.c.storage_key == key))
                conn.execute(
                    step_outputs.insert().values(
                        storage_key=key,
                        run_id=context.run_id,
                        step_key=context.step_key,
                        output_name=context.name,
                        payload=payload,
                        byte_size=len(payload),
                        stored_at=utcnow(),
                    )
                )
        finally:
            db.dispose()
        context.add_output_metadata({"stored_bytes": len(payload)})

    def load_input(self, context: dg.InputContext) -> Any:
        key = self.storage_key(context.upstream_output)
        db = self._db()
        try:
            with db.begin() as conn:
                payload = conn.execute(
                    select(step_outputs.c.payload).where(step_outputs.c.storage_key == key)
                ).scalar()
        finally:
            db.dispose()
        if payload is None:
            raise dg.Failure(f"no stored output {key!r}: did the upstream step run?")
        # Only metasync's own steps write this table, so unpickling it is trusted input.
        return pickle.loads(payload)  # noqa: S301


class ProbeConfig(dg.Config):
    shop_ids: list[str]


@dg.op(out=dg.DynamicOut(str))
def fan_out_shops(config: ProbeConfig):
    for shop_id in config.shop_ids:
        yield dg.DynamicOutput(shop_id, mapping_key=shop_id.replace("-", "_"))


@dg.op
def shop_digest(shop_id: str, metasync: MetasyncResource) -> dict[str, Any]:
    """What one shop looks like in the metasync database, computed on whichever worker runs it."""
    db = metasync.db()
    with db.begin() as conn:
        rows = conn.execute(
            select(
                catalog_ledger.c.retailer_id,
                catalog_ledger.c.content_hash,
                catalog_ledger.c.meta_status,
            )
            .where(catalog_ledger.c.shop_id == shop_id)
            .order_by(catalog_ledger.c.retailer_id)
        ).all()
        accepted = conn.execute(
            select(func.count()).where(
                catalog_ledger.c.shop_id == shop_id, catalog_ledger.c.meta_status == "ACCEPTED"
            )
        ).scalar()
    health = shop_health(db, shop_id)
    material = "\n".join(f"{r.retailer_id}\t{r.content_hash}\t{r.meta_status}" for r in rows)
    return {
        "shop_id": shop_id,
        "ledger_rows": len(rows),
        "accepted": int(accepted),
        "ledger_sha256": hashlib.sha256(material.encode()).hexdigest(),
        "token_state": health.token_state,
        "unacknowledged_orders": health.unacknowledged_orders,
        "last_finance_day": health.last_finance_day.isoformat()
        if health.last_finance_day
        else None,
        # Where it ran: not part of the result, reported to show the work was spread.
        "worker": f"{socket.gethostname()}:{os.getpid()}",
    }


@dg.op
def gather_digests(context: dg.OpExecutionContext, digests: list[dict]) -> dict[str, Any]:
    workers = sorted({digest.pop("worker") for digest in digests})
    context.log.info(f"{len(digests)} shops digested by {len(workers)} worker process(es)")
    return {"shops": sorted(digests, key=lambda d: d["shop_id"]), "workers": workers}


@dg.job(
    executor_def=celery_executor,
    resource_defs={"metasync": MetasyncResource(), "io_manager": DatabaseIOManager()},
    tags={"metasync/kind": "scaleout_probe"},
)
def scaleout_probe_job():
    """Fan out over shops on Celery workers and gather a digest per shop."""
    gather_digests(fan_out_shops().map(shop_digest).collect())


# -- batched catalog runs: many shops per run, a step per shop ---------------------------------

BATCH_CADENCES = {"stock_price": stock_and_price_sync, "delta": delta_sync}


class ScaleoutSettings(BaseSettings):
    """Batching knobs, from METASYNC_SCALEOUT_* variables."""

    model_config = SettingsConfigDict(env_prefix="METASYNC_SCALEOUT_", extra="ignore")

    #: Shops per batched run. A run costs seconds of fixed CPU (docs/scaling.md): 50 shops per run
    #: makes that cost a small share of the work; much larger batches make one slow shop hold
    #: the whole run's report back.
    batch_size: int = Field(50, gt=0)


class ShopBatchConfig(dg.Config):
    """The shops one batched run syncs, in this order, and which cadence."""

    shop_ids: list[str]
    cadence: str = "stock_price"


def mapping_keys(shop_ids: list[str]) -> list[str]:
    """Dynamic output keys (`^[A-Za-z0-9_]+$`) for shop slugs, unique even when two slugs differ
    only by `-` against `_`."""
    keys, used = [], set()
    for n, shop_id in enumerate(shop_ids):
        key = re.sub(r"[^A-Za-z0-9_]", "_", shop_id)
        if key in used:
            key = f"{key}__{n}"
        used.add(key)
        keys.append(key)
    return keys


@dg.op(out={"shops": dg.DynamicOut(dict), "skipped": dg.Out(dict)})
def fan_out_batch(
    context: dg.OpExecutionContext, config: ShopBatchConfig, metasync: MetasyncResource
):
    """One step per runnable shop of the batch; paused or unknown shops are passed on with their
    reason so the batch report names them."""
    if config.cadence not in BATCH_CADENCES:
        raise dg.Failure(
            f"unknown cadence {config.cadence!r}; choose from {', '.join(BATCH_CADENCES)}"
        )
    runnable, skipped = runnable_shops(metasync, list(dict.fromkeys(config.shop_ids)))
    if skipped:
        context.log.info(f"batch: {len(skipped)} shops not runnable: {skipped}")
    for shop_id, key in zip(runnable, mapping_keys(runnable), strict=True):
        yield dg.DynamicOutput(
            {"shop_id": shop_id, "cadence": config.cadence}, output_name="shops", mapping_key=key
        )
    yield dg.Output(skipped, output_name="skipped")


@dg.op
def sync_batch_shop(
    context: dg.OpExecutionContext,
    shop: dict,
    config: CatalogSyncConfig,
    metasync: MetasyncResource,
) -> dict[str, Any]:
    """One shop's sync inside a batch. Whatever goes wrong stays with this shop: it is recorded
    in the result (and a rejected token pauses the shop, as in the per-shop assets) and the
    batch's other shops go on."""
    shop_id, cadence = shop["shop_id"], shop["cadence"]
    try:
        with shop_guard(metasync, shop_id):
            summary = BATCH_CADENCES[cadence](metasync, shop_id, settings=config.to_settings())
    except Exception as error:  # noqa: BLE001 (isolation: the batch reports it, never drops it)
        reason = f"{type(error).__name__}: {error}"
        context.log.error(f"shop {shop_id} {cadence}: failed: {reason}")
        return {"shop_id": shop_id, "cadence": cadence, "ok": False, "error": reason[:500]}
    context.log.info(summary.line())
    return {
        "shop_id": shop_id,
        "cadence": cadence,
        "ok": True,
        "items": summary.items,
        "created": summary.created,
        "updated": summary.updated,
        "stock_price_updated": summary.volatile_updated,
        "deleted": summary.deleted,
        "rejected_by_meta": summary.rejected,
        "held_deletions": summary.held_deletions,
        "api_calls": summary.calls,
    }


@dg.op
def report_batch(
    context: dg.OpExecutionContext, results: list[dict], skipped: dict
) -> dict[str, Any]:
    """Per-shop outcome of the batch in the run's metadata; the run fails (after every shop had
    its turn) when a shop failed, so the failure alert names the shops."""
    results = sorted(results, key=lambda r: r["shop_id"])
    failed = {r["shop_id"]: r["error"] for r in results if not r["ok"]}
    totals = {
        name: sum(r.get(name, 0) for r in results)
        for name in ("items", "stock_price_updated", "created", "updated", "deleted", "api_calls")
    }
    metadata = {
        "shops_synced": len(results) - len(failed),
        "shops_failed": len(failed),
        "shops_skipped": len(skipped),
        "failed": dg.MetadataValue.json(failed),
        "skipped": dg.MetadataValue.json(skipped),
        **totals,
    }
    context.add_output_metadata(metadata)
    context.log.info(
        f"batch: {metadata['shops_synced']} shops synced, {len(failed)} failed, "
        f"{len(skipped)} skipped; {totals}"
    )
    if failed:
        raise dg.Failure(
            description=f"{len(failed)} of {len(results)} shops failed: "
            + "; ".join(f"{shop}: {why}" for shop, why in failed.items()),
            metadata={"failed": dg.MetadataValue.json(failed)},
        )
    return {"results": results, "skipped": skipped}


def make_catalog_batch_job(executor_def: dg.ExecutorDefinition | None) -> dg.JobDefinition:
    """The batched catalog job; `executor_def=None` takes the Definitions' executor (Celery in
    `celery_definitions`)."""

    @dg.job(
        name="catalog_batch_job",
        executor_def=executor_def,
        tags={"metasync/kind": "catalog_batch"},
        description="Stock/price or delta sync of a list of shops, a step per shop.",
    )
    def catalog_batch_job():
        shops, skipped = fan_out_batch()
        report_batch(shops.map(sync_batch_shop).collect(), skipped)

    return catalog_batch_job


# Light steps that wait on Meta: in-process (a process per step would cost ~13 s each).
catalog_batch_job = make_catalog_batch_job(dg.in_process_executor)


def batch_run_config(shop_ids: list[str], cadence: str = "stock_price") -> dict[str, Any]:
    return {
        "ops": {
            "fan_out_batch": {"config": {"shop_ids": shop_ids, "cadence": cadence}},
            "sync_batch_shop": {"config": {}},
        }
    }


def batch_run_requests(
    shop_ids: list[str], cadence: str, tick: str, batch_size: int
) -> list[dg.RunRequest]:
    """One RunRequest per `batch_size` shops (in the given order), keyed by tick and batch
    content so a re-evaluated tick requests nothing twice."""
    requests = []
    for start in range(0, len(shop_ids), batch_size):
        batch = shop_ids[start : start + batch_size]
        digest = hashlib.sha256(",".join(batch).encode()).hexdigest()[:16]
        requests.append(
            dg.RunRequest(
                run_key=f"{cadence}:{tick}:{digest}",
                run_config=batch_run_config(batch, cadence),
                tags={
                    "catalog/cadence": cadence,
                    "catalog/batch": f"{start // batch_size + 1}",
                    "catalog/first_shop": batch[0],
                },
            )
        )
    return requests


@dg.schedule(
    job_name="catalog_batch_job",
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.STOPPED,
)
def catalog_stock_price_batch_schedule(
    context: dg.ScheduleEvaluationContext, metasync: MetasyncResource
):
    """Every 15 minutes, stock and price for every runnable shop, one run per batch of shops.
    Replaces `catalog_stock_price_schedule` (one run per shop) past a few dozen shops: switch
    that one off when this one is on, or a shop is synced twice per tick."""
    # TODO(batch-overlap): a batch that outlives 15 minutes can overlap the next tick's batch of
    # the same shops; a run tag limit on `catalog/first_shop` (dagster.yaml) would serialise them.
    shops = sorted(context.instance.get_dynamic_partitions(shop_partitions.name))
    runnable, skipped = runnable_shops(metasync, shops)
    if not runnable:
        reasons = "; ".join(f"{shop}: {why}" for shop, why in sorted(skipped.items()))
        return dg.SkipReason(f"no runnable shop for the batched stock/price sync. {reasons}")
    if skipped:
        context.log.info(f"stock_price batches: skipped {len(skipped)} shops: {skipped}")
    tick = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
    return batch_run_requests(runnable, "stock_price", tick, ScaleoutSettings().batch_size)


batch_defs = dg.Definitions(
    jobs=[catalog_batch_job], schedules=[catalog_stock_price_batch_schedule]
)


# -- the Celery deployment's Definitions -------------------------------------------------------


def celery_executor_config() -> dict[str, Any]:
    """Executor config from the environment. The broker URL may hold a password, so it stays an
    env reference resolved when a run starts, never a value stored with the definitions."""
    config = celery_run_config(queue=os.environ.get(QUEUE_ENV, DEFAULT_QUEUE))
    if os.environ.get(BROKER_ENV):
        config["broker"] = {"env": BROKER_ENV}
    return config


def celery_definitions() -> dg.Definitions:
    """Every metasync job, schedule and sensor with steps on Celery workers and step outputs in
    the metasync database. Jobs that pin their executor (light in-process fan-outs) keep it."""
    from pipelines.definitions import build_definitions

    metasync_defs = build_definitions(batch_jobs=False)
    executor = celery_executor.configured(celery_executor_config(), name="metasync_celery")
    return dg.Definitions.merge(
        metasync_defs,
        dg.Definitions(
            jobs=[make_catalog_batch_job(None)],
            schedules=[catalog_stock_price_batch_schedule],
            executor=executor,
            resources={"io_manager": DatabaseIOManager()},
        ),
    )
