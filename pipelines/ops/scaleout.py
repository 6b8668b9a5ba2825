"""Running steps on several worker processes or machines with dagster-celery.

    # every worker (any host), with the same code, DAGSTER_HOME and environment:
    dagster-celery worker start -A dagster_celery.app -y deploy/celery/celery.yaml -q metasync
    # a job picks the Celery executor through its run config (or Definitions(executor=...)):
    run_config = {"execution": {"config": celery_run_config(broker, queue="metasync")}}

What steps exchange must be readable from every worker, so nothing goes through local pickles:
instance storage is Postgres (deploy/celery/dagster.yaml) and step outputs go to the metasync
database through `DatabaseIOManager` (table `step_outputs`). metasync's own steps exchange small
values only (shop ids, counts) and write their DataFrames to the metasync database explicitly.

`scaleout_probe_job` is a small job that proves a deployment: it fans out over shops, reads each
shop's catalog ledger and health from the metasync database on whichever worker picks the step,
and gathers one digest per shop; its result must equal an in-process run of the same job.
"""

import hashlib
import os
import pickle
import socket
from typing import Any

import dagster as dg
from dagster_celery import celery_executor
from sqlalchemy import delete, func, select

from pipelines.ops.health import shop_health
from pipelines.resources import MetasyncResource
from resources.db import MetasyncDatabase
from resources.db.catalog_tables import catalog_ledger
from resources.db.ops_tables import step_outputs
from resources.db.types import utcnow
from resources.settings import get_settings

DEFAULT_BROKER = "amqp://guest:guest@127.0.0.1:5672//"
DEFAULT_QUEUE = "metasync"


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
