"""docs/data-dictionary.md documents every finance table and every column, and nothing else."""

import re

import pytest

from resources.db.finance_tables import ANALYST_TABLES, FINANCE_TABLES
from tests.conftest import REPO_ROOT

DICTIONARY = REPO_ROOT / "docs" / "data-dictionary.md"


def documented_columns() -> dict[str, set[str]]:
    """{table: {columns}} from `### table` headings and `| `column` |` rows under them."""
    tables: dict[str, set[str]] = {}
    current = None
    for line in DICTIONARY.read_text().splitlines():
        if heading := re.match(r"^### (\w+)\s*$", line):
            current = tables.setdefault(heading.group(1), set())
        elif current is not None and (row := re.match(r"^\| `(\w+)` \|", line)):
            current.add(row.group(1))
    return tables


@pytest.mark.parametrize("table", FINANCE_TABLES, ids=lambda t: t.name)
def test_every_column_of_every_finance_table_is_documented(table):
    documented = documented_columns()
    assert table.name in documented, f"{table.name} has no section in {DICTIONARY.name}"
    actual = {column.name for column in table.columns}
    assert documented[table.name] == actual, (
        f"undocumented: {sorted(actual - documented[table.name])}, "
        f"documented but absent: {sorted(documented[table.name] - actual)}"
    )


def test_analyst_tables_come_first_under_their_own_heading():
    text = DICTIONARY.read_text()
    analyst_part = text.split("## Analyst tables", 1)[1].split("\n## ", 1)[0]
    for table in ANALYST_TABLES:
        assert f"### {table.name}\n" in analyst_part
