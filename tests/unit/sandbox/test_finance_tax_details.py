"""The sandbox's transaction tax details split a transaction's tax between the categories of its
lines, so a refund's tax lands where its sale's did and an accountant's report by category adds
up (before, all of a sale's tax went to its first category, and a refund of another category's
item showed negative tax in a category with no sales)."""

from decimal import Decimal
from types import SimpleNamespace

from sandbox.finance.models import _tax_details


def _order(jurisdiction="CALIFORNIA"):
    items = {
        "shirt": SimpleNamespace(tax_category="FBMP_CLOTHING", tax_rate=Decimal("0.0725"),
                                 estimated_tax=145, quantity=2),
        "lamp": SimpleNamespace(tax_category="FBMP_OTHER_TAXABLE", tax_rate=Decimal("0.0725"),
                                estimated_tax=73, quantity=1),
        "gift": SimpleNamespace(tax_category="FBMP_ELECTRONICS", tax_rate=Decimal("0"),
                                estimated_tax=0, quantity=1),
    }  # fmt: skip
    return SimpleNamespace(item=items.__getitem__, jurisdiction=jurisdiction)


def amounts(rows):
    return {row["tax_category"]: row["item_tax_amount"] for row in rows}


def test_a_sale_splits_its_tax_by_category_and_leaves_out_untaxed_ones():
    rows = _tax_details(_order(), [("shirt", 2), ("lamp", 1), ("gift", 1)], 218)
    assert amounts(rows) == {"FBMP_CLOTHING": 145, "FBMP_OTHER_TAXABLE": 73}
    assert {row["imposition"] for row in rows} == {"Sales and Use Tax"}


def test_a_refund_of_one_item_carries_tax_in_that_item_s_category_only():
    assert amounts(_tax_details(_order(), [("lamp", 1)], -73)) == {"FBMP_OTHER_TAXABLE": -73}
    assert amounts(_tax_details(_order(), [("shirt", 1)], -72)) == {"FBMP_CLOTHING": -72}


def test_odd_minor_units_go_to_the_largest_remainder_and_the_total_is_kept():
    rows = _tax_details(_order(), [("shirt", 1), ("lamp", 1)], 100)
    assert sum(amounts(rows).values()) == 100
    assert amounts(rows) == {"FBMP_CLOTHING": 50, "FBMP_OTHER_TAXABLE": 50}


def test_an_untaxed_transaction_keeps_one_row_and_vat_countries_say_vat():
    assert amounts(_tax_details(_order(), [("gift", 1)], 0)) == {"FBMP_ELECTRONICS": 0}
    rows = _tax_details(_order("FRANCE"), [("lamp", 1)], 73)
    assert rows[0]["imposition"] == "VAT"
