"""Alerts: always written to the log and the `alerts` table, POSTed to a webhook when configured.

    sink = AlertSink(db, webhook_url="https://hooks.example/abc")   # "" -> log only
    sink.raise_alert(Alert(kind="catalog_stale", shop_id="acme", severity="warning",
                           summary="acme: no accepted catalog write for 31 h",
                           detail={"hours": 31}))   # True: new condition, notified
    sink.raise_alert(...same key...)                # False: still open, not notified again
    sink.resolve(alert_key("catalog_stale", "acme")) # condition cleared; a recurrence re-alerts

One row per open condition is what makes a sensor that re-evaluates every minute notify once.
A webhook that failed is retried on the next raise of the same open alert, so a receiver outage
delays an alert instead of losing it. The webhook URL is treated as a secret (chat webhooks carry
their credential in the path): only its host is ever logged.
"""

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import dagster as dg
import httpx
from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import select, update

from resources.db import MetasyncDatabase
from resources.db.ops_tables import alerts
from resources.db.types import utcnow
from resources.settings import get_settings

logger = logging.getLogger(__name__)

CRITICAL, WARNING = "critical", "warning"
WEBHOOK_TIMEOUT_SECONDS = 10.0

# Graph errors and URLs can echo a query string; never let a token reach a log or a webhook.
_SECRET_QUERY = re.compile(
    r"\b(access_token|appsecret_proof|client_secret|token)=[^&\s\"']+", re.IGNORECASE
)
_META_TOKEN = re.compile(r"\bEAA[A-Za-z0-9]{20,}")  # the shape of a Meta access token


class OpsSettings(BaseSettings):
    """Alert delivery and SLA thresholds, from METASYNC_* variables (or .env)."""

    model_config = SettingsConfigDict(env_prefix="METASYNC_", env_file=".env", extra="ignore")

    alert_webhook_url: SecretStr | None = Field(default=None)
    sla_catalog_stale_hours: float = Field(
        default=26.0, description="No accepted catalog write for longer: alert (daily feed + 2 h)."
    )
    sla_order_ack_minutes: float = Field(
        default=60.0, description="An imported Meta order unacknowledged for longer: alert."
    )
    sla_finance_lag_days: int = Field(
        default=4, description="Last finance day loaded older than this many days: alert."
    )


def ops_settings() -> OpsSettings:
    return OpsSettings()


def scrub(text: str) -> str:
    """The text with anything shaped like a token or secret query value masked."""
    return _META_TOKEN.sub("***", _SECRET_QUERY.sub(r"\1=***", text))


def alert_key(kind: str, shop_id: str | None, condition: str = "") -> str:
    """The identity of a condition: the same condition always gives the same key (no clock)."""
    return ":".join(part for part in (kind, shop_id or "*", condition) if part)[:200]


@dataclass(frozen=True)
class Alert:
    kind: str
    shop_id: str | None
    severity: str
    summary: str
    detail: dict[str, Any] = field(default_factory=dict)
    condition: str = ""  # extra discriminator, e.g. a run id

    @property
    def key(self) -> str:
        return alert_key(self.kind, self.shop_id, self.condition)

    def payload(self, raised_at: datetime) -> dict[str, Any]:
        return {
            "source": "metasync",
            "key": self.key,
            "kind": self.kind,
            "shop_id": self.shop_id,
            "severity": self.severity,
            "summary": scrub(self.summary),
            "detail": {k: scrub(v) if isinstance(v, str) else v for k, v in self.detail.items()},
            "raised_at": raised_at.isoformat(),
        }


