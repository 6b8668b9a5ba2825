"""Feed files (CSV / TSV, catalog.md §4.4) parsed into item records, row by row.

    rows, fatal = parse_feed(content)
    rows[0].row_number, rows[0].data      # 2, {"id": "SKU1", "title": ..., "price": "9.99 EUR"}

Row numbers count file lines the way Meta's error samples do: the header is row 1. Leading
`# ref_application_id ...` metadata comments are skipped. Values stay strings; list-valued
columns (`internal_label`, `additional_image_link`, `image`, `video`, `shipping`) are read from
JSON or the documented separators.
"""

import csv
import io
import json
from dataclasses import dataclass
from typing import Any

# TODO(catalog-sandbox): flattened JSON-path columns (`image[0].url`, `shipping[0].country`)
# and RSS/ATOM XML feeds are not parsed; metasync renders CSV with JSON-valued columns.
LIST_SEPARATORS = (",", ";", "|")
JSON_COLUMNS = ("image", "video", "applink", "importer_address", "unit_price")


@dataclass
class FeedRow:
    row_number: int
    data: dict[str, Any]


class FeedFormatError(ValueError):
    """The file as a whole cannot be read (encoding, no header, no id column)."""


def parse_feed(content: bytes) -> list[FeedRow]:
    text = _decode(content)
    lines = text.splitlines(keepends=True)
    skipped = 0
    while skipped < len(lines) and lines[skipped].lstrip().startswith("#"):
        skipped += 1
    body = "".join(lines[skipped:])
    if not body.strip():
        raise FeedFormatError("The feed file is empty: a header row and item rows are required")

    header_line = body.splitlines()[0]
    delimiter = "\t" if header_line.count("\t") > header_line.count(",") else ","
    reader = csv.DictReader(io.StringIO(body), delimiter=delimiter)
    fieldnames = [name.strip() for name in reader.fieldnames or []]
    if "id" not in fieldnames:
        raise FeedFormatError(
            "The feed has no 'id' column: the header row must name the columns, including id"
        )
    reader.fieldnames = fieldnames

    rows: list[FeedRow] = []
    for index, raw in enumerate(reader):
        row_number = skipped + 2 + index
        data = {
            key: _column_value(key, value.strip() if isinstance(value, str) else value)
            for key, value in raw.items()
            if key and value not in (None, "")
        }
        rows.append(FeedRow(row_number, data))
    return rows


def _decode(content: bytes) -> str:
    for encoding in ("utf-8-sig", "utf-16"):
        try:
            return content.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise FeedFormatError("The feed file is not UTF-8 or UTF-16 encoded text")


def _column_value(key: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    if key in JSON_COLUMNS and value[:1] in "[{":
        try:
            return json.loads(value)
        except ValueError:
            return value
    if key == "internal_label":
        return _label_list(value)
    return value


def _label_list(value: str) -> list[str]:
    """`['a','b']`, `["a","b"]` or `a,b` -> ["a", "b"]."""
    inner = value.strip()
    if inner.startswith("[") and inner.endswith("]"):
        inner = inner[1:-1]
    for separator in LIST_SEPARATORS:
        if separator in inner:
            parts = inner.split(separator)
            break
    else:
        parts = [inner]
    return [part.strip().strip("'\"") for part in parts if part.strip().strip("'\"")]
