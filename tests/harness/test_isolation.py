"""A shop's run can only use that shop's token, and the sandbox's admin API is off unless asked
for and reachable from this machine only."""

import inspect
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from pipelines.resources import MetasyncResource
from resources.meta.errors import GraphNotFound
from resources.meta.transport import GraphClient
from sandbox.app import create_app
from sandbox.server import SandboxServer, free_port
from tests.harness.world import World

GRAPH_METHODS = ("get", "post", "delete", "paginate")


def test_graph_for_hands_out_only_that_shops_token(world: World):
    registry = world.metasync.registry()
    for shop_id in world.shops:
        with world.metasync.graph_for(shop_id) as graph:
            assert graph.shop_id == shop_id
            assert graph.token == registry.token_for(shop_id)
    assert registry.token_for("acme") != registry.token_for("bolt")


def test_no_graph_call_takes_a_token_after_construction():
    for name in GRAPH_METHODS:
        parameters = set(inspect.signature(getattr(GraphClient, name)).parameters)
        assert not parameters & {"token", "access_token", "shop_id"}, name
    assert "token" not in inspect.signature(MetasyncResource.graph_for).parameters


@pytest.mark.parametrize("node", ["catalog", "order", "page"])
def test_a_shops_client_cannot_touch_another_shops_nodes(
    world: World, sandbox: SandboxServer, sandbox_admin, node: str
):
    world.run("catalog", "bolt")
    world.place_orders(sandbox_admin, "bolt", count=1, seed=4)
    bolt = world.metasync.registry().get("bolt")
    order_id = next(iter(sandbox.state.domains["orders"].shop_orders(sandbox.state, "bolt"))).id
    target = {"catalog": f"{bolt.catalog_id}/products", "order": order_id,
              "page": f"{bolt.cms_id}/commerce_orders"}[node]  # fmt: skip
    bolt_token = world.metasync.registry().token_for("bolt")

    with world.metasync.graph_for("acme") as acme:
        with pytest.raises(GraphNotFound) as refused:
            acme.get(target)
        assert (refused.value.code, refused.value.subcode) == (100, 33)
        # Even handed bolt's token as a parameter, the client sends its own (the header wins).
        with pytest.raises(GraphNotFound):
            acme.get(target, params={"access_token": bolt_token})
        with pytest.raises(GraphNotFound):
            acme.post(f"{bolt.catalog_id}/items_batch", {"item_type": "PRODUCT_ITEM",
                                                         "requests": []})  # fmt: skip


def test_the_admin_api_is_served_only_when_enabled():
    assert_no_admin(TestClient(create_app(admin=False)).get("/_sandbox/shops"))
    assert TestClient(create_app(admin=True)).get("/_sandbox/shops").status_code == 200


def test_the_sandbox_server_listens_on_loopback_only_with_its_admin_api_off_by_default():
    with SandboxServer() as sandbox:
        addresses = {s.getsockname()[0] for server in sandbox._server.servers
                     for s in server.sockets}  # fmt: skip
        assert addresses == {"127.0.0.1"}
        assert_no_admin(httpx.get(f"{sandbox.url}/_sandbox/shops"))


def test_metasync_sandbox_serves_no_admin_routes_unless_asked(tmp_path: Path):
    port = free_port()
    cli = Path(sys.executable).parent / "metasync"
    process = subprocess.Popen([str(cli), "sandbox", "--port", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        answer = _first_answer(f"http://127.0.0.1:{port}/_sandbox/shops", process)
        assert_no_admin(answer)
        assert listening_addresses(port) == {"127.0.0.1"}
    finally:
        _stop(process)


def test_metasync_sandbox_stops_on_sigterm_even_when_started_with_it_ignored():
    port = free_port()
    cli = Path(sys.executable).parent / "metasync"
    ignoring = lambda: signal.signal(signal.SIGTERM, signal.SIG_IGN)  # noqa: E731 - as a job runner
    process = subprocess.Popen([str(cli), "sandbox", "--port", str(port)], preexec_fn=ignoring,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        _first_answer(f"http://127.0.0.1:{port}/_sandbox/shops", process)
        process.terminate()
        assert process.wait(timeout=60) == 0
    finally:
        _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:  # never leave a server behind; the test still fails
            process.kill()
            raise


def assert_no_admin(answer: httpx.Response) -> None:
    """Without the admin API the path is just an unknown Graph node: a Graph error, no data."""
    assert answer.status_code in (400, 404)
    assert "error" in answer.json()


def _first_answer(url: str, process: subprocess.Popen) -> httpx.Response:
    deadline = time.monotonic() + 60
    while True:
        try:
            return httpx.get(url)
        except httpx.ConnectError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def listening_addresses(port: int) -> set[str]:
    """Local addresses with a listening TCP socket on `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        lines = Path(table).read_text().splitlines()[1:]
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                found.add(_address(address))
    return found


def _address(hex_address: str) -> str:
    if len(hex_address) == 8:  # IPv4, little-endian
        return ".".join(str(int(hex_address[i : i + 2], 16)) for i in (6, 4, 2, 0))
    return f"ipv6:{hex_address}"
