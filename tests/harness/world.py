"""A small multi-shop world for the reliability harness, usable in the test process and in a
child process that gets killed: store exports, a metasync and an OMS database, the write paths,
and an audit that compares the sandbox's record with what the store and the OMS hold.

    world = World(workdir, sandbox_url)
    world.onboard(admin, ["acme", "bolt"])
    world.run("catalog", "acme")            # one write path, as the schedules run it
    problems = world.audit(sandbox.state)   # [] when every effect is on Meta exactly once
"""

import random
import shutil
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import func, inspect, select, update

from pipelines.catalog.generator import write_shopify_csv, write_woocommerce_csv
from pipelines.catalog.sync import SyncSettings, delta_sync, full_sync, read_catalog
from pipelines.finance.ingest import ingest_finance
from pipelines.offers.source import read_discounts
from pipelines.offers.sync import sync_shop_offers
from pipelines.orders.intake import orders_context, run_order_intake
from pipelines.orders.mapping import plan_refund
from pipelines.orders.sync import pending_changes, push_order_changes
from pipelines.resources import MetasyncResource
from pipelines.signals.send import run_capi_outbox
from resources.db.schema import metadata
from resources.db.signals_tables import capi_events
from resources.oms import EventLine, OmsAdapter
from resources.oms.models import OmsOrder
from resources.oms.schema import oms_cancellations, oms_orders, oms_refunds, oms_shipments
from resources.onboarding import register_from_install
from resources.shops import ShopRegistry, TokenVault
from sandbox.catalog.models import catalog_backend
from sandbox.client import SandboxAdmin
from sandbox.core.state import SandboxState
from sandbox.offers.models import offer_is_active, offers_backend
from sandbox.orders.models import orders_backend

SYNC_SETTINGS = SyncSettings(
    poll_interval_seconds=0,
    poll_timeout_seconds=30,
    product_url_template="https://shop.example/products/{handle}?p={product_id}",
    default_brand="Harness",
    max_batch_requests=4,  # small chunks: a crash can land in the middle of a batch run
    max_shrink_share=0.6,  # the mutated 8-product export swings by a few variants a round
)
STORE_WRITERS = {"shopify_csv": write_shopify_csv, "woocommerce_csv": write_woocommerce_csv}
# The write paths as the schedules and sensors run them, in the order a day runs them.
WRITE_PATHS = ("catalog", "intake", "push", "capi", "offers", "finance")
# Crashes also hit the daily replace-feed upload.
CRASH_PATHS = ("catalog", "catalog_full", "intake", "push", "capi", "offers", "finance")
DISCOUNT_HEADER = "code,type,value,currency,min_subtotal,starts_at,ends_at,coupon,title,enabled\n"
DISCOUNT_CODES = ("D0", "D1", "D2", "D3", "D4")
# Columns a rerun may legitimately write differently: when a row was loaded, an autoincrement.
VOLATILE_FINANCE_COLUMNS = {"quarantine_id"}


