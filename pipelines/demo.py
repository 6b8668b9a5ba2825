"""The main job end to end, on the embedded default (SQLite) against the Meta sandbox.

    summary = run_demo(workdir=Path(".metasync/demo"))
    print(summary.render())

The demo owns `workdir` and starts it afresh each time: its own metasync and OMS databases, its
own Dagster instance (so `make dev` shows the demo's runs afterwards), a sandbox whose state is
saved there, and the store exports it generates. Every step runs through the same Dagster jobs
and sensors that production runs unattended.

The sandbox clock starts a week in the past so that, once it returns to the present, Meta's
payouts (three business days after a sale) have settled for days that Dagster's daily finance
partitions already cover.
"""

import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
from sqlalchemy import func, select

from pipelines.catalog.generator import mutate_catalog, write_shopify_csv, write_woocommerce_csv
from pipelines.definitions import defs
from pipelines.finance.partitions import finance_partition_key
from pipelines.orders.mapping import plan_refund
from pipelines.orders.resources import OmsResource
from pipelines.orders.sensors import new_orders_sensor, oms_changes_sensor
from pipelines.resources import MetasyncResource
from pipelines.shops import sync_shop_partitions
from resources.db.catalog_tables import catalog_rejects, catalog_snapshots
from resources.db.finance_tables import (
    finance_order_reconciliation,
    finance_payouts,
    finance_transactions,
)
from resources.db.orders_tables import order_acks, order_change_sync, order_map
from resources.oms import EventLine
from resources.onboarding import register_from_install
from resources.settings import DEMO_ENV_FILE, get_settings
from resources.shops import ShopRegistry, TokenVault
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer, free_port

logger = logging.getLogger(__name__)

DEMO_PORT = 8765
DAYS_BACK = 3
ORDERS_PER_SHOP = 4


@dataclass(frozen=True)
class DemoShop:
    shop_id: str
    name: str
    currency: str
    timezone: str
    source_kind: str
    export: Path
    generated: bool


@dataclass
class ShopReport:
    shop: DemoShop
    source_rows: int = 0
    catalog: dict[str, dict[str, Any]] = field(default_factory=dict)
    reject_reasons: dict[str, int] = field(default_factory=dict)
    exclusion_reasons: dict[str, int] = field(default_factory=dict)
    items_on_meta: int = 0
    orders_placed: int = 0
    orders_imported: int = 0
    orders_acknowledged: int = 0
    changes_synced: dict[str, int] = field(default_factory=dict)
    changes_not_synced: dict[str, int] = field(default_factory=dict)
    capi_events: int = 0
    payouts: int = 0
    transactions: int = 0
    reconciliation: dict[str, int] = field(default_factory=dict)


@dataclass
class DemoSummary:
    shops: list[ShopReport]
    seconds: float
    failures: list[str] = field(default_factory=list)
    sandbox_url: str = ""
    ui_command: str = "make dev"  # what opens the Dagster UI on this demo's state

    @property
    def ok(self) -> bool:
        return not self.failures

    def render(self) -> str:
        lines = [f"metasync demo: {len(self.shops)} shops in {self.seconds:.1f} s"]
        for report in self.shops:
            lines += _render_shop(report)
        if self.failures:
            lines += ["", "FAILED:"] + [f"  - {failure}" for failure in self.failures]
        lines += ["", f"Next: `{self.ui_command}` opens the Dagster UI on this state."]
        return "\n".join(lines)


