"""Malformed Meta answers (a body cut mid-JSON, fields of the wrong type, fields missing) on the
reads each write path depends on: the run never dies of an unexplained error, a damaged order
or row is recorded with its reason while the others go on, and once Meta answers properly again
nothing already synced is lost."""

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import ValidationError

from pipelines.catalog.sync import read_catalog
from resources.meta.errors import GraphError
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer
from tests.harness.conftest import count
from tests.harness.test_bad_input import live_items
from tests.harness.world import SYNC_SETTINGS, World

# (write path, route pattern, how the answer is broken)
CASES = [
    ("intake", "cms/commerce_orders", "wrong_types"),
    ("intake", "cms/commerce_orders", "drop_fields"),
    ("intake", "cms/commerce_orders", "truncate"),
    ("intake", "^order/$", "wrong_types"),
    ("intake", "^order/$", "drop_fields"),
    ("catalog", "check_batch_request_status", "wrong_types"),
    ("catalog", "check_batch_request_status", "drop_fields"),
    ("catalog", "check_batch_request_status", "truncate"),
    ("catalog_full", "catalog/products", "wrong_types"),
    ("catalog_full", "catalog/products", "drop_fields"),
    # TODO(malformed-finance): the day has no transactions yet when the fault fires, so these
    # cases prove only that the run explains itself; a malformed row among real transactions
    # (quarantined by pipelines/finance/normalize.py) is not exercised here.
    ("finance", "commerce_transactions", "wrong_types"),
    ("finance", "commerce_transactions", "drop_fields"),
    ("finance", "commerce_transactions", "truncate"),
]


@pytest.mark.parametrize(("path", "route", "malform"), CASES, ids=lambda v: str(v))
def test_a_malformed_answer_is_explained_and_loses_nothing(
    world: World, sandbox: SandboxServer, sandbox_admin: SandboxAdmin, path, route, malform
):
    world.run("catalog", "acme")
    placed = world.place_orders(sandbox_admin, "acme", count=4, seed=1)
    if path == "finance":
        world.run("intake", "acme")
    if path == "catalog":
        reprice_variants(world.store_file("acme"))  # the delta has a batch to follow
    sandbox_admin.add_fault(kind="malformed", shop_id="acme", method="GET", path_pattern=route,
                            malform=malform, times=1)  # fmt: skip
    count("bad inputs tried", 1)

    try:
        outcome = world.run(path, "acme")
    except ValidationError as exc:  # what a malformed answer used to end a run with
        pytest.fail(f"unexplained failure: {exc}")
    except GraphError as exc:  # a refusal must say the answer was malformed
        assert "malformed answer" in str(exc)
        outcome = None
    assert sandbox_admin.clear_faults()["injected"].get("malformed") == 1
    if path == "intake" and route == "^order/$":  # that order held as an issue, others imported
        assert outcome.issues == 1 and outcome.imported == placed - 1
    elif path == "intake":  # an order listed malformed is read again on its own
        assert outcome.imported == placed

    world.run(path, "acme")  # Meta answers properly again: nothing synced is lost
    if path == "intake":
        assert sorted(world._oms_counts("acme").values()) == [1] * placed
    if path.startswith("catalog"):
        profile = world.metasync.registry().get("acme")
        store = read_catalog(profile, datetime.now(UTC), SYNC_SETTINGS).items["retailer_id"]
        assert live_items(sandbox, "acme") == set(store)


def reprice_variants(export: Path) -> None:
    rows = list(csv.reader(io.StringIO(export.read_text(encoding="utf-8"))))
    price = rows[0].index("Variant Price")
    for row in rows[1:]:
        if row[price]:
            row[price] = f"{float(row[price]) + 1:.2f}"
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    export.write_text(out.getvalue(), encoding="utf-8")
