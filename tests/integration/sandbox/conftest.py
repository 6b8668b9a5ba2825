"""Fixtures shared by the sandbox's API tests."""

import pytest

from resources.meta.transport import GraphClient, RetryPolicy


@pytest.fixture
def usd_shop(onboard, registry, sandbox):
    """Shop "acme" onboarded in USD, with a Graph client that does not retry: (profile, graph)."""
    profile = onboard("acme", currency="USD")
    graph = GraphClient(
        shop_id="acme",
        token=registry.token_for("acme"),
        base_url=sandbox.url,
        retry=RetryPolicy(max_attempts=1),
    )
    yield profile, graph
    graph.close()
