"""Graph routes of the Conversions API domain: thin translations onto ConversionsBackend."""

from typing import Any

from sandbox.conversions.models import conversions_backend
from sandbox.core.routing import GraphCall, graph_route


@graph_route("POST", "pixel", "events")
def receive_events(call: GraphCall) -> dict[str, Any]:
    return conversions_backend(call.state).receive(
        call.shop, call.json_param("data", required=True), call.param("test_event_code")
    )
