"""GraphClient against httpx.MockTransport: error mapping, retries, paging, auth, redaction."""

import json
import logging
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from resources.meta.errors import (
    GraphAuthError,
    GraphError,
    GraphNotFound,
    GraphPermissionError,
    GraphThrottled,
    GraphTimeout,
    GraphTransientError,
    GraphValidationError,
)
from resources.meta.transport import GraphClient, RetryPolicy, appsecret_proof

TOKEN = "EAAsecret-token-value-123"
SECRET = "app-secret-value-456"


def graph_error(code: int, subcode: int | None = None, message: str = "refused", **extra) -> dict:
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "t"}
    if subcode is not None:
        error["error_subcode"] = subcode
    return {"error": error | extra}


class Recorder:
    """A scripted Graph server: answers in order (the last one repeats), requests kept."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


def client(server: Recorder, *, attempts: int = 5, sleeps: list | None = None, **kw) -> GraphClient:
    return GraphClient(
        "acme",
        TOKEN,
        base_url="http://graph.test",
        transport=httpx.MockTransport(server),
        retry=RetryPolicy(max_attempts=attempts),
        sleep=(sleeps.append if sleeps is not None else lambda _: None),
        **kw,
    )


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (400, graph_error(4), GraphThrottled),
        (403, graph_error(4), GraphThrottled),
        (400, graph_error(17), GraphThrottled),
        (400, graph_error(32), GraphThrottled),
        (400, graph_error(613, 1996), GraphThrottled),
        (400, graph_error(80004, 2446079), GraphThrottled),
        (400, graph_error(80014), GraphThrottled),
        (400, graph_error(80009), GraphThrottled),
        (401, graph_error(190), GraphAuthError),
        (400, graph_error(190, 463), GraphAuthError),
        (400, graph_error(190, 460), GraphAuthError),
        (400, graph_error(102), GraphAuthError),
        (400, graph_error(100, 33), GraphNotFound),
        (400, graph_error(100), GraphValidationError),
        (403, graph_error(200), GraphPermissionError),
        (403, graph_error(10), GraphPermissionError),
        (500, graph_error(2), GraphTransientError),
        (503, {"nothing": "useful"}, GraphTransientError),
        (502, None, GraphTransientError),
    ],
)
def test_error_mapping(status, body, expected):
    content = json.dumps(body).encode() if body is not None else b"<html>bad gateway</html>"
    with client(Recorder(httpx.Response(status, content=content)), attempts=1) as graph:
        with pytest.raises(GraphError) as raised:
            graph.get("123/products")
    assert type(raised.value) is expected
    assert raised.value.http_status == status


def test_not_found_is_not_confused_with_other_code_100():
    with client(Recorder(httpx.Response(400, json=graph_error(100, 33))), attempts=1) as graph:
        with pytest.raises(GraphNotFound) as raised:
            graph.get("999")
    assert (raised.value.code, raised.value.subcode) == (100, 33)


def test_payload_too_large_code_1_is_not_retried():
    """Code 1 is 'unknown, retry' except when Meta asks for less data: resending cannot help."""
    body = graph_error(
        1, message="Please reduce the amount of data you're asking for, then retry your request"
    )
    server = Recorder(httpx.Response(400, json=body))
    with client(server) as graph:
        with pytest.raises(GraphValidationError):
            graph.post("123/items_batch", {"requests": []})
    assert len(server.requests) == 1


def test_transient_errors_back_off_exponentially_then_succeed():
    sleeps: list[float] = []
    server = Recorder(
        httpx.Response(500, json=graph_error(2)),
        httpx.Response(503, json=graph_error(1)),
        httpx.Response(200, json={"id": "1"}),
    )
    with client(server, sleeps=sleeps) as graph:
        assert graph.post("123/product_feeds", {"name": "x"}) == {"id": "1"}

    assert graph.calls == 3
    assert len(sleeps) == 2
    assert 0.5 <= sleeps[0] <= 0.55 and 1.0 <= sleeps[1] <= 1.1


def test_throttle_waits_as_long_as_the_business_usage_header_says():
    sleeps: list[float] = []
    usage = {"555": [{"type": "catalog_batch", "call_count": 100, "total_time": 3,
                      "total_cputime": 2, "estimated_time_to_regain_access": 2}]}  # fmt: skip
    server = Recorder(
        httpx.Response(
            400,
            json=graph_error(80014, is_transient=True),
            headers={"X-Business-Use-Case-Usage": json.dumps(usage)},
        ),
        httpx.Response(200, json={"handles": ["h"]}),
    )
    with client(server, sleeps=sleeps) as graph:
        graph.post("123/items_batch", {"requests": []})
        assert graph.usage.business_usage_pct == 0  # the last answer said nothing
    assert len(sleeps) == 1 and 120 <= sleeps[0] <= 132  # two minutes, plus jitter


def test_throttle_honours_retry_after():
    sleeps: list[float] = []
    server = Recorder(
        httpx.Response(400, json=graph_error(4), headers={"Retry-After": "7"}),
        httpx.Response(200, json={"data": []}),
    )
    with client(server, sleeps=sleeps) as graph:
        graph.get("123/products")
    assert len(sleeps) == 1 and 7 <= sleeps[0] <= 7.7


def test_throttle_without_hint_uses_the_default_delay():
    sleeps: list[float] = []
    server = Recorder(httpx.Response(400, json=graph_error(17)), httpx.Response(200, json={}))
    with client(server, sleeps=sleeps) as graph:
        graph.get("me")
    assert 60 <= sleeps[0] <= 66


def test_gives_up_after_max_attempts_with_the_last_error():
    sleeps: list[float] = []
    server = Recorder(httpx.Response(500, json=graph_error(2, message="still down")))
    with client(server, attempts=3, sleeps=sleeps) as graph:
        with pytest.raises(GraphTransientError, match="still down"):
            graph.get("123")
    assert len(server.requests) == 3 and len(sleeps) == 2


def test_client_errors_are_not_retried():
    server = Recorder(httpx.Response(400, json=graph_error(100, message="bad param")))
    with client(server) as graph:
        with pytest.raises(GraphValidationError):
            graph.get("123")
    assert len(server.requests) == 1


def test_timeouts_are_retried_and_raise_graph_timeout():
    server = Recorder(httpx.ReadTimeout("slow"))
    with client(server, attempts=2) as graph:
        with pytest.raises(GraphTimeout):
            graph.get("123")
    assert len(server.requests) == 2


def test_paging_follows_after_cursors_and_stops_without_next():
    def page(rows, after, more):
        paging = {"cursors": {"before": "b", "after": after}}
        if more:
            paging["next"] = f"http://graph.test/v25.0/1/products?after={after}&access_token=x"
        return httpx.Response(200, json={"data": rows, "paging": paging})

    server = Recorder(page([1, 2], "c1", True), page([3], "c2", True), page([4], "c3", False))
    with client(server) as graph:
        rows = list(graph.paginate("1/products", {"limit": 2}))

    assert rows == [1, 2, 3, 4]
    afters = [parse_qs(urlparse(str(r.url)).query).get("after") for r in server.requests]
    assert afters == [None, ["c1"], ["c2"]]
    assert len(server.requests) == 3  # `after` is present on the last page, but no `next`


def test_appsecret_proof_matches_the_documented_test_vector():
    assert appsecret_proof("access_token", "app_secret") == (
        "d52ddf968d622d8af8677906b7fbae09ac1f89f7cd5c1584b27544624cc23e5a"
    )
    server = Recorder(httpx.Response(200, json={}))
    with GraphClient(
        "acme",
        "access_token",
        base_url="http://graph.test",
        app_secret="app_secret",
        transport=httpx.MockTransport(server),
    ) as graph:
        graph.get("123")
    query = parse_qs(urlparse(str(server.requests[0].url)).query)
    assert query["appsecret_proof"] == [
        "d52ddf968d622d8af8677906b7fbae09ac1f89f7cd5c1584b27544624cc23e5a"
    ]


def test_token_travels_in_the_header_not_the_url():
    server = Recorder(httpx.Response(200, json={}))
    with client(server) as graph:
        graph.get("123", {"fields": "id"})
    request = server.requests[0]
    assert request.headers["authorization"] == f"Bearer {TOKEN}"
    assert TOKEN not in str(request.url)


def test_token_and_secret_never_leak_into_errors_or_logs(caplog):
    """Even when the server echoes the token (and the secret) back in its error."""
    echo = f"Invalid OAuth access token {TOKEN} (secret {SECRET})"
    server = Recorder(
        httpx.Response(
            500, json=graph_error(2, message=echo, error_user_msg=echo, error_user_title=echo)
        ),
        httpx.ConnectError(f"connection refused for {TOKEN}"),
        httpx.Response(401, json=graph_error(190, message=echo, error_user_msg=echo)),
    )
    caplog.set_level(logging.DEBUG)
    with client(server, attempts=3, app_secret=SECRET) as graph:
        with pytest.raises(GraphAuthError) as raised:
            graph.get("123")

    error = raised.value
    texts = [str(error), repr(error), json.dumps(error.raw), str(error.user_message)]
    texts += [record.getMessage() for record in caplog.records]
    assert texts and all(TOKEN not in text and SECRET not in text for text in texts)
    assert "[redacted]" in str(error)