def _render_shop(report: ShopReport) -> list[str]:
    shop, full, delta = report.shop, report.catalog.get("full", {}), report.catalog.get("delta", {})
    accounted = full.get("dagster/row_count", 0) + full.get("excluded", 0)
    accounted += full.get("rejected_in_store", 0)
    source = "generated" if shop.generated else "real export"
    lines = [
        "",
        f"== {shop.shop_id} ({shop.name}, {shop.currency}, {shop.source_kind} {source}: "
        f"{shop.export.name})",
        f"  catalog rows: {report.source_rows} read = {full.get('dagster/row_count', 0)} items "
        f"+ {full.get('excluded', 0)} excluded + {full.get('rejected_in_store', 0)} rejected"
        + ("" if accounted == report.source_rows else "  (MISMATCH)"),
        f"  full sync: {full.get('accepted', 0)} accepted by Meta, "
        f"{full.get('rejected_by_meta', 0)} rejected by Meta, {full.get('api_calls', 0)} calls",
        f"  delta: {delta.get('created', 0)} created, {delta.get('updated', 0)} updated, "
        f"{delta.get('stock_price_updated', 0)} stock/price, {delta.get('deleted', 0)} deleted, "
        f"{delta.get('unchanged', 0)} unchanged, {delta.get('api_calls', 0)} calls; "
        f"{report.items_on_meta} items live on Meta after it",
    ]
    lines += _reason_lines("  rejected", report.reject_reasons)
    lines += _reason_lines("  excluded", report.exclusion_reasons)
    lines += [
        f"  orders: {report.orders_placed} placed on Meta, {report.orders_imported} imported, "
        f"{report.orders_acknowledged} acknowledged; synced to Meta: "
        + (", ".join(f"{n} {kind}" for kind, n in sorted(report.changes_synced.items())) or "none")
        + "".join(f"; NOT synced: {n} {kind}" for kind, n in report.changes_not_synced.items()),
        f"  conversions API: {report.capi_events} Purchase events received by Meta",
        f"  finance: {report.payouts} payouts, {report.transactions} transactions; orders "
        + (
            ", ".join(f"{n} {status}" for status, n in sorted(report.reconciliation.items()))
            or "none reconciled"
        ),
    ]
    return lines


def _problems(report: ShopReport) -> list[str]:
    """What makes the demo fail: a row unaccounted for, a change that did not reach Meta."""
    full, shop_id = report.catalog.get("full", {}), report.shop.shop_id
    accounted = sum(
        full.get(key, 0) for key in ("dagster/row_count", "excluded", "rejected_in_store")
    )
    problems = []
    if accounted != report.source_rows:
        problems.append(f"{shop_id}: {report.source_rows} rows read but {accounted} accounted for")
    if report.changes_not_synced:
        problems.append(f"{shop_id}: OMS changes not synced to Meta: {report.changes_not_synced}")
    return problems


def _reason_lines(title: str, reasons: dict[str, int]) -> list[str]:
    if not reasons:
        return []
    listed = ", ".join(f"{reason} x{n}" for reason, n in sorted(reasons.items()))
    return [f"{title}: {listed}"]


# -- the run ------------------------------------------------------------------------------------


def run_demo(
    *,
    catalog_path: Path | None = None,
    workdir: Path,
    database_url: str | None = None,
    dagster_storage_url: str | None = None,
) -> DemoSummary:
    """The main job. `database_url` puts the metasync and OMS tables on another database (e.g.
    Postgres) and `dagster_storage_url` Dagster's instance storage; default: SQLite in workdir."""
    started = time.perf_counter()
    export_kind = detect_export_kind(catalog_path) if catalog_path else None  # before wiping
    workdir = _fresh_workdir(workdir)
    shops = _demo_shops(catalog_path, export_kind, workdir / "stores")
    port = DEMO_PORT if _port_free(DEMO_PORT) else free_port()
    _point_environment_at(workdir, f"http://127.0.0.1:{port}", database_url, dagster_storage_url)

    with SandboxServer(port=port, admin=True, state_file=workdir / "sandbox.pickle") as sandbox:
        admin = SandboxAdmin(sandbox.url)
        admin.advance_clock(-DAYS_BACK * 86400)
        admin.configure_finance(payout_lag_days=1)
        registry = ShopRegistry.from_settings()
        reports = [ShopReport(shop) for shop in shops]
        for report in reports:
            _onboard(admin, registry, report.shop)

        with dg.DagsterInstance.get() as instance:
            sync_shop_partitions(instance, [shop.shop_id for shop in shops])
            failures = _run_flows(instance, admin, reports)

        _collect(admin, reports)
        admin.close()
    failures += [problem for report in reports for problem in _problems(report)]
    return DemoSummary(reports, time.perf_counter() - started, failures, sandbox.url)


