"""Alerting sensors: run failures and per-shop SLAs.

* run_failure_alert_sensor   any failed run in any code location (one alert per run).
* catalog_staleness_sensor   no catalog write accepted by Meta for METASYNC_SLA_CATALOG_STALE_HOURS.
* order_ack_sla_sensor       an imported Meta order unacknowledged for
                             METASYNC_SLA_ORDER_ACK_MINUTES.
* finance_lag_sensor         last finance day loaded older than METASYNC_SLA_FINANCE_LAG_DAYS.
* token_state_sensor         shops paused in needs_reauth (a 190 from Meta).

The SLA sensors launch nothing: each tick raises an alert per breached shop (deduplicated by the
alerts table, so a persisting condition notifies once), resolves the alerts whose condition
cleared, and returns a SkipReason that says how many shops were checked and what was found.
The pure `*_alerts` functions decide; the sensors only load, call and record.
"""

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import dagster as dg

from pipelines.ops.alerts import CRITICAL, WARNING, Alert, AlertResource, OpsSettings, ops_settings
from pipelines.ops.health import ShopHealth, all_shop_health
from pipelines.resources import MetasyncResource
from resources.db.types import utcnow
from resources.shops import Capability, ShopStatus

RUN_FAILURE = "run_failure"
# Dagster's failure reasons (RunFailureReason) of a run whose process stopped under it.
INTERRUPTED = frozenset({"UNEXPECTED_TERMINATION", "RUN_WORKER_RESTART"})
CATALOG_STALE = "catalog_stale"
ORDER_ACK_LATE = "order_ack_late"
FINANCE_LAG = "finance_lag"
TOKEN_NEEDS_REAUTH = "token_needs_reauth"

SHOP_TAGS = ("shop", "dagster/partition/shop")  # where a run says which shop it served


def _active(health: ShopHealth) -> bool:
    return health.token_state == ShopStatus.ACTIVE


def _sells_on_meta(health: ShopHealth) -> bool:
    return str(Capability.ONSITE_ORDERS) in health.capabilities


def catalog_stale_alerts(healths: list[ShopHealth], now: datetime, hours: float) -> list[Alert]:
    """Active shops whose last accepted catalog write (or registration, if none ever) is older
    than `hours`. Paused shops are left to the token alert; they are not syncing on purpose."""
    found = []
    for health in healths:
        if not _active(health) or "catalog_ledger" in health.unavailable:
            continue
        since = health.last_accepted_catalog_write or health.registered_at
        if since is None or (now - since).total_seconds() <= hours * 3600:
            continue
        age = (now - since).total_seconds() / 3600
        what = (
            f"no catalog write accepted by Meta for {age:.1f} h"
            if health.last_accepted_catalog_write
            else f"no catalog write ever accepted, registered {age:.1f} h ago"
        )
        found.append(
            Alert(
                kind=CATALOG_STALE,
                shop_id=health.shop_id,
                severity=WARNING,
                summary=f"shop {health.shop_id}: {what} (SLA {hours:g} h)",
                detail={
                    "age_hours": round(age, 1),
                    "threshold_hours": hours,
                    "last_accepted": _iso(health.last_accepted_catalog_write),
                },
            )
        )
    return found


def order_ack_alerts(healths: list[ShopHealth], now: datetime, minutes: float) -> list[Alert]:
    """Active Meta-checkout shops whose oldest unacknowledged order waits longer than `minutes`
    (Meta cancels orders left CREATED too long)."""
    found = []
    for health in healths:
        if not (_active(health) and _sells_on_meta(health)):
            continue
        age = health.oldest_order_age_minutes(now)
        if age is None or age <= minutes:
            continue
        found.append(
            Alert(
                kind=ORDER_ACK_LATE,
                shop_id=health.shop_id,
                severity=CRITICAL,
                summary=(
                    f"shop {health.shop_id}: {health.unacknowledged_orders} order(s) "
                    f"unacknowledged, oldest {age:.0f} min (SLA {minutes:g} min)"
                ),
                detail={
                    "oldest_age_minutes": round(age, 1),
                    "threshold_minutes": minutes,
                    "unacknowledged_orders": health.unacknowledged_orders,
                    "oldest_created_at": _iso(health.oldest_unacknowledged_order),
                },
            )
        )
    return found