@dataclass
class World:
    workdir: Path
    sandbox_url: str
    products: int = 8  # mutate_catalog needs 4 products besides product-0..2
    shops: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.metasync = MetasyncResource(
            database_url=f"sqlite:///{self.workdir / 'metasync.db'}",
            graph_base_url=self.sandbox_url,
        )
        self.oms = OmsAdapter(f"sqlite:///{self.workdir / 'oms.db'}")
        self.oms.create_schema()

    def store_file(self, shop_id: str) -> Path:
        return self.workdir / f"{shop_id}.csv"

    def discounts_file(self, shop_id: str) -> Path:
        return self.workdir / f"{shop_id}-discounts.csv"

    def write_discounts(self, shop_id: str, rng: random.Random) -> None:
        """The store's discounts: fixed codes, random values, about one in five disabled."""
        rows = [
            f"{code},percent,{rng.randint(5, 40)},,,2026-01-01T00:00:00+00:00,,no,{code},"
            f"{'no' if rng.random() < 0.2 else 'yes'}\n"
            for code in DISCOUNT_CODES
        ]
        self.discounts_file(shop_id).write_text(DISCOUNT_HEADER + "".join(rows))

    # -- setup -----------------------------------------------------------------------------------

    def onboard(
        self, admin: SandboxAdmin, shop_ids: list[str], seed: int = 3, kind: str = "shopify_csv"
    ) -> None:
        registry = ShopRegistry(self.metasync.db(), TokenVault.from_settings())
        write_export = STORE_WRITERS[kind]
        for index, shop_id in enumerate(shop_ids):
            store = write_export(self.store_file(shop_id), seed=seed + index,
                                 products=self.products)  # fmt: skip
            created = admin.create_shop(shop_id, shop_id.title(), currency="EUR")
            register_from_install(
                registry, shop_id=shop_id, name=created["name"], install=created,
                token=created["access_token"], currency="EUR", timezone="UTC",
                source_kind=kind, source_location=str(store), onsite_orders=True,
                offers=True,
            )  # fmt: skip
            self.write_discounts(shop_id, random.Random(seed + index))
            self.shops.append(shop_id)

    def place_orders(self, admin: SandboxAdmin, shop_id: str, count: int, seed: int) -> int:
        live = [item["retailer_id"] for item in admin.catalog_items(shop_id)["items"]]
        if not live:
            return 0
        return len(admin.place_orders(shop_id, count=count, seed=seed, retailer_ids=live[:6]))

    def make_oms_changes(self, shop_id: str) -> int:
        """Ship every other open order, cancel or refund the rest: new OMS changes to push."""
        made = 0
        for position, order in enumerate(self.oms.orders_for(shop_id, source="meta")):
            order = self.oms.get_order(order.order_id)
            open_lines = [
                EventLine(line.line_id, quantity=line.quantity - line.qty_shipped
                          - line.qty_cancelled)
                for line in order.lines
                if line.quantity - line.qty_shipped - line.qty_cancelled > 0
            ]  # fmt: skip
            if not open_lines:
                made += self._refund_once(order)
                continue
            if position % 3 == 2:
                self.oms.cancel(order.order_id, reason_code="CUSTOMER_REQUESTED")
            else:
                self.oms.ship(order.order_id, open_lines, "UPS", f"1Z{order.order_id:08d}")
            made += 1
        return made

    def _refund_once(self, order: OmsOrder) -> int:
        """A fully shipped order (its shipments pushed already) gets one unit refunded, once."""
        shipped = [line for line in order.lines if line.qty_shipped > line.qty_refunded]
        if not shipped or self.oms.refunds_for(order.order_id):
            return 0
        planned = plan_refund(order, {shipped[0].line_id: 1})
        self.oms.refund(order.order_id, planned, reason_code="BUYERS_REMORSE")
        return 1

    # -- the write paths -------------------------------------------------------------------------

    def runner(self, path: str) -> Callable[[str], object]:
        return {
            "catalog": lambda shop: delta_sync(self.metasync, shop, settings=SYNC_SETTINGS),
            "catalog_full": lambda shop: full_sync(self.metasync, shop, settings=SYNC_SETTINGS),
            "intake": lambda shop: run_order_intake(self.metasync, self.oms, shop),
            "push": self._push,
            "capi": lambda shop: run_capi_outbox(self.metasync, shop),
            "finance": lambda shop: ingest_finance(
                self.metasync, self.oms, shop, datetime.now(UTC).date()
            ),
            "offers": lambda shop: sync_shop_offers(
                self.metasync, shop, self.discounts_file(shop)
            ),  # fmt: skip
        }[path]

    def run(self, path: str, shop_id: str) -> object:
        return self.runner(path)(shop_id)

    def _push(self, shop_id: str):
        with orders_context(self.metasync, self.oms, shop_id) as ctx:
            return push_order_changes(ctx, pending_changes(ctx))

    def let_backoffs_expire(self) -> None:
        """Time passes: events waiting out a retry backoff become due (as the next hours')."""
        with self.metasync.db().begin() as conn:
            conn.execute(
                update(capi_events)
                .where(capi_events.c.status == "pending")
                .values(next_attempt_at=None)
            )

    def finance_day(self) -> date:
        return datetime.now(UTC).date()

    def twin(self, workdir: Path) -> "World":
        """A copy of this world's databases and files: the same path run there without crashes
        gives the clean result to compare with."""
        self.metasync.db().dispose()
        self.oms.dispose()
        shutil.copytree(self.workdir, workdir)
        return World(workdir, self.sandbox_url, self.products, list(self.shops))

    def finance_tables(self) -> dict[str, list[tuple]]:
        """Every finance table's rows, sorted, without the columns a rerun may write anew."""
        db = self.metasync.db()
        tables = {}
        with db.begin() as conn:
            names = [n for n in inspect(conn).get_table_names() if n.startswith("finance_")]
            for name in names:
                table = metadata.tables[name]
                columns = [
                    c
                    for c in table.c
                    if not c.name.endswith("_at") and c.name not in VOLATILE_FINANCE_COLUMNS
                ]
                rows = conn.execute(select(*columns)).all()
                tables[name] = sorted(tuple(map(repr, row)) for row in rows)
        return tables

    # -- the audit -------------------------------------------------------------------------------

    def audit(self, state: SandboxState) -> tuple[list[str], list[str]]:
        """(duplicated effects, lost rows) comparing the sandbox's record with store and OMS."""
        duplicated, lost = [], []
        for shop_id in self.shops:
            d, missing = self._audit_shop(state, shop_id)
            duplicated += d
            lost += missing
        return duplicated, lost

    def effect_counts(self, state: SandboxState) -> Counter:
        """How many effects of each kind are on Meta: an audit over nothing proves nothing."""
        counts: Counter = Counter()
        with state.lock:
            for shop_id in self.shops:
                shop = state.shops[shop_id]
                counts["items"] += len(catalog_backend(state).catalog(shop).items)
                counts["offers"] += len(offers_backend(state).offers_of(shop))
                for order in orders_backend(state).shop_orders(state, shop_id):
                    counts["orders"] += 1
                    counts["shipments"] += len(order.shipments)
                    counts["cancellations"] += len(order.cancellations)
                    counts["refunds"] += len(order.refunds)
        counts["purchase_events"] = len(_capi_events(state))
        counts["finance_rows"] = sum(len(rows) for rows in self.finance_tables().values())
        return counts

    def _audit_shop(self, state: SandboxState, shop_id: str) -> tuple[list[str], list[str]]:
        duplicated: list[str] = []
        lost: list[str] = []
        shop = state.shops[shop_id]

        # Catalog: the live items on Meta are exactly the store's items.
        profile = self.metasync.registry().get(shop_id)
        store = set(read_catalog(profile, datetime.now(UTC), SYNC_SETTINGS).items["retailer_id"])
        with state.lock:
            stored = catalog_backend(state).catalog(shop).items.values()
            live = Counter(item.retailer_id for item in stored)
            orders = list(orders_backend(state).shop_orders(state, shop_id))
        duplicated += [f"{shop_id}: item {r} x{n} on Meta" for r, n in live.items() if n > 1]
        lost += [f"{shop_id}: item {r} missing on Meta" for r in sorted(store - set(live))]
        duplicated += [f"{shop_id}: item {r} on Meta, not in the store"
                       for r in sorted(set(live) - store)]  # fmt: skip
        with state.lock:
            feeds = len(catalog_backend(state).catalog(shop).feeds)
            offer_feeds = len(offers_backend(state).of(shop).feeds)
            offers = dict(offers_backend(state).offers_of(shop))
            now = state.now()
        if feeds > 1:
            duplicated.append(f"{shop_id}: {feeds} product feeds on Meta (one expected)")
        if offer_feeds > 1:
            duplicated.append(f"{shop_id}: {offer_feeds} offer feeds on Meta (one expected)")
        lost += self._audit_offers(shop_id, offers, now)

        # Orders: each Meta order imported once and acknowledged.
        imported = self._oms_counts(shop_id)
        for order in orders:
            n = imported.get(order.id, 0)
            if n > 1:
                duplicated.append(f"{shop_id}: order {order.id} imported {n} times")
            elif n == 0 and order.state != "FB_PROCESSING":
                lost.append(f"{shop_id}: order {order.id} ({order.state}) not imported")
            elif n == 1 and order.state == "CREATED":
                lost.append(f"{shop_id}: order {order.id} imported but not acknowledged")

        # Shipments and cancellations: each OMS event on Meta exactly once.
        by_ref = {o.id: o for o in orders}
        for ref, (ships, cancels, refunds) in self._oms_events(shop_id).items():
            order = by_ref.get(ref)
            if order is None:
                continue
            for kind, oms_n, meta_n in (
                ("shipment", ships, len(order.shipments)),
                ("cancellation", cancels, len(order.cancellations)),
                ("refund", refunds, len(order.refunds)),
            ):
                if meta_n > oms_n:
                    duplicated.append(f"{shop_id}: order {ref}: {meta_n} {kind}s on Meta, "
                                      f"{oms_n} in the OMS")  # fmt: skip
                elif meta_n < oms_n:
                    lost.append(f"{shop_id}: order {ref}: {oms_n - meta_n} {kind}(s) not on Meta")

        # Purchase events: one per imported order, each received once (Meta drops duplicates
        # with the same event_id, so a resend after a crash is harmless; a new id is not).
        events = [e for e in _capi_events(state) if e.shop_id == shop_id]
        kept = Counter(e.event.get("event_id") for e in events if not e.duplicate)
        duplicated += [
            f"{shop_id}: Purchase {event_id} counted {n} times"
            for event_id, n in kept.items()
            if n > 1
        ]
        sent_for = {e.event.get("event_id") for e in events}
        expected = self._expected_purchases(shop_id)
        lost += [f"{shop_id}: Purchase {event_id} queued, never on Meta"
                 for event_id in sorted(expected - sent_for)]  # fmt: skip
        cancelled = self._cancelled_before_ack(shop_id)
        missing = {ref for ref in imported if ref in by_ref} - self._purchase_orders(shop_id)
        lost += [
            f"{shop_id}: order {ref} has no Purchase event" for ref in sorted(missing - cancelled)
        ]
        return duplicated, lost

    def _audit_offers(self, shop_id: str, offers: dict, now: datetime) -> list[str]:
        """Each enabled store discount is an active offer on Meta; each disabled one is not."""
        if not self.discounts_file(shop_id).exists():
            return []
        discounts, _ = read_discounts(self.discounts_file(shop_id), "EUR")
        wrong = []
        for discount in discounts:
            offer = offers.get(discount.code)
            active = offer is not None and offer_is_active(offer, now)
            if active != discount.enabled:
                wrong.append(f"{shop_id}: discount {discount.code} enabled={discount.enabled}, "
                             f"offer active on Meta={active}")  # fmt: skip
            elif active and offer.data.get("percent_off") not in (None, discount.percent):
                wrong.append(
                    f"{shop_id}: offer {discount.code} has "
                    f"{offer.data.get('percent_off')}%, store {discount.percent}%"
                )
        return wrong

    def _expected_purchases(self, shop_id: str) -> set[str]:
        query = select(capi_events.c.event_id).where(capi_events.c.shop_id == shop_id)
        with self.metasync.db().begin() as conn:
            return set(conn.execute(query).scalars())

    def _purchase_orders(self, shop_id: str) -> set[str]:
        query = select(capi_events.c.meta_order_id).where(capi_events.c.shop_id == shop_id)
        with self.metasync.db().begin() as conn:
            return set(conn.execute(query).scalars())

    def _cancelled_before_ack(self, shop_id: str) -> set[str]:
        """Orders cancelled in full in the OMS: no Purchase is owed for them."""
        query = (
            select(oms_orders.c.external_ref)
            .select_from(oms_cancellations.join(
                oms_orders, oms_orders.c.order_id == oms_cancellations.c.order_id))
            .where(oms_orders.c.shop_id == shop_id, oms_cancellations.c.full_order.is_(True))
        )  # fmt: skip
        with self.oms.engine.begin() as conn:
            return set(conn.execute(query).scalars())

    def _oms_counts(self, shop_id: str) -> dict[str, int]:
        query = (
            select(oms_orders.c.external_ref, func.count())
            .where(oms_orders.c.shop_id == shop_id, oms_orders.c.source == "meta")
            .group_by(oms_orders.c.external_ref)
        )
        with self.oms.engine.begin() as conn:
            return {ref: n for ref, n in conn.execute(query)}

    def _oms_events(self, shop_id: str) -> dict[str, tuple[int, int, int]]:
        counts: dict[str, list[int]] = {}
        with self.oms.engine.begin() as conn:
            for position, table in enumerate((oms_shipments, oms_cancellations, oms_refunds)):
                query = (
                    select(oms_orders.c.external_ref, func.count())
                    .select_from(table.join(oms_orders, oms_orders.c.order_id == table.c.order_id))
                    .where(oms_orders.c.shop_id == shop_id, oms_orders.c.source == "meta")
                    .group_by(oms_orders.c.external_ref)
                )
                if "origin" in table.c:  # Meta-side events came from Meta; not ours to push
                    query = query.where(table.c.origin == "oms")
                for ref, n in conn.execute(query):
                    counts.setdefault(ref, [0, 0, 0])[position] = n
        return {ref: (a, b, c) for ref, (a, b, c) in counts.items()}


def _capi_events(state: SandboxState) -> list:
    backend = state.domains.get("conversions")
    return list(getattr(backend, "events", []))
