"""The sandbox's shared rules: paging, idempotency, tokens, faults, admin exposure."""

import httpx
import pytest
from fastapi.testclient import TestClient

from sandbox.app import create_app
from sandbox.core.errors import IdempotencyConflict, InvalidParameter
from sandbox.core.faults import FaultRule
from sandbox.core.paging import page
from sandbox.core.routing import graph_route
from sandbox.core.state import SandboxConfig, SandboxState


@graph_route("GET", "business", "")
def _read_business(call):
    return {"id": call.node_id, "name": call.shop.name}


@graph_route("POST", "business", "test_effects")
def _count_effect(call):
    def apply():
        effects = call.state.domains.setdefault("test_effects", [])
        effects.append(call.params.get("value"))
        return 200, {"id": str(len(effects))}

    status, body = call.state.replay_or_record(
        call.shop.shop_id, "test_effects", call.param("idempotency_key"), call.body_hash(), apply
    )
    return body


def _client(state: SandboxState, **kwargs) -> TestClient:
    return TestClient(create_app(state, **kwargs))


def test_paging_walks_every_row_once_and_stops_without_next():
    rows = list(range(7))
    seen, params = [], {"limit": 3}
    while True:
        body = page(rows, params, url="http://x/v25.0/1/things")
        seen += body["data"]
        if "next" not in body["paging"]:
            break
        params = {"limit": 3, "after": body["paging"]["cursors"]["after"]}
    assert seen == rows


def test_bad_cursor_is_a_graph_parameter_error():
    with pytest.raises(InvalidParameter):
        page([1, 2], {"after": "!!"}, url="u")


def test_same_key_same_body_replays_without_a_second_effect():
    state = SandboxState()
    shop = state.add_shop("acme", "Acme", "EUR")
    client = _client(state)
    headers = {"Authorization": f"Bearer {shop.token}"}
    url = f"/v25.0/{shop.business_id}/test_effects"

    first = client.post(url, json={"idempotency_key": "k1", "value": "a"}, headers=headers)
    again = client.post(url, json={"idempotency_key": "k1", "value": "a"}, headers=headers)

    assert first.json() == again.json() == {"id": "1"}
    assert state.domains["test_effects"] == ["a"]


def test_same_key_other_body_is_refused_with_the_configured_code():
    state = SandboxState(config=SandboxConfig(idempotency_conflict_code=2361023))
    state.add_shop("acme", "Acme", "EUR")
    state.replay_or_record("acme", "e", "k1", "hash-a", lambda: (200, {}))

    with pytest.raises(IdempotencyConflict) as raised:
        state.replay_or_record("acme", "e", "k1", "hash-b", lambda: (200, {}))
    assert raised.value.code == 2361023


def test_a_token_only_reaches_its_own_shops_nodes():
    state = SandboxState()
    acme = state.add_shop("acme", "Acme", "EUR")
    bolt = state.add_shop("bolt", "Bolt", "USD")
    client = _client(state)

    own = client.get(
        f"/v25.0/{acme.business_id}", headers={"Authorization": f"Bearer {acme.token}"}
    )
    other = client.get(
        f"/v25.0/{bolt.business_id}", headers={"Authorization": f"Bearer {acme.token}"}
    )
    bad = client.get(f"/v25.0/{acme.business_id}", params={"access_token": "nope"})

    assert own.status_code == 200 and own.json()["name"] == "Acme"
    assert other.json()["error"]["code"] == 100 and other.json()["error"]["error_subcode"] == 33
    assert bad.json()["error"]["code"] == 190


def test_appsecret_proof_is_checked_when_the_app_has_a_secret():
    state = SandboxState(
        config=SandboxConfig(app_secret="app_secret", require_appsecret_proof=True)
    )
    shop = state.add_shop("acme", "Acme", "EUR", token="access_token")
    client = _client(state)
    url = f"/v25.0/{shop.business_id}"
    # Test vector from the Meta notes: HMAC-SHA256("app_secret", "access_token").
    proof = "d52ddf968d622d8af8677906b7fbae09ac1f89f7cd5c1584b27544624cc23e5a"

    ok = client.get(url, params={"access_token": "access_token", "appsecret_proof": proof})
    missing = client.get(url, params={"access_token": "access_token"})
    wrong = client.get(url, params={"access_token": "access_token", "appsecret_proof": "0" * 64})

    assert ok.status_code == 200
    assert "appsecret_proof" in missing.json()["error"]["message"]
    assert "Invalid appsecret_proof" in wrong.json()["error"]["message"]


