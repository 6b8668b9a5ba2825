"""What to do when Meta refuses an order write: one table keyed by Meta's error codes.

    decision = decide(error)          # a GraphError from the transport
    decision.outcome                  # Outcome.RETRY, GIVE_UP, ISSUE, ALREADY_DONE, ...

Meta's order error codes (orders.md §15) arrive in `error.code` per Meta's own plugin, but the
docs do not say whether they could come in `error_subcode`; both are looked up. Decisions never
look at message text: Meta rewords messages, codes are the contract.
"""

from dataclasses import dataclass
from enum import StrEnum

from resources.meta.errors import (
    GraphAuthError,
    GraphError,
    GraphPermissionError,
    GraphTransientError,
)


class Outcome(StrEnum):
    RETRY = "retry"  # try again later with the same idempotency key
    SERIALISE = "serialise"  # another write on this order is in flight: retry, one at a time
    ALREADY_DONE = "already_done"  # Meta is already where we wanted it: mark synced
    REFUND_INSTEAD = "refund_instead"  # the units shipped: a cancel becomes a seller issue
    ISSUE = "issue"  # a person must look: record an order issue, stop retrying
    GIVE_UP = "give_up"  # the request is wrong and will stay wrong: record and stop
    PAUSE_SHOP = "pause_shop"  # the token is bad: every write of the shop would fail


@dataclass(frozen=True)
class Decision:
    outcome: Outcome
    why: str


# Meta's Commerce error codes (orders.md §15) -> what we do.
ORDER_ERROR_TABLE: dict[int, Decision] = {
    2361081: Decision(Outcome.RETRY, "pending action on the order; Meta asks to retry"),
    2361076: Decision(Outcome.RETRY, "payment not captured yet; refund possible in minutes"),
    2361050: Decision(Outcome.SERIALISE, "concurrent modification of the order"),
    1818048: Decision(Outcome.ALREADY_DONE, "the order is already cancelled"),
    1818049: Decision(Outcome.ALREADY_DONE, "the order is already cancelled"),
    1818214: Decision(Outcome.ISSUE, "the order is already fulfilled, cancelled or refunded"),
    1818215: Decision(Outcome.ISSUE, "the items are already fulfilled, cancelled or refunded"),
    1818050: Decision(Outcome.REFUND_INSTEAD, "already shipped: refund instead of cancelling"),
    1818015: Decision(Outcome.REFUND_INSTEAD, "already captured: refund instead of cancelling"),
    1818111: Decision(Outcome.ISSUE, "a cancelled order cannot be shipped"),
    1818105: Decision(Outcome.ISSUE, "a cancelled order cannot be refunded"),
    1818107: Decision(Outcome.ISSUE, "nothing was charged, nothing to refund"),
    2382045: Decision(Outcome.ISSUE, "the tracking number is already used on this order"),
    2361357: Decision(Outcome.GIVE_UP, "a shipment must contain at least one item"),
    2382322: Decision(Outcome.GIVE_UP, "a shipment must contain at least one item"),
    2361084: Decision(Outcome.ISSUE, "missing or invalid ship-from postal code"),
    2361086: Decision(Outcome.ISSUE, "tax above what was authorised"),
    2382021: Decision(Outcome.GIVE_UP, "unknown retailer_id in the refund"),
    2382324: Decision(Outcome.GIVE_UP, "unknown retailer_id in the refund"),
    2361091: Decision(Outcome.ISSUE, "item tax refund above what was charged"),
    2382030: Decision(Outcome.GIVE_UP, "the refund total is zero"),
    2382325: Decision(Outcome.GIVE_UP, "the refund total is zero"),
    2382023: Decision(Outcome.ISSUE, "item refund above what was charged"),
    2382022: Decision(Outcome.ISSUE, "shipping refund above what was charged"),
    2382326: Decision(Outcome.ISSUE, "shipping refund above what was charged"),
    2382319: Decision(Outcome.ALREADY_DONE, "the item is already refunded"),
    2382323: Decision(Outcome.ALREADY_DONE, "the item is already refunded"),
    2361009: Decision(Outcome.ISSUE, "the order cannot be acknowledged (not CREATED)"),
    2361003: Decision(Outcome.ISSUE, "invalid order id"),
    803: Decision(Outcome.ISSUE, "the order does not exist or cannot be seen"),
}

# Errors of a whole class, when no code in the table matched.
_CLASS_TABLE: tuple[tuple[type[GraphError], Decision], ...] = (
    (GraphTransientError, Decision(Outcome.RETRY, "Meta had a transient problem")),
    (GraphAuthError, Decision(Outcome.PAUSE_SHOP, "the shop's token is invalid")),
    (GraphPermissionError, Decision(Outcome.ISSUE, "the token lacks a permission")),
)

DEFAULT_DECISION = Decision(Outcome.GIVE_UP, "Meta refused the request")


def decide(error: GraphError) -> Decision:
    """The decision for a refused write: Meta's code first, then the error's class."""
    for code in (error.code, error.subcode):
        if code in ORDER_ERROR_TABLE:
            return ORDER_ERROR_TABLE[code]
    for error_class, decision in _CLASS_TABLE:
        if isinstance(error, error_class):
            return decision
    return DEFAULT_DECISION


def decide_code(code: int | None) -> Decision:
    """The decision for a bare error code (per-order results of a batch acknowledgement)."""
    return ORDER_ERROR_TABLE.get(code, DEFAULT_DECISION) if code is not None else DEFAULT_DECISION
