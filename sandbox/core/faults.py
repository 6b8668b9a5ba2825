"""Fault injection: rules that make chosen calls fail the way Meta's do, replayably (seeded).

    state.faults.add(FaultRule(kind="throttle", code=80014, shop_id="acme",
                               path_pattern="items_batch", times=2))
    state.faults.add(FaultRule(kind="http_500", probability=0.2))
    state.faults.seed(42)

Kinds: `http_500` (code 2, transient), `timeout` (the answer is delayed past the client's
timeout, then a 504), `throttle` (a throttle code plus usage headers saying when access returns),
`token_expired` (190 with `subcode`, 463 by default or None for a bare 190 "invalid OAuth access
token"; the shop's token stays invalid until rotated), `apply_then_500`
(the write is applied, then the answer is lost: the client must replay with the same key),
`malformed` (the call is applied and answered 200 with a broken body, `malform` says how:
`truncate` cuts the JSON mid-way, `wrong_types` and `drop_fields` damage the first element of
`data` - or the body itself - keeping its `id` so the damaged object can still be named).
Domain-specific faults (partial batch failures, handles ending in error, slow upload sessions)
are options of the domain backends.
"""

import copy
import json
import random
import re
from dataclasses import dataclass, field
from typing import Any

FAULT_KINDS = ("http_500", "timeout", "throttle", "token_expired", "apply_then_500", "malformed")
MALFORMS = ("truncate", "wrong_types", "drop_fields")


@dataclass
class FaultRule:
    kind: str
    shop_id: str | None = None
    method: str | None = None
    path_pattern: str | None = None  # regular expression searched in "<node kind>/<edge>"
    probability: float = 1.0
    times: int | None = None  # None: until removed
    code: int = 4  # throttle code
    subcode: int | None = 463  # token_expired: 463 expired, 460 password changed, None bare 190
    regain_minutes: float = 0.02
    delay_seconds: float = 2.0
    malform: str = "truncate"  # malformed: how the body is broken
    fired: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {', '.join(FAULT_KINDS)}")
        if self.malform not in MALFORMS:
            raise ValueError(f"unknown malform {self.malform!r}; one of {', '.join(MALFORMS)}")

    def matches(self, shop_id: str, method: str, route: str) -> bool:
        if self.times is not None and self.fired >= self.times:
            return False
        if self.shop_id and self.shop_id != shop_id:
            return False
        if self.method and self.method.upper() != method.upper():
            return False
        return not (self.path_pattern and not re.search(self.path_pattern, route))


@dataclass
class FaultInjector:
    rules: list[FaultRule] = field(default_factory=list)
    rng: random.Random = field(default_factory=lambda: random.Random(0))
    injected: dict[str, int] = field(default_factory=dict)

    def seed(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def add(self, rule: FaultRule) -> FaultRule:
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def pick(self, shop_id: str, method: str, route: str) -> FaultRule | None:
        """The first matching rule that fires for this call, counted; None for a clean call."""
        for rule in self.rules:
            if rule.matches(shop_id, method, route) and self.rng.random() < rule.probability:
                rule.fired += 1
                self.injected[rule.kind] = self.injected.get(rule.kind, 0) + 1
                return rule
        return None


def malformed_body(body: Any, malform: str) -> Any:
    """`body` broken as `malform` says: a JSON text cut mid-way (`truncate`), or the body with
    its first data element's fields given wrong types / dropped (its `id` kept)."""
    if malform == "truncate":
        text = json.dumps(body)
        return text[: max(1, len(text) // 2)]
    body = copy.deepcopy(body)
    rows = body.get("data") if isinstance(body, dict) else None
    target = rows[0] if isinstance(rows, list) and rows and isinstance(rows[0], dict) else body
    if isinstance(target, dict):
        for key in [k for k in target if k != "id"]:
            if malform == "drop_fields":
                del target[key]
            else:
                target[key] = _wrong_type(target[key])
    return body


def _wrong_type(value: Any) -> Any:
    # a number where text is expected and text where anything else is
    return 12345 if isinstance(value, str) else "not-a-" + type(value).__name__
