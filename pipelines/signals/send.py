"""Sending the Conversions API outbox for one shop or all, without or within Dagster.

summary = run_capi_outbox(metasync, "acme")       # the demo, and the op below, call this
"""

import logging

from pipelines.resources import MetasyncResource
from pipelines.shops import runnable_shops
from pipelines.signals.outbox import SendSummary, send_pending_events
from resources.meta.conversions import ConversionsApi

logger = logging.getLogger(__name__)


def run_capi_outbox(
    metasync: MetasyncResource, shop_id: str, test_event_code: str | None = None
) -> SendSummary:
    shop = metasync.registry().get(shop_id)
    if not shop.pixel_id:
        summary = SendSummary(shop_id)
        summary.errors.append("no pixel id registered: events stay queued")
        return summary
    with metasync.graph_for(shop_id) as graph:
        return send_pending_events(
            metasync.db(), ConversionsApi(graph, shop.pixel_id), shop_id,
            test_event_code=test_event_code,
        )  # fmt: skip


def capi_shops(metasync: MetasyncResource) -> tuple[list[str], dict[str, str]]:
    shop_ids = [shop.shop_id for shop in metasync.registry().list_shops()]
    return runnable_shops(metasync, shop_ids)