def finance_lag_alerts(healths: list[ShopHealth], today: date, days: int) -> list[Alert]:
    """Active Meta-checkout shops whose last finance day loaded (or registration day, if none
    ever) is more than `days` days ago."""
    found = []
    for health in healths:
        if not (_active(health) and _sells_on_meta(health)):
            continue
        if "finance_partition_loads" in health.unavailable:
            continue
        last = health.last_finance_day or (
            health.registered_at.date() if health.registered_at else None
        )
        if last is None or (today - last).days <= days:
            continue
        found.append(
            Alert(
                kind=FINANCE_LAG,
                shop_id=health.shop_id,
                severity=WARNING,
                summary=(
                    f"shop {health.shop_id}: finance loaded up to "
                    f"{health.last_finance_day or 'never'}, {(today - last).days} days behind "
                    f"(SLA {days} days)"
                ),
                detail={
                    "last_finance_day": _day(health.last_finance_day),
                    "lag_days": (today - last).days,
                    "threshold_days": days,
                },
            )
        )
    return found


def token_alerts(healths: list[ShopHealth]) -> list[Alert]:
    """Shops paused for re-authentication: nothing syncs until the token is replaced."""
    return [
        Alert(
            kind=TOKEN_NEEDS_REAUTH,
            shop_id=health.shop_id,
            severity=CRITICAL,
            summary=(
                f"shop {health.shop_id}: token needs re-authentication "
                f"({health.status_reason or 'no reason recorded'}); run "
                f"`metasync shops set-token {health.shop_id}`"
            ),
            detail={"status_reason": health.status_reason or ""},
        )
        for health in healths
        if health.needs_reauth
    ]


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def record_alerts(sink, kind: str, found: list[Alert], checked: int, ok_text: str) -> str:
    """Raise each found alert, resolve the cleared ones; the tick's one-line summary."""
    new = [alert for alert in found if sink.raise_alert(alert)]
    resolved = sink.resolve_others(kind, [alert.key for alert in found])
    if not found:
        cleared = f"; {len(resolved)} alert(s) resolved" if resolved else ""
        return f"{ok_text} ({checked} shops checked){cleared}"
    return (
        f"{len(found)} of {checked} shops breach: {len(new)} new alert(s), "
        f"{len(found) - len(new)} already open, {len(resolved)} resolved"
    )


Evaluator = Callable[[list[ShopHealth], datetime, OpsSettings], list[Alert]]


def _run_sla(
    context: dg.SensorEvaluationContext,
    metasync: MetasyncResource,
    alerts: AlertResource,
    kind: str,
    evaluate: Evaluator,
    ok_text: str,
) -> dg.SkipReason:
    db = metasync.db()
    healths = all_shop_health(db)
    found = evaluate(healths, utcnow(), ops_settings())
    message = record_alerts(alerts.sink(db), kind, found, len(healths), ok_text)
    context.log.info(message)
    return dg.SkipReason(message)


@dg.sensor(minimum_interval_seconds=900, default_status=dg.DefaultSensorStatus.RUNNING)
def catalog_staleness_sensor(
    context: dg.SensorEvaluationContext, metasync: MetasyncResource, alerts: AlertResource
):
    """Alert on shops whose catalog Meta has not accepted a write for too long."""
    settings = ops_settings()
    return _run_sla(
        context,
        metasync,
        alerts,
        CATALOG_STALE,
        lambda h, now, s: catalog_stale_alerts(h, now, s.sla_catalog_stale_hours),
        f"every active shop had a catalog write accepted in {settings.sla_catalog_stale_hours:g} h",
    )