def _run_flows(instance, admin: SandboxAdmin, reports: list[ShopReport]) -> list[str]:
    failures: list[str] = []
    metasync, oms = MetasyncResource(), OmsResource()
    for report in reports:
        report.catalog["full"] = _run_catalog(instance, "catalog_full_job", report, failures)
    for report in reports:
        if report.shop.generated and report.shop.source_kind == "shopify_csv":
            mutate_catalog(report.shop.export, seed=7)
        report.catalog["delta"] = _run_catalog(instance, "catalog_delta_job", report, failures)

    for report in reports:
        report.orders_placed = _place_orders(admin, report.shop)
    admin.advance_clock(600)  # past FB_PROCESSING: the orders become CREATED
    _run_sensor(instance, new_orders_sensor, "ingest_orders_job", failures, metasync=metasync)
    for report in reports:
        _ship_and_refund(oms.adapter(), report.shop.shop_id)
    _run_sensor(
        instance, oms_changes_sensor, "push_order_changes_job", failures, metasync=metasync, oms=oms
    )
    _run_job(instance, "capi_purchase_events_job", failures)

    admin.advance_clock(DAYS_BACK * 86400 - 600)  # back to the present: payouts have settled
    for report in reports:
        _run_finance(instance, report.shop.shop_id, failures)
    return failures


def _run_catalog(instance, job_name: str, report: ShopReport, failures: list[str]) -> dict:
    result = _run_job(instance, job_name, failures, partition_key=report.shop.shop_id)
    if result is None:
        return {}
    metadata: dict[str, Any] = {}
    for event in result.get_asset_materialization_events():
        if event.asset_key.path[-1] in ("catalog_full_sync", "catalog_delta_sync"):
            metadata = {k: v.value for k, v in event.materialization.metadata.items()}
    return metadata


# The demo prints its own summary; Dagster's per-event log lines stay in the UI.
QUIET_LOGS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _run_job(instance, job_name: str, failures: list[str], **kwargs: Any):
    job = defs.resolve_job_def(job_name)
    result = job.execute_in_process(
        instance=instance, raise_on_error=False, run_config=QUIET_LOGS, **kwargs
    )
    if not result.success:
        failures.append(
            f"{job_name} {kwargs.get('partition_key', '')}: run failed "
            f"({result.run_id}); see `make dev`"
        )
    return result if result.success else None


def _run_sensor(instance, sensor, job_name: str, failures: list[str], **resources) -> int:
    """Evaluate a sensor once, as the daemon would, and run what it requests."""
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = sensor(context)
    if isinstance(result, dg.SensorResult):
        requests = result.run_requests or []
    elif isinstance(result, dg.SkipReason) or result is None:
        requests = []
    else:
        requests = list(result)
    job = defs.resolve_job_def(job_name)
    for request in requests:
        run = job.execute_in_process(
            run_config={**(request.run_config or {}), **QUIET_LOGS},
            instance=instance,
            tags=request.tags,
            raise_on_error=False,
        )
        if not run.success:
            failures.append(f"{job_name} {request.tags.get('shop', '')}: run failed")
    return len(requests)


def _run_finance(instance, shop_id: str, failures: list[str]) -> None:
    today = datetime.now(UTC).date()
    for offset in range(DAYS_BACK, 0, -1):
        day = (today - timedelta(days=offset)).isoformat()
        _run_job(
            instance,
            "finance_job",
            failures,
            partition_key=str(finance_partition_key(day, shop_id)),
        )


