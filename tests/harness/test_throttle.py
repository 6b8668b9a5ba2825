"""Throttling: the client waits as long as Meta's usage headers say, and one shop's backoff does
not hold the other shops of the same app (only an app-wide code 4 does)."""

import json

import httpx
import pytest

from resources.meta.transport import AppThrottle, GraphClient, RetryPolicy


class FakeClock:
    """Time that moves only when a recorded sleep says so."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: dict[str, list[float]] = {}

    def __call__(self) -> float:
        return self.now

    def sleeper(self, shop_id: str):
        def sleep(seconds: float) -> None:
            self.sleeps.setdefault(shop_id, []).append(seconds)

        return sleep


def throttled(code: int, regain_minutes: float) -> httpx.Response:
    entry = {"type": "catalog_management", "call_count": 100, "total_time": 10,
             "total_cputime": 10, "estimated_time_to_regain_access": regain_minutes}  # fmt: skip
    usage = {"555": [entry]}
    body = {"error": {"message": "(#x) too many calls", "code": code, "is_transient": True}}
    return httpx.Response(400, json=body, headers={"x-business-use-case-usage": json.dumps(usage)})


def scripted(answers_by_shop: dict[str, list[httpx.Response]]) -> httpx.MockTransport:
    def answer(request: httpx.Request) -> httpx.Response:
        shop = request.headers["authorization"].removeprefix("Bearer token-")
        queue = answers_by_shop[shop]
        return queue.pop(0) if len(queue) > 1 else queue[0]

    return httpx.MockTransport(answer)


def client(shop_id: str, transport, throttle: AppThrottle, clock: FakeClock) -> GraphClient:
    return GraphClient(
        shop_id,
        f"token-{shop_id}",
        base_url="http://graph.test",
        transport=transport,
        retry=RetryPolicy(max_attempts=3),
        sleep=clock.sleeper(shop_id),
        throttle=throttle,
    )


@pytest.mark.parametrize("code", [17, 32, 613, 80004, 80014])
def test_a_shop_throttle_waits_the_regain_time_and_holds_only_that_shop(code: int):
    clock = FakeClock()
    throttle = AppThrottle(clock=clock)
    ok = httpx.Response(200, json={"id": "1"})
    transport = scripted({"a": [throttled(code, 3), ok], "b": [ok]})
    shop_a, shop_b = (client(s, transport, throttle, clock) for s in ("a", "b"))
    second_a = client("a", transport, throttle, clock)

    shop_a.get("1/items_batch")
    shop_b.get("2/items_batch")
    second_a.get("1/items_batch")  # another client (e.g. another op) of the throttled shop

    [waited] = clock.sleeps["a"][:1]
    assert 180 <= waited <= 198  # 3 minutes, plus at most 10% jitter
    assert "b" not in clock.sleeps, "shop b must not wait for shop a's throttle"
    # The second client of shop a learned the deadline from the shared state and waited too.
    assert len(clock.sleeps["a"]) == 2 and clock.sleeps["a"][1] == pytest.approx(180)


def test_an_app_wide_throttle_holds_every_shop_until_access_returns():
    clock = FakeClock()
    throttle = AppThrottle(clock=clock)
    ok = httpx.Response(200, json={"id": "1"})
    transport = scripted({"a": [throttled(4, 1), ok], "b": [ok]})
    shop_a, shop_b = (client(s, transport, throttle, clock) for s in ("a", "b"))

    shop_a.get("1")
    clock.now += 20  # shop b calls 20 s later: 40 s of the minute are left
    shop_b.get("2")

    assert clock.sleeps["b"] == [pytest.approx(40)]


def test_once_access_returned_nobody_waits():
    clock = FakeClock()
    throttle = AppThrottle(clock=clock)
    ok = httpx.Response(200, json={"id": "1"})
    transport = scripted({"a": [throttled(80014, 1), ok]})
    shop_a = client("a", transport, throttle, clock)
    shop_a.get("1")
    clock.now += 61
    client("a", transport, throttle, clock).get("1")
    assert len(clock.sleeps["a"]) == 1
