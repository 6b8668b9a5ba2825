"""The CAPI outbox: paid orders only, once per order, sent only after success, with backoff."""

from datetime import timedelta

from pipelines.signals.outbox import enqueue_purchase, pending_count, send_pending_events
from resources.db.types import utcnow
from resources.meta.errors import GraphTransientError
from resources.shops import ShopProfile
from tests.unit.signals.test_events import _order

SHOP = ShopProfile(shop_id="acme", name="Acme", catalog_id="1", pixel_id="px", currency="EUR",
                   source_kind="x", source_location="")  # fmt: skip


class Sender:
    def __init__(self, fail: bool = False):
        self.fail, self.batches = fail, []

    def send_events(self, events, test_event_code=None):
        if self.fail:
            raise GraphTransientError("Meta is down", code=2, http_status=500)
        self.batches.append(events)


def test_events_are_queued_once_and_never_for_unpaid_orders(metasync_db):
    now = utcnow()
    assert enqueue_purchase(metasync_db, SHOP, _order(), meta_order_id="1", meta_state="CREATED",
                            event_time=now)  # fmt: skip
    enqueue_purchase(metasync_db, SHOP, _order(), meta_order_id="1", meta_state="CREATED",
                     event_time=now)  # fmt: skip
    assert enqueue_purchase(metasync_db, SHOP, _order(), meta_order_id="2",
                            meta_state="FB_PROCESSING", event_time=now) is None  # fmt: skip
    assert pending_count(metasync_db, "acme") == 1


def test_failed_batches_stay_pending_with_backoff_and_are_sent_later(metasync_db):
    now = utcnow()
    for n in range(5):
        enqueue_purchase(metasync_db, SHOP, _order(), meta_order_id=str(n), meta_state="CREATED",
                         event_time=now)  # fmt: skip
    failed = send_pending_events(metasync_db, Sender(fail=True), "acme", batch_size=2, now=now)
    assert (failed.sent, failed.failed_batches) == (0, 1)
    assert pending_count(metasync_db, "acme") == 5

    early = Sender()
    send_pending_events(metasync_db, early, "acme", batch_size=2, now=now + timedelta(seconds=1))
    # The failed batch waits out its backoff; the three events never tried go now.
    assert [len(b) for b in early.batches] == [2, 1]
    later = Sender()
    summary = send_pending_events(metasync_db, later, "acme", batch_size=2,
                                  now=now + timedelta(minutes=5))  # fmt: skip
    assert (summary.sent, pending_count(metasync_db, "acme")) == (2, 0)


def test_events_older_than_seven_days_are_set_aside_not_sent(metasync_db):
    old = utcnow() - timedelta(days=8)
    enqueue_purchase(metasync_db, SHOP, _order(), meta_order_id="1", meta_state="CREATED",
                     event_time=old)  # fmt: skip
    sender = Sender()
    summary = send_pending_events(metasync_db, sender, "acme")
    assert (summary.expired, summary.sent, sender.batches) == (1, 0, [])