# -- the shops and their stores -------------------------------------------------------------------


def _demo_shops(catalog_path: Path | None, export_kind: str | None, stores: Path) -> list[DemoShop]:
    stores.mkdir(parents=True, exist_ok=True)
    outdoor = stores / "outdoor-shopify.csv"
    kimono = stores / "kimono-woocommerce.csv"
    write_shopify_csv(outdoor, seed=1, products=24)
    write_woocommerce_csv(kimono, seed=2, products=16, currency_digits=0)
    first = DemoShop(
        "demo-outdoor",
        "Alpen Outdoor",
        "EUR",
        "Europe/Berlin",
        "shopify_csv",
        outdoor,
        generated=True,
    )
    if catalog_path is not None:
        copy = stores / catalog_path.name
        shutil.copyfile(catalog_path, copy)
        first = DemoShop(
            "demo-real",
            f"Real export ({catalog_path.name})",
            "USD",
            "UTC",
            export_kind,
            copy,
            generated=False,
        )
    second = DemoShop(
        "demo-kimono",
        "Kyoto Kimono",
        "JPY",
        "Asia/Tokyo",
        "woocommerce_csv",
        kimono,
        generated=True,
    )
    return [first, second]


class DemoInputError(ValueError):
    """The demo cannot start with what it was given (shown to the user without a traceback)."""


def detect_export_kind(path: Path) -> str:
    """Shopify exports start with a Handle column; WooCommerce exports have ID and Type."""
    lines = path.read_bytes()[:4096].decode("utf-8-sig", errors="replace").splitlines()
    if not lines:
        raise DemoInputError(f"{path}: the file is empty; expected a product export")
    columns = {column.strip().strip('"') for column in lines[0].split(",")}
    if "Handle" in columns:
        return "shopify_csv"
    if {"ID", "Type"} <= columns:
        return "woocommerce_csv"
    raise DemoInputError(
        f"{path}: neither a Shopify nor a WooCommerce product export (header: "
        f"{sorted(columns)[:8]}...)"
    )


def _onboard(admin: SandboxAdmin, registry: ShopRegistry, shop: DemoShop) -> None:
    created = admin.create_shop(shop.shop_id, shop.name, currency=shop.currency)
    register_from_install(
        registry,
        shop_id=shop.shop_id,
        name=shop.name,
        install=created,
        token=created["access_token"],
        currency=shop.currency,
        timezone=shop.timezone,
        source_kind=shop.source_kind,
        source_location=str(shop.export),
        onsite_orders=True,
        admin_url_template=f"https://{shop.shop_id}.example/admin/products/{{product_id}}",
        storefront_url_template=f"https://{shop.shop_id}.example"
        + STOREFRONT_PATHS[shop.source_kind],
    )


# Product pages as each store builds them: WooCommerce exports carry no handle (slug), and its
# `?p=<id>` permalink works on every WooCommerce site.
STOREFRONT_PATHS = {"shopify_csv": "/products/{handle}", "woocommerce_csv": "/?p={product_id}"}


def _place_orders(admin: SandboxAdmin, shop: DemoShop) -> int:
    live = [item["retailer_id"] for item in admin.catalog_items(shop.shop_id)["items"]]
    if not live:
        return 0
    placed = admin.place_orders(
        shop.shop_id, count=ORDERS_PER_SHOP, seed=len(shop.shop_id), retailer_ids=live[:20]
    )
    return len(placed)


def _ship_and_refund(oms, shop_id: str) -> None:
    """The warehouse ships the first order in full; the second is shipped, then one unit of
    its first line comes back and is refunded."""
    orders = oms.orders_for(shop_id, source="meta")
    for order in orders[:2]:
        lines = [EventLine(line.line_id, quantity=line.quantity) for line in order.lines]
        oms.ship(order.order_id, lines, "UPS", f"1Z{shop_id[:4].upper()}{order.order_id:06d}")
    if len(orders) >= 2:
        second = oms.get_order(orders[1].order_id)
        refund = plan_refund(second, {second.lines[0].line_id: 1})
        oms.refund(second.order_id, refund, reason_code="BUYERS_REMORSE")


