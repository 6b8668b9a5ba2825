"""The snapshot's fast paths give exactly what the plain, value-by-value code gives."""

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.catalog.diff import diff_catalog
from pipelines.catalog.normalise import clean_text, clean_texts
from resources.store.base import _fast_utf8_csv, per_distinct
from resources.store.shopify_csv import ShopifyCsvSource

# Text made of the pieces that matter to cleaning: tags, entities, shortcodes, NUL, whitespace.
PIECES = st.sampled_from(
    [
        "<p>", "</p>", "<br/>", "<script>x</script>", "<STYLE a=1>p{}</style >", "&amp;",
        "&lt;b&gt;", "&#0;", "&amp", "&nbsp;", "[vc_row]", "[/vc_row]", "[sic]", "[b]", "[/b]",
        '[caption id="1"]', "[a [x_y] ]", "[1]", "[Ü]", "\x00", " ", "\n\t", "\u00a0", "\x1c",
        "Café", "x", "<", ">", "[", "]", "=",
    ]
)  # fmt: skip
TEXTS = st.lists(PIECES, max_size=12).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXTS, max_size=8))
def test_clean_texts_equals_clean_text_on_each_value(values: list[str]) -> None:
    assert clean_texts(values) == [clean_text(value) for value in values]


def test_clean_texts_keeps_conditional_shortcodes_per_value() -> None:
    """[b] goes only in the value that closes it; [sic] stays; a NUL-holding value is alone."""
    values = ["[b]x[/b] [sic]", "[b]y", "a\x00[b]", "[vc_row]z[/vc_row]"]
    assert clean_texts(values) == ["x [sic]", "[b]y", "a\x00[b]", "z"]


def test_per_distinct_keeps_values_order_and_dtype() -> None:
    series = pd.Series([" B", "a", " B", ""], index=[10, 11, 12, 13], dtype="str")
    mapped = per_distinct(series, lambda text: text.str.strip().str.casefold())
    pd.testing.assert_series_equal(mapped, series.str.strip().str.casefold())
    counts = per_distinct(series, lambda text: text.str.len())
    pd.testing.assert_series_equal(counts, series.str.len())


def _pandas_read(data: bytes) -> pd.DataFrame:
    return ShopifyCsvSource("unused")._read_text(data.decode("utf-8-sig"))


@pytest.mark.parametrize(
    "data",
    [
        b'Handle,Body (HTML),Price\na,"line one\nline two",1.50\nb,"say ""hi"", ok",007\n',
        b"\xef\xbb\xbfHandle,Title\nx,Caf\xc3\xa9\n\ny, spaced \r\nz,\n",
        b"Handle,Title\n,\n,\n",
    ],
    ids=["quoted-newlines-and-quotes", "bom-blank-line-crlf", "empty-cells"],
)
def test_arrow_reader_matches_pandas_text_exactly(data: bytes) -> None:
    fast = _fast_utf8_csv(data)
    assert fast is not None
    pd.testing.assert_frame_equal(fast, _pandas_read(data), check_exact=True)


@pytest.mark.parametrize(
    "data",
    [
        b"Handle,Handle\na,b\n",  # pandas renames the second to Handle.1
        b"Handle,\na,b\n",  # pandas names it "Unnamed: 1"
        b"Handle,Title\na\n",  # a short row: the pandas path makes it a malformed_row reject
        b"Handle,Title\n",  # header only
        b"Handle,Title\nCaf\xe9,x\n",  # cp1252: pandas path adds a note
    ],
    ids=["repeated-header", "blank-header", "ragged", "header-only", "cp1252"],
)
def test_arrow_reader_leaves_shapes_it_reads_differently_to_pandas(data: bytes) -> None:
    assert _fast_utf8_csv(data) is None


def test_diff_with_an_empty_ledger_creates_everything() -> None:
    items = pd.DataFrame(
        {"retailer_id": ["a", "b"], "content_hash": ["1" * 32, "2" * 32]}, dtype="str"
    )
    ledger = pd.DataFrame({"retailer_id": [], "content_hash": []}, dtype="str")
    changes = diff_catalog(items, ledger)
    assert changes.counts()["create"] == 2
    assert changes.counts()["unchanged"] == 0