class AlertSink:
    """Records, logs and delivers alerts; plain class, usable without Dagster."""

    def __init__(
        self,
        db: MetasyncDatabase,
        webhook_url: str = "",
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._db = db
        self._webhook_url = webhook_url
        self._transport = transport

    @property
    def webhook_host(self) -> str:
        return urlsplit(self._webhook_url).netloc if self._webhook_url else ""

    def raise_alert(self, alert: Alert) -> bool:
        """Log and record `alert`; notify unless it is already open. True when it is new."""
        now = utcnow()
        row = self._open_row(alert.key)
        if row is not None:
            self._touch(row.id, now)
            if row.webhook_status == "failed":
                self._deliver(row.id, alert, row.raised_at)
            return False

        logger.log(
            logging.ERROR if alert.severity == CRITICAL else logging.WARNING,
            "ALERT %s [%s] %s",
            alert.kind,
            alert.severity,
            scrub(alert.summary),
        )
        alert_id = self._insert(alert, now)
        self._deliver(alert_id, alert, now)
        return True

    def resolve(self, key: str) -> bool:
        """Close the open alert with this key; True when one was open."""
        with self._db.begin() as conn:
            result = conn.execute(
                update(alerts)
                .where(alerts.c.alert_key == key, alerts.c.resolved_at.is_(None))
                .values(resolved_at=utcnow())
            )
        if result.rowcount:
            logger.info("alert %s resolved", key)
        return bool(result.rowcount)

    def resolve_others(self, kind: str, still_open: Iterable[str]) -> list[str]:
        """Resolve every open alert of `kind` whose key is not in `still_open`."""
        keep = set(still_open)
        resolved = [key for key in self.open_keys(kind) if key not in keep]
        for key in resolved:
            self.resolve(key)
        return resolved

    def open_keys(self, kind: str | None = None) -> list[str]:
        query = select(alerts.c.alert_key).where(alerts.c.resolved_at.is_(None))
        if kind is not None:
            query = query.where(alerts.c.kind == kind)
        with self._db.begin() as conn:
            return [row.alert_key for row in conn.execute(query.order_by(alerts.c.id))]

    def open_alerts(self, shop_id: str | None = None) -> list[dict[str, Any]]:
        query = select(alerts).where(alerts.c.resolved_at.is_(None)).order_by(alerts.c.id)
        if shop_id is not None:
            query = query.where(alerts.c.shop_id == shop_id)
        with self._db.begin() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def _open_row(self, key: str):
        with self._db.begin() as conn:
            return conn.execute(
                select(alerts).where(alerts.c.alert_key == key, alerts.c.resolved_at.is_(None))
            ).first()

    def _touch(self, alert_id: int, now: datetime) -> None:
        with self._db.begin() as conn:
            conn.execute(update(alerts).where(alerts.c.id == alert_id).values(last_seen_at=now))

    def _insert(self, alert: Alert, now: datetime) -> int:
        payload = alert.payload(now)
        with self._db.begin() as conn:
            result = conn.execute(
                alerts.insert().values(
                    alert_key=alert.key,
                    kind=alert.kind,
                    shop_id=alert.shop_id,
                    severity=alert.severity,
                    summary=payload["summary"],
                    detail=payload["detail"],
                    raised_at=now,
                    last_seen_at=now,
                    webhook_status="not_configured" if not self._webhook_url else "failed",
                )
            )
            return int(result.inserted_primary_key[0])

    def _deliver(self, alert_id: int, alert: Alert, raised_at: datetime) -> None:
        if not self._webhook_url:
            return
        status, error = "delivered", None
        try:
            with httpx.Client(timeout=WEBHOOK_TIMEOUT_SECONDS, transport=self._transport) as http:
                response = http.post(self._webhook_url, json=alert.payload(raised_at))
                response.raise_for_status()
        except httpx.HTTPError as exc:
            # The URL may hold a credential; report the host and the error class only.
            status = "failed"
            error = f"{type(exc).__name__} posting to {self.webhook_host}"
            if isinstance(exc, httpx.HTTPStatusError):
                error += f": HTTP {exc.response.status_code}"
            logger.error(
                "alert %s: webhook delivery failed (%s); retried next tick", alert.key, error
            )
        with self._db.begin() as conn:
            conn.execute(
                update(alerts)
                .where(alerts.c.id == alert_id)
                .values(webhook_status=status, webhook_error=error)
            )


class AlertResource(dg.ConfigurableResource):
    """The alert sink for sensors and assets.

    Bind as ``AlertResource()`` to read METASYNC_ALERT_WEBHOOK_URL (and .env) when a tick or run
    starts, or pass ``webhook_url=dg.EnvVar("...")`` explicitly. Empty: alerts go to the log and
    the alerts table only.
    """

    webhook_url: str = ""
    database_url: str = ""

    def sink(self, db: MetasyncDatabase | None = None) -> AlertSink:
        if db is None:
            db = MetasyncDatabase(self.database_url or get_settings().resolved_database_url())
            db.create_schema()
        return AlertSink(db, self.resolved_webhook_url())

    def resolved_webhook_url(self) -> str:
        if self.webhook_url:
            return self.webhook_url
        configured = ops_settings().alert_webhook_url
        return configured.get_secret_value() if configured else ""