# -- the summary ----------------------------------------------------------------------------------


def _collect(admin: SandboxAdmin, reports: list[ShopReport]) -> None:
    db = MetasyncResource().db()
    with db.begin() as conn:
        for report in reports:
            shop_id = report.shop.shop_id
            report.source_rows = _first_snapshot_rows(conn, shop_id)
            report.reject_reasons = _reasons(conn, shop_id, "rejected")
            report.exclusion_reasons = _reasons(conn, shop_id, "excluded")
            report.orders_imported = _count(conn, order_map, shop_id)
            report.orders_acknowledged = _count(conn, order_acks, shop_id, error_code=None)
            report.changes_synced, report.changes_not_synced = _change_outcomes(conn, shop_id)
            report.payouts = _count(conn, finance_payouts, shop_id)
            report.transactions = _count(conn, finance_transactions, shop_id)
            report.reconciliation = _statuses(conn, shop_id)
    for report in reports:
        report.items_on_meta = admin.catalog_items(report.shop.shop_id)["count"]
        report.capi_events = admin.conversion_events(report.shop.shop_id)["events_received"]


def _first_snapshot_rows(conn, shop_id: str) -> int:
    query = (
        select(catalog_snapshots.c.source_rows)
        .where(catalog_snapshots.c.shop_id == shop_id)
        .order_by(catalog_snapshots.c.snapshot_id)
        .limit(1)
    )
    return conn.execute(query).scalar() or 0


def _reasons(conn, shop_id: str, kind: str) -> dict[str, int]:
    first = (
        select(func.min(catalog_snapshots.c.snapshot_id))
        .where(catalog_snapshots.c.shop_id == shop_id)
        .scalar_subquery()
    )
    rows = conn.execute(
        select(catalog_rejects.c.reason, func.count())
        .where(
            catalog_rejects.c.shop_id == shop_id,
            catalog_rejects.c.kind == kind,
            catalog_rejects.c.snapshot_id == first,
        )
        .group_by(catalog_rejects.c.reason)
    )
    return {reason: count for reason, count in rows}


def _count(conn, table, shop_id: str, **equals: Any) -> int:
    query = select(func.count()).select_from(table).where(table.c.shop_id == shop_id)
    for column, value in equals.items():
        query = query.where(
            table.c[column].is_(None) if value is None else table.c[column] == value
        )
    return conn.execute(query).scalar() or 0


def _change_outcomes(conn, shop_id: str) -> tuple[dict[str, int], dict[str, int]]:
    """OMS changes sent to Meta, and the ones that were not, as `action (status)`."""
    table = order_change_sync
    rows = conn.execute(
        select(table.c.action, table.c.status, func.count())
        .where(table.c.shop_id == shop_id)
        .group_by(table.c.action, table.c.status)
    )
    synced, not_synced = {}, {}
    for action, status, count in rows:
        if status == "synced":
            synced[action] = count
        else:
            not_synced[f"{action} ({status})"] = count
    return synced, not_synced


def _statuses(conn, shop_id: str) -> dict[str, int]:
    table = finance_order_reconciliation
    rows = conn.execute(
        select(table.c.status, func.count())
        .where(table.c.shop_id == shop_id)
        .group_by(table.c.status)
    )
    return {status: count for status, count in rows}


# -- environment ---------------------------------------------------------------------------------


DEMO_MARKER = ".metasync-demo"
DEV_PID_FILE = "dev.pid"  # `metasync dev` is serving this state (its process id)


