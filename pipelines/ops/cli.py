"""`metasync status`: per-shop health in the terminal (the lead mounts `status` on `main`).

    metasync status                  # a table of every shop
    metasync status --shop acme      # one shop, every figure
    metasync status --json           # machine-readable, for scripts and monitoring
    metasync status --alerts         # also list the open alerts

Exit code 0 when every shop is healthy, 1 when any shop needs re-authentication or has an open
alert, so a cron job or a load balancer health probe can use it.
"""

import json

import click

from pipelines.ops.alerts import AlertSink
from pipelines.ops.health import ShopHealth, all_shop_health
from resources.db import MetasyncDatabase
from resources.db.types import utcnow

TABLE_COLUMNS = (
    ("shop", 18),
    ("token", 12),
    ("catalog_age_h", 13),
    ("issues_error", 12),
    ("issues_warning", 14),
    ("unacked_orders", 14),
    ("oldest_unacked_min", 18),
    ("last_finance_day", 16),
    ("pending_writes", 14),
)


def render_table(records: list[dict]) -> str:
    header = " ".join(name.ljust(width) for name, width in TABLE_COLUMNS)
    lines = [header, "-" * len(header)]
    for record in records:
        cells = ("-" if record[name] is None else str(record[name]) for name, _ in TABLE_COLUMNS)
        lines.append(" ".join(c.ljust(w) for c, (_, w) in zip(cells, TABLE_COLUMNS, strict=True)))
    return "\n".join(lines)


def render_shop(record: dict, health: ShopHealth) -> str:
    lines = [f"{key:20} {'-' if value is None else value}" for key, value in record.items()]
    if health.status_reason:
        lines.insert(2, f"{'status_reason':20} {health.status_reason}")
    return "\n".join(lines)


@click.command()
@click.option("--shop", "shop_id", default=None, help="Only this shop, with every figure.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--alerts", "show_alerts", is_flag=True, help="Also list open alerts.")
def status(shop_id: str | None, as_json: bool, show_alerts: bool) -> None:
    """Per-shop health: token, catalog freshness, seller issues, orders, finance, outbox."""
    db = MetasyncDatabase.from_settings()
    db.create_schema()
    try:
        healths = all_shop_health(db, [shop_id] if shop_id else None)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    now = utcnow()
    records = [health.as_record(now) for health in healths]
    open_alerts = AlertSink(db).open_alerts(shop_id)

    if as_json:
        alerts_out = [
            {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in a.items()}
            for a in open_alerts
        ]
        click.echo(json.dumps({"shops": records, "open_alerts": alerts_out}, indent=2))
    elif not records:
        click.echo("no shops registered; add one with `metasync shops add`")
    elif shop_id:
        click.echo(render_shop(records[0], healths[0]))
    else:
        click.echo(render_table(records))
    if show_alerts and not as_json:
        click.echo(f"\n{len(open_alerts)} open alert(s)")
        for alert in open_alerts:
            click.echo(f"  [{alert['severity']}] {alert['kind']}: {alert['summary']}")

    unhealthy = any(h.needs_reauth for h in healths) or bool(open_alerts)
    raise SystemExit(1 if unhealthy else 0)
