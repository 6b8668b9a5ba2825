"""Two runs importing the same Meta order at the same moment, each with its own OMS connection.

Both runs are held until each has looked the order up and found nothing, so both go on to insert:
the OMS's unique (shop, source, external_ref) lets one insert win and the other must read the
winner's order back instead of failing or creating a second one.
"""

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select

from pipelines.orders.mapping import draft_from_meta_order
from resources.oms import OmsAdapter
from resources.oms.schema import oms_order_lines, oms_orders
from tests.unit.orders.test_mapping_and_oms import meta_order


def _racing_adapter(url: str, barrier: threading.Barrier) -> OmsAdapter:
    """An adapter whose first lookup waits for the other run's lookup before answering."""
    adapter = OmsAdapter(url)
    real_find = adapter._find_ids
    calls = {"n": 0}

    def find_then_wait(*args, **kwargs):
        found = real_find(*args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 1:
            barrier.wait(timeout=30)  # both runs have now seen "not imported yet"
        return found

    adapter._find_ids = find_then_wait  # type: ignore[method-assign]
    return adapter


def _import_concurrently(url: str):
    OmsAdapter(url).create_schema()
    draft = draft_from_meta_order("acme", meta_order("race-1"))
    barrier = threading.Barrier(2)
    adapters = [_racing_adapter(url, barrier) for _ in range(2)]
    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            results = list(pool.map(lambda a: a.import_order(draft), adapters))
        with adapters[0].engine.begin() as conn:
            orders = conn.execute(select(func.count()).select_from(oms_orders)).scalar_one()
            lines = conn.execute(select(func.count()).select_from(oms_order_lines)).scalar_one()
    finally:
        for adapter in adapters:
            adapter.dispose()
    return results, orders, lines


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_two_concurrent_imports_of_one_order_create_it_once(backend, isolated_state, request):
    url = (
        f"sqlite:///{isolated_state / 'oms.db'}"
        if backend == "sqlite"
        else request.getfixturevalue("postgres_url")
    )
    results, orders, lines = _import_concurrently(url)

    assert sorted(r.created for r in results) == [False, True]  # one insert won, one read it
    assert results[0].order_id == results[1].order_id
    assert results[0].reference == results[1].reference
    assert (orders, lines) == (1, 3)  # one order with its three lines, no half-written loser