def _fresh_workdir(workdir: Path) -> Path:
    """Wipe and recreate the demo's folder, but only a folder the demo made itself: a mistyped
    --workdir (the state dir, a home folder) must never be deleted; nor one `metasync dev` is
    serving (its Dagster processes write there)."""
    workdir = workdir.resolve()
    if (pid := dev_serving(workdir)) is not None:
        raise DemoInputError(
            f"`metasync dev` (process {pid}) is serving {workdir}; stop it (Ctrl-C) first, "
            "then run the demo again."
        )
    if workdir.exists() and any(workdir.iterdir()):
        if not _made_by_the_demo(workdir):
            raise DemoInputError(
                f"{workdir} holds files the demo did not make; refusing to wipe it. "
                "Choose a new or empty folder for --workdir."
            )
        shutil.rmtree(workdir)
    (workdir / "dagster_home").mkdir(parents=True)
    (workdir / DEMO_MARKER).write_text("made by `metasync demo`; wiped on every demo run\n")
    return workdir


# What a demo run or a command pointed at its state (METASYNC_STATE_DIR) writes there.
DEMO_FILES = frozenset(
    {DEMO_MARKER, DEMO_ENV_FILE, DEV_PID_FILE, "dagster_home", "stores", "sandbox.pickle",
     "metasync.db", "oms.db", "vault.key", "catalog_cache"}
)  # fmt: skip


@contextmanager
def serving_for_dev(workdir: Path) -> Iterator[None]:
    """Mark the demo's folder as served by `metasync dev` while the block runs."""
    marker = workdir / DEV_PID_FILE
    marker.write_text(str(os.getpid()))
    try:
        yield
    finally:
        marker.unlink(missing_ok=True)


def dev_serving(workdir: Path) -> int | None:
    """The process id of a running `metasync dev` serving this folder, if any (a marker left by
    a killed one names a process that is gone, and is ignored)."""
    try:
        pid = int((workdir / DEV_PID_FILE).read_text())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


def demo_folder() -> Path:
    """The demo's folder by default: the state folder itself when it is a demo's (as when
    METASYNC_STATE_DIR=.metasync/demo is exported), else its `demo` subfolder."""
    state_dir = get_settings().state_dir
    return state_dir if (state_dir / DEMO_ENV_FILE).is_file() else state_dir / "demo"


def _made_by_the_demo(workdir: Path) -> bool:
    return (workdir / DEMO_MARKER).is_file() or {p.name for p in workdir.iterdir()} <= DEMO_FILES


def _point_environment_at(
    workdir: Path, graph_url: str, database_url: str | None, dagster_storage_url: str | None
) -> None:
    """Every adapter reads its location from settings; point them all into the workdir."""
    values = {
        "METASYNC_STATE_DIR": str(workdir),
        "METASYNC_GRAPH_BASE_URL": graph_url,
        "DAGSTER_HOME": str(workdir / "dagster_home"),
    }
    for name in ("METASYNC_DATABASE_URL", "METASYNC_OMS_DATABASE_URL", "DAGSTER_PG_URL"):
        os.environ.pop(name, None)
    if database_url:
        # One database can hold both: every OMS table is prefixed `oms_`.
        values |= {"METASYNC_DATABASE_URL": database_url, "METASYNC_OMS_DATABASE_URL": database_url}
    repository = Path(__file__).resolve().parents[1]
    instance_config = repository / "dagster.yaml"
    if dagster_storage_url:
        values["DAGSTER_PG_URL"] = dagster_storage_url
        instance_config = repository / "deploy" / "dagster.postgres.yaml"
    os.environ.update(values)
    get_settings.cache_clear()
    shutil.copyfile(instance_config, workdir / "dagster_home" / "dagster.yaml")
    (workdir / DEMO_ENV_FILE).write_text(json.dumps(values, indent=2))
    TokenVault.from_settings()  # creates the demo's vault key now, owner-only


def _port_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


__all__ = [
    "DemoSummary", "demo_folder", "detect_export_kind", "dev_serving", "run_demo",
    "serving_for_dev",
]  # fmt: skip
