"""Property-based: the decoder and the validators never fail in an unplanned way."""

from __future__ import annotations

import contextlib
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kis_async import DecodeError, SellableQuantity
from kis_async.models import decode_sellable, pick_sellable
from kis_async.validate import normalize_pdno, parse_account

from .test_models import OUTPUT

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
    max_leaves=8,
)
numberish = st.one_of(
    st.text(alphabet="0123456789,.- +eE", max_size=12),
    st.integers().map(str),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " ", "NaN", "1e999999", "-0", "0000120", "1,234,567", "1,23"]),
)


def _decode(body: bytes) -> SellableQuantity:
    return pick_sellable(decode_sellable(body, "005930"), "005930")


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_decode_or_raise_decode_error(body: bytes) -> None:
    with contextlib.suppress(DecodeError):
        assert isinstance(_decode(body), SellableQuantity)


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(sorted(OUTPUT)), numberish), json_values)
def test_mangled_fields_decode_exactly_or_name_a_field(changes: dict[str, str], extra: Any) -> None:
    output = OUTPUT | changes | {"pdno": "005930"}
    body = json.dumps({"rt_cd": "0", "output1": output, "extra": extra}).encode()
    try:
        q = _decode(body)
    except DecodeError as exc:
        assert exc.pdno == "005930"
        assert exc.field in OUTPUT
        return
    for name in ("cblc_qty", "ord_psbl_qty", "sll_qty"):
        assert type(getattr(q, name)) is int and getattr(q, name) >= 0
    assert q.pchs_avg_pric.is_finite()


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_documents_decode_or_raise_decode_error(document: Any) -> None:
    with contextlib.suppress(DecodeError):
        _decode(json.dumps(document).encode())


@given(st.text(max_size=16))
def test_ticker_is_accepted_only_as_ascii_alnum(text: str) -> None:
    try:
        code = normalize_pdno(text)
    except ValueError as exc:
        assert "ticker must be" in str(exc)
        return
    assert 1 <= len(code) <= 12 and code.isascii() and code.isalnum() and code == code.upper()
    assert code == text.strip().upper()


@given(st.text(max_size=14))
def test_account_is_accepted_only_in_the_two_documented_forms(text: str) -> None:
    try:
        account = parse_account(text)
    except ValueError:
        return
    assert text.strip() in (f"{account.cano}-{account.product}", account.cano + account.product)
