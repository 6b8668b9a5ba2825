"""Graph routes of the finance domain: payouts and transactions (orders.md §13)."""

from sandbox.core.errors import InvalidParameter
from sandbox.core.paging import page
from sandbox.core.routing import GraphCall, graph_route
from sandbox.finance.models import finance_backend
from sandbox.finance.render import render_payout, render_transaction
from sandbox.orders.render import parse_fields, parse_time, project


@graph_route("GET", "page", "commerce_payouts")
@graph_route("GET", "cms", "commerce_payouts")
def list_payouts(call: GraphCall) -> dict:
    start = parse_time(call.param("start_time"), "start_time")
    end = parse_time(call.param("end_time"), "end_time")
    rows = [
        render_payout(view)
        for view in finance_backend(call.state).payouts(call.state, call.shop.shop_id)
        if (start is None or view.payout_date >= start) and (end is None or view.payout_date < end)
    ]
    selection = parse_fields(call.param("fields"))
    return page([project(r, selection, None) for r in rows], call.params, url=call.url)


@graph_route("GET", "page", "commerce_transactions")
@graph_route("GET", "cms", "commerce_transactions")
def list_transactions(call: GraphCall) -> dict:
    finance = finance_backend(call.state)
    reference = call.param("payout_reference_id")
    start = parse_time(call.param("start_time"), "start_time")
    end = parse_time(call.param("end_time"), "end_time")
    if reference is None and start is None and end is None:
        raise InvalidParameter("(#100) give payout_reference_id or start_time/end_time")
    rows = []
    for record in finance.shop_transactions(call.shop.shop_id):
        if reference is not None and finance.payout_reference_of(call.state, record) != reference:
            continue
        if start is not None and record.transaction_date < start:
            continue
        if end is not None and record.transaction_date >= end:
            continue
        rows.append(render_transaction(call.state, finance, record))
    selection = parse_fields(call.param("fields"))
    return page([project(r, selection, None) for r in rows], call.params, url=call.url)
