"""Property-based: the decoder and the validators never fail in an unplanned way."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kis_async import ArgumentError, DecodeError, Position, SellableQuantity
from kis_async.models import (
    _SELLABLE,
    Envelope,
    decode_balance,
    decode_sellable,
    pick_sellable,
    read_answer,
)
from kis_async.validate import normalize_pdno, parse_account

from .test_models import OUTPUT, POSITION, balance, lengths

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
    st.text(alphabet="0123456789０１２١٢_xX+-.,eEnNaIf \t\u3000\xa0\x00", max_size=24),
    st.integers().map(str),
    st.integers(min_value=0).map(lambda n: f"{n:,}"),
    st.decimals(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " ", "NaN", "1e999999", "-0", "0000120", "1,234,567", "1,23", "１２０"]),
)
QUANTITIES = ("buy_qty", "sll_qty", "cblc_qty", "nsvg_qty", "ord_psbl_qty")
PRICES = ("pchs_avg_pric", "pchs_amt", "now_pric", "evlu_amt")
PROFITS = ("evlu_pfls_amt", "evlu_pfls_rt")
DIGITS = lengths(SellableQuantity)
BALANCE_DIGITS = lengths(Position)


def _decode(body: bytes) -> SellableQuantity:
    return pick_sellable(decode_sellable(body, "005930"), "005930")


def _body(output: dict[str, Any]) -> bytes:
    return json.dumps({"rt_cd": "0", "output1": output}, ensure_ascii=False).encode()


def _kis_text(raw: str) -> str:
    """What an accepted number may be written with, blanks and separators set aside."""
    return raw.strip(" \t\r\n").replace(",", "")


def _integer_digits(value: Decimal) -> int:
    return max(value.adjusted() + 1, 0) if value else 0


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
    for name in QUANTITIES:
        value = getattr(q, name)
        assert type(value) is int and 0 <= value < 10 ** DIGITS[name]
    for name in PRICES + PROFITS:
        value = getattr(q, name)
        assert type(value) is Decimal and value.is_finite()
        assert _integer_digits(value) <= DIGITS[name]
    for name in PRICES:
        assert not getattr(q, name).is_signed()
    for name, raw in changes.items():
        if name in DIGITS:
            text = _kis_text(raw).removeprefix("-" if name in PROFITS else "")
            assert text == "" or (text.isascii() and text.replace(".", "", 1).isdigit())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(QUANTITIES), numberish)
def test_an_accepted_quantity_is_a_non_negative_int_of_its_documented_digits(
    name: str, raw: str
) -> None:
    try:
        value = getattr(_decode(_body(OUTPUT | {name: raw})), name)
    except DecodeError as exc:
        assert (exc.field, exc.pdno) == (name, "005930")
        return
    assert type(value) is int and 0 <= value < 10 ** DIGITS[name]
    text = _kis_text(raw)
    assert value == (int(text) if text else 0) and (text == "" or text.isascii())


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(PRICES + PROFITS), numberish)
def test_an_accepted_price_is_finite_and_negative_only_for_a_profit_or_loss(
    name: str, raw: str
) -> None:
    try:
        value = getattr(_decode(_body(OUTPUT | {name: raw})), name)
    except DecodeError as exc:
        assert (exc.field, exc.pdno) == (name, "005930")
        return
    assert type(value) is Decimal and value.is_finite()
    assert _integer_digits(value) <= DIGITS[name]
    assert value >= 0 or name in PROFITS
    text = _kis_text(raw)
    assert value == (Decimal(text) if text else 0) and (text == "" or text.isascii())


def _plain(name: str) -> st.SearchStrategy[str]:
    """Numbers within their documented length, written plainly as KIS does."""
    top = 10 ** DIGITS[name] - 1
    if name in QUANTITIES:
        return st.integers(0, top).map(str)
    bottom = -top if name in PROFITS else 0
    return st.builds(
        lambda whole, fraction: f"{whole}.{fraction}" if fraction else str(whole),
        st.integers(bottom, top),
        st.one_of(st.just(""), st.text(alphabet="0123456789", min_size=1, max_size=8)),
    )


def _padded(text: str) -> str:
    """``text`` with a leading zero and blanks around it: the same number, for the slow path."""
    sign, digits = ("-", text[1:]) if text.startswith("-") else ("", text)
    return f" {sign}0{digits} "


@settings(max_examples=200, deadline=None)
@given(st.fixed_dictionaries({name: _plain(name) for name in DIGITS}), st.data())
def test_plain_numbers_within_their_length_are_read_exactly_padded_or_not(
    numbers: dict[str, str], data: st.DataObject
) -> None:
    plain = _decode(_body(OUTPUT | numbers))
    padded = data.draw(st.sampled_from(sorted(numbers)))
    assert _decode(_body(OUTPUT | numbers | {padded: _padded(numbers[padded])})) == plain
    for name, text in numbers.items():
        assert getattr(plain, name) == (int(text) if name in QUANTITIES else Decimal(text))


@settings(max_examples=200, deadline=None)
@given(
    st.fixed_dictionaries(
        {name: _plain(name).filter(lambda text, n=name: len(text) <= DIGITS[n]) for name in DIGITS}
    )
)
def test_the_fast_path_reads_exactly_what_the_slow_path_reads(numbers: dict[str, str]) -> None:
    fast = pick_sellable(_SELLABLE.fast(_body(OUTPUT | numbers)), "005930")
    slow = _decode(_body(OUTPUT | {name: _padded(text) for name, text in numbers.items()}))
    assert fast == slow
    for name in numbers:
        assert str(getattr(fast, name)) == str(getattr(slow, name))


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["hldg_qty", "ord_psbl_qty", "pchs_avg_pric", "prpr"]), numberish
    )
)
def test_an_accepted_position_keeps_the_same_bounds(changes: dict[str, str]) -> None:
    try:
        (position,) = decode_balance(balance(POSITION | changes)).output1
    except DecodeError as exc:
        assert exc.field in changes and exc.pdno == "000660"
        return
    for name in ("hldg_qty", "ord_psbl_qty"):
        value = getattr(position, name)
        assert type(value) is int and 0 <= value < 10 ** BALANCE_DIGITS[name]
    for name in ("pchs_avg_pric", "prpr"):
        value = getattr(position, name)
        assert value.is_finite() and not value.is_signed()
        assert _integer_digits(value) <= BALANCE_DIGITS[name]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_any_bytes_are_an_answer_or_a_decode_error_for_every_reader(body: bytes) -> None:
    assert isinstance(read_answer(body, decode_balance), Envelope | DecodeError)
    with contextlib.suppress(DecodeError):
        decode_balance(body)


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_arbitrary_json_documents_decode_or_raise_decode_error(document: Any) -> None:
    with contextlib.suppress(DecodeError):
        _decode(json.dumps(document).encode())


@given(st.text(max_size=16))
def test_ticker_is_accepted_only_as_ascii_alnum(text: str) -> None:
    try:
        code = normalize_pdno(text)
    except ArgumentError as exc:
        assert exc.argument == "pdno"
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