@dg.sensor(minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING)
def order_ack_sla_sensor(
    context: dg.SensorEvaluationContext, metasync: MetasyncResource, alerts: AlertResource
):
    """Alert on shops with an imported Meta order left unacknowledged too long."""
    settings = ops_settings()
    return _run_sla(
        context,
        metasync,
        alerts,
        ORDER_ACK_LATE,
        lambda h, now, s: order_ack_alerts(h, now, s.sla_order_ack_minutes),
        f"no order unacknowledged beyond {settings.sla_order_ack_minutes:g} min",
    )


@dg.sensor(minimum_interval_seconds=3600, default_status=dg.DefaultSensorStatus.RUNNING)
def finance_lag_sensor(
    context: dg.SensorEvaluationContext, metasync: MetasyncResource, alerts: AlertResource
):
    """Alert on shops whose finance tables fall behind."""
    settings = ops_settings()
    return _run_sla(
        context,
        metasync,
        alerts,
        FINANCE_LAG,
        lambda h, now, s: finance_lag_alerts(h, now.date(), s.sla_finance_lag_days),
        f"finance loaded within {settings.sla_finance_lag_days} days for every Meta-checkout shop",
    )


@dg.sensor(minimum_interval_seconds=120, default_status=dg.DefaultSensorStatus.RUNNING)
def token_state_sensor(
    context: dg.SensorEvaluationContext, metasync: MetasyncResource, alerts: AlertResource
):
    """Alert on shops paused in needs_reauth."""
    return _run_sla(
        context,
        metasync,
        alerts,
        TOKEN_NEEDS_REAUTH,
        lambda h, now, s: token_alerts(h),
        "no shop needs re-authentication",
    )


def shop_of_run(tags: dict[str, str]) -> str | None:
    for key in SHOP_TAGS:
        if tags.get(key):
            return tags[key]
    return None


def run_failure_alert(
    job_name: str, run_id: str, tags: dict[str, str], message: str, interrupted: bool = False
) -> Alert:
    """Critical for a run that failed; a warning for one whose process stopped before it ended
    (a deploy, a stopped `dagster dev`, a lost worker): nothing in it failed, it needs a rerun."""
    shop_id = shop_of_run(tags)
    partition = tags.get("dagster/partition")
    where = f" for shop {shop_id}" if shop_id else (f" for partition {partition}" if partition
                                                     else "")  # fmt: skip
    run = f"(run {run_id[:8]})"
    if interrupted:
        summary = (
            f"{job_name}{where} was interrupted {run}: its process stopped before the run "
            "ended; rerun it, or let its schedule or sensor run it again"
        )
    else:
        summary = f"{job_name} failed{where} {run}: {message}"
    return Alert(
        kind=RUN_FAILURE,
        shop_id=shop_id,
        severity=WARNING if interrupted else CRITICAL,
        summary=summary,
        detail={
            "job": job_name,
            "run_id": run_id,
            "partition": partition or "",
            "message": message,
        },
        condition=run_id,
    )


def was_interrupted(failure_event: Any) -> bool:
    """The run's process stopped under it (Dagster's failure reason), as opposed to a failure."""
    reason = getattr(failure_event.event_specific_data, "failure_reason", None)
    return reason is not None and reason.value in INTERRUPTED


@dg.run_failure_sensor(
    monitor_all_code_locations=True,
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def run_failure_alert_sensor(
    context: dg.RunFailureSensorContext, metasync: MetasyncResource, alerts: AlertResource
):
    """One alert per failed run, naming the job, the shop and Dagster's failure message."""
    run = context.dagster_run
    message = context.failure_event.message or "no failure message"
    interrupted = was_interrupted(context.failure_event)
    alert = run_failure_alert(run.job_name, run.run_id, dict(run.tags), message, interrupted)
    alerts.sink(metasync.db()).raise_alert(alert)
    context.log.info(f"alerted: {alert.summary}")
