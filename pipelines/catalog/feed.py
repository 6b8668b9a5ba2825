"""Items rendered as a Meta feed file (CSV, header row of Meta field names, UTF-8).

    feed = render_feed(catalog.items)
    feed.content, feed.row_count, feed.sha256      # upload `content`; record the digest

Cells a spreadsheet would run as a formula (starting with = + - @, tab or CR) get a leading `'`:
sellers open these files in spreadsheet tools. Ids never need it (normalise rejects such ids), so
identity is unchanged between feeds and items_batch.
"""

import csv
import hashlib
from dataclasses import dataclass

import pandas as pd

from pipelines.catalog.normalise import META_FIELDS, neutralise_formula


@dataclass(frozen=True)
class FeedFile:
    content: bytes
    row_count: int
    sha256: str


def render_feed(items: pd.DataFrame, columns: tuple[str, ...] = META_FIELDS) -> FeedFile:
    """CSV per catalog.md 4.4: header row, fields quoted when needed, `"` doubled."""
    # TODO(feed-shards): Meta advises shards past ~1M items or 1 GB; split by item_group_id.
    frame = pd.DataFrame(index=items.index)
    for name in columns:
        values = items[name] if name in items.columns else pd.Series("", index=items.index)
        text = values.astype("string").fillna("").astype("str")
        frame[name] = neutralise_formula(text)
    content = frame.to_csv(index=False, lineterminator="\n", quoting=csv.QUOTE_MINIMAL)
    data = content.encode("utf-8")
    return FeedFile(content=data, row_count=len(frame), sha256=hashlib.sha256(data).hexdigest())