def test_throttle_fault_answers_with_code_and_usage_headers():
    state = SandboxState()
    shop = state.add_shop("acme", "Acme", "EUR")
    state.faults.add(FaultRule(kind="throttle", code=80014, times=1, regain_minutes=2))
    client = _client(state)
    headers = {"Authorization": f"Bearer {shop.token}"}

    throttled = client.get(f"/v25.0/{shop.business_id}", headers=headers)
    after = client.get(f"/v25.0/{shop.business_id}", headers=headers)

    assert throttled.json()["error"]["code"] == 80014
    usage = throttled.headers["x-business-use-case-usage"]
    assert '"estimated_time_to_regain_access": 2' in usage
    assert after.status_code == 200
    assert state.faults.injected == {"throttle": 1}


def test_token_expired_fault_keeps_the_token_invalid_until_rotated():
    state = SandboxState()
    shop = state.add_shop("acme", "Acme", "EUR")
    state.faults.add(FaultRule(kind="token_expired", times=1))
    client = _client(state)

    first = client.get(f"/v25.0/{shop.business_id}", params={"access_token": shop.token})
    second = client.get(f"/v25.0/{shop.business_id}", params={"access_token": shop.token})
    new_token = state.rotate_token("acme")
    third = client.get(f"/v25.0/{shop.business_id}", params={"access_token": new_token})

    assert first.json()["error"]["code"] == 190
    assert second.json()["error"]["error_subcode"] == 463
    assert third.status_code == 200


def test_apply_then_500_applies_the_effect_and_loses_the_answer():
    state = SandboxState()
    shop = state.add_shop("acme", "Acme", "EUR")
    state.faults.add(FaultRule(kind="apply_then_500", times=1, path_pattern="test_effects"))
    client = _client(state)
    url = f"/v25.0/{shop.business_id}/test_effects"
    headers = {"Authorization": f"Bearer {shop.token}"}

    lost = client.post(url, json={"idempotency_key": "k", "value": "a"}, headers=headers)
    replay = client.post(url, json={"idempotency_key": "k", "value": "a"}, headers=headers)

    assert lost.status_code == 503
    assert replay.json() == {"id": "1"}
    assert state.domains["test_effects"] == ["a"]


def test_admin_api_exists_only_when_enabled():
    closed = _client(SandboxState()).post("/_sandbox/shops", json={"shop_id": "acme", "name": "A"})
    assert closed.status_code == 400 and "Unknown path" in closed.json()["error"]["message"]
    admin = _client(SandboxState(), admin=True)
    created = admin.post("/_sandbox/shops", json={"shop_id": "acme", "name": "Acme"})
    assert created.status_code == 200 and created.json()["access_token"].startswith("EAAS")


def test_server_binds_to_loopback_only(sandbox):
    assert sandbox.url.startswith("http://127.0.0.1:")
    assert httpx.get(f"{sandbox.url}/_sandbox/shops").status_code == 200


def test_saved_state_loads_in_a_fresh_process(tmp_path):
    """A demo's sandbox survives a restart: a new interpreter (no domain imported yet) loads it."""
    import subprocess
    import sys

    state = SandboxState()
    state.add_shop("acme", "Acme", "EUR")
    from sandbox.finance.models import finance_backend

    finance_backend(state)  # unpickling starts with the finance domain, which imports orders
    state.domains.setdefault("marker", {"kept": True})
    path = tmp_path / "sandbox.pickle"
    state.save(path)

    code = (
        "from pathlib import Path; from sandbox.core.state import SandboxState; "
        f"s = SandboxState.load(Path({str(path)!r})); "
        "print(sorted(s.shops), s.domains['marker'])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "['acme'] {'kept': True}"
