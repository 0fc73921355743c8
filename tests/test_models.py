from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kis_async import DecodeError, Position, SellableQuantity, models, spec
from kis_async.endpoints import OneRow
from kis_async.models import (
    Envelope,
    SellableEnvelope,
    decode_balance,
    decode_envelope,
    decode_sellable,
    decode_token,
    pick_sellable,
    read_answer,
)
from kis_async.numbers import Kind

OUTPUT = {
    "pdno": "005930",
    "prdt_name": "삼성전자",
    "buy_qty": "0",
    "sll_qty": "5",
    "cblc_qty": "120",
    "nsvg_qty": "0",
    "ord_psbl_qty": "115",
    "pchs_avg_pric": "71250.0000",
    "pchs_amt": "8550000",
    "now_pric": "72100",
    "evlu_amt": "8652000",
    "evlu_pfls_amt": "-102000",
    "evlu_pfls_rt": "-1.19",
}


def body(**envelope: Any) -> bytes:
    base: dict[str, Any] = {"rt_cd": "0", "msg_cd": "KIOK0510", "msg1": "조회가 완료되었습니다"}
    return json.dumps(base | envelope, ensure_ascii=False).encode()


def decode(raw: bytes, pdno: str = "005930") -> SellableQuantity:
    return pick_sellable(decode_sellable(raw, pdno), pdno)


def test_reference_shape_decodes_to_exact_types() -> None:
    q = decode(body(output1=OUTPUT))
    assert q.ord_psbl_qty == 115 and type(q.ord_psbl_qty) is int
    assert q.pchs_avg_pric == Decimal("71250.0000") and isinstance(q.pchs_avg_pric, Decimal)
    assert q.evlu_pfls_amt == Decimal(-102000)
    assert q.evlu_pfls_rt == Decimal("-1.19")
    assert q.prdt_name == "삼성전자"


@pytest.mark.parametrize(
    "envelope",
    [
        {"output": OUTPUT},
        {"output": [OUTPUT]},
        {"output1": [OUTPUT]},
        {"output1": None, "output": OUTPUT},
    ],
)
def test_live_shapes_are_accepted(envelope: dict[str, Any]) -> None:
    assert decode(body(**envelope)).cblc_qty == 120


def test_blank_quantities_of_a_ticker_not_held_mean_zero() -> None:
    blank = dict.fromkeys(OUTPUT, "") | {"pdno": "000660"}
    q = decode(body(output1=blank), "000660")
    assert (q.cblc_qty, q.ord_psbl_qty, q.now_pric) == (0, 0, Decimal(0))


def test_thousands_separators_padding_and_zero_padding_are_read_exactly() -> None:
    odd = OUTPUT | {"pchs_amt": "8,550,000", "cblc_qty": " 120 ", "ord_psbl_qty": "0000115"}
    q = decode(body(output1=odd))
    assert (q.pchs_amt, q.cblc_qty, q.ord_psbl_qty) == (Decimal(8550000), 120, 115)


def test_unknown_fields_are_ignored() -> None:
    assert decode(body(output1=OUTPUT | {"new_field": "x"}, extra=1)).ord_psbl_qty == 115


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"ord_psbl_qty": "many"}, "ord_psbl_qty"),
        ({"cblc_qty": "12.5"}, "cblc_qty"),
        ({"sll_qty": "-1"}, "sll_qty"),
        ({"now_pric": "NaN"}, "now_pric"),
        ({"evlu_amt": "1,23"}, "evlu_amt"),
    ],
)
def test_bad_field_is_named_with_the_ticker(change: dict[str, str], field: str) -> None:
    with pytest.raises(DecodeError) as caught:
        decode(body(output1=OUTPUT | change))
    assert caught.value.field == field
    assert caught.value.pdno == "005930"
    assert field in str(caught.value) and "005930" in str(caught.value)


def test_missing_field_is_named() -> None:
    partial = {k: v for k, v in OUTPUT.items() if k != "ord_psbl_qty"}
    with pytest.raises(DecodeError) as caught:
        decode(body(output1=partial))
    assert caught.value.field == "ord_psbl_qty"


@pytest.mark.parametrize("envelope", [{}, {"output1": None}, {"output": []}])
def test_missing_output_is_a_decode_error(envelope: dict[str, Any]) -> None:
    with pytest.raises(DecodeError, match="output1"):
        decode(body(**envelope))


def test_answer_about_another_ticker_is_refused() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(body(output1=OUTPUT), "000660")
    assert caught.value.field == "pdno"


def test_euc_kr_body_is_read() -> None:
    raw = json.dumps({"rt_cd": "0", "output1": OUTPUT}, ensure_ascii=False).encode("euc-kr")
    assert decode(raw).prdt_name == "삼성전자"


def test_results_encode_back_to_json_with_exact_decimals() -> None:
    q = decode(body(output1=OUTPUT))
    assert msgspec.json.decode(msgspec.json.encode(q))["pchs_avg_pric"] == "71250.0000"


# -- numbers: what KIS sends, and what is refused -----------------------------------------------

REFUSED = DecodeError
"""In the tables below: the value is refused, with a DecodeError naming the field."""

NUMBER_TABLE = [
    # quantities: plain ASCII digits, with KIS's quirks
    ("ord_psbl_qty", "115", 115),
    ("ord_psbl_qty", "", 0),
    ("ord_psbl_qty", "   ", 0),
    ("ord_psbl_qty", " 120 ", 120),
    ("ord_psbl_qty", "\t120\r\n", 120),
    ("ord_psbl_qty", "0000115", 115),
    ("ord_psbl_qty", "1,234", 1234),
    ("ord_psbl_qty", "1,234,567", 1234567),
    ("ord_psbl_qty", "9999999999", 9_999_999_999),
    ("ord_psbl_qty", "0000000000009999999999", 9_999_999_999),
    ("buy_qty", "9999999999", 9_999_999_999),
    ("cblc_qty", "9999999999999999999", 9_999_999_999_999_999_999),
    ("nsvg_qty", "0", 0),
    # quantities: everything else
    ("ord_psbl_qty", "１２０", REFUSED),
    ("ord_psbl_qty", "١٢٠", REFUSED),
    ("ord_psbl_qty", "1_000", REFUSED),
    ("ord_psbl_qty", "1e3", REFUSED),
    ("ord_psbl_qty", "1E3", REFUSED),
    ("ord_psbl_qty", "0x10", REFUSED),
    ("ord_psbl_qty", "+5", REFUSED),
    ("ord_psbl_qty", "-5", REFUSED),
    ("ord_psbl_qty", "-0", REFUSED),
    ("ord_psbl_qty", "12.0", REFUSED),
    ("ord_psbl_qty", "12.5", REFUSED),
    ("ord_psbl_qty", "1,23", REFUSED),
    ("ord_psbl_qty", "1,2345", REFUSED),
    ("ord_psbl_qty", ",123", REFUSED),
    ("ord_psbl_qty", "1 2", REFUSED),
    ("ord_psbl_qty", "\u3000120", REFUSED),
    ("ord_psbl_qty", "\xa0120", REFUSED),
    ("ord_psbl_qty", "120\x00", REFUSED),
    ("ord_psbl_qty", '"120"', REFUSED),
    ("ord_psbl_qty", "NaN", REFUSED),
    ("ord_psbl_qty", "99999999999", REFUSED),
    ("buy_qty", "10000000000", REFUSED),
    ("sll_qty", "99999999999", REFUSED),
    ("cblc_qty", "10000000000000000000", REFUSED),
    ("nsvg_qty", "99999999999999999999999", REFUSED),
    ("ord_psbl_qty", 120, REFUSED),
    ("ord_psbl_qty", 1e3, REFUSED),
    ("ord_psbl_qty", None, REFUSED),
    ("ord_psbl_qty", True, REFUSED),
    ("ord_psbl_qty", ["120"], REFUSED),
    ("ord_psbl_qty", {"value": "120"}, REFUSED),
    # prices and amounts: decimals, never negative
    ("pchs_avg_pric", "71250.0000", Decimal("71250.0000")),
    ("pchs_avg_pric", "71,250.0000", Decimal("71250.0000")),
    ("pchs_avg_pric", " 71250.5 ", Decimal("71250.5")),
    ("pchs_avg_pric", "0.5", Decimal("0.5")),
    ("pchs_avg_pric", "", Decimal(0)),
    ("pchs_avg_pric", "123456789012345678.1234", Decimal("123456789012345678.1234")),
    ("pchs_avg_pric", "1.000000000001", Decimal("1.000000000001")),
    ("now_pric", "72100", Decimal(72100)),
    ("now_pric", "99999999", Decimal(99999999)),
    ("pchs_amt", "8,550,000", Decimal(8550000)),
    ("evlu_amt", "9999999999999999999", Decimal(9999999999999999999)),
    ("pchs_avg_pric", "1e999999", REFUSED),
    ("pchs_avg_pric", "1E+3", REFUSED),
    ("pchs_avg_pric", "Infinity", REFUSED),
    ("pchs_avg_pric", "-Infinity", REFUSED),
    ("pchs_avg_pric", "inf", REFUSED),
    ("pchs_avg_pric", "NaN", REFUSED),
    ("pchs_avg_pric", "sNaN", REFUSED),
    ("pchs_avg_pric", "-1", REFUSED),
    ("pchs_avg_pric", "-0", REFUSED),
    ("pchs_avg_pric", "-0.0", REFUSED),
    ("pchs_avg_pric", "+71250", REFUSED),
    ("pchs_avg_pric", "1.", REFUSED),
    ("pchs_avg_pric", ".5", REFUSED),
    ("pchs_avg_pric", "1.2.3", REFUSED),
    ("pchs_avg_pric", "71250,0000", REFUSED),
    ("pchs_avg_pric", "７１２５０", REFUSED),
    ("pchs_avg_pric", "71_250", REFUSED),
    ("pchs_avg_pric", "1234567890123456789", REFUSED),
    ("pchs_avg_pric", 71250.0, REFUSED),
    ("now_pric", "123456789", REFUSED),
    ("pchs_amt", "-8550000", REFUSED),
    ("evlu_amt", "-1", REFUSED),
    ("evlu_amt", "10000000000000000000", REFUSED),
    # profit and loss: the only numbers that may be negative
    ("evlu_pfls_amt", "-102000", Decimal(-102000)),
    ("evlu_pfls_amt", "-1,234,567", Decimal(-1234567)),
    ("evlu_pfls_amt", " -102000 ", Decimal(-102000)),
    ("evlu_pfls_amt", "102000", Decimal(102000)),
    ("evlu_pfls_rt", "-1.19", Decimal("-1.19")),
    ("evlu_pfls_rt", "-0012.50", Decimal("-12.50")),
    ("evlu_pfls_rt", "-1234567.99", Decimal("-1234567.99")),
    ("evlu_pfls_rt", "-0", Decimal(0)),
    ("evlu_pfls_rt", "", Decimal(0)),
    ("evlu_pfls_rt", "+1.19", REFUSED),
    ("evlu_pfls_rt", "--1.19", REFUSED),
    ("evlu_pfls_rt", "1.19-", REFUSED),
    ("evlu_pfls_rt", "-", REFUSED),
    ("evlu_pfls_rt", "-.5", REFUSED),
    ("evlu_pfls_rt", "- 1.19", REFUSED),
    ("evlu_pfls_rt", "−1.19", REFUSED),
    ("evlu_pfls_rt", "-12345678.0", REFUSED),
    ("evlu_pfls_amt", "-1e3", REFUSED),
    ("evlu_pfls_amt", "-10000000000000000000", REFUSED),
]


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [pytest.param(*case, id=f"{case[0]}={case[1]!r}") for case in NUMBER_TABLE],
)
def test_numbers_are_read_only_as_kis_writes_them(field: str, raw: Any, expected: Any) -> None:
    if expected is REFUSED:
        with pytest.raises(DecodeError) as caught:
            decode(body(output1=OUTPUT | {field: raw}))
        assert (caught.value.field, caught.value.pdno) == (field, "005930")
        return
    value = getattr(decode(body(output1=OUTPUT | {field: raw})), field)
    assert value == expected and type(value) is type(expected)
    assert str(value) == str(expected)


POSITION = {
    "pdno": "000660",
    "prdt_name": "SK하이닉스",
    "hldg_qty": "10",
    "ord_psbl_qty": "7",
    "pchs_avg_pric": "181500.0000",
    "prpr": "183000",
    "evlu_pfls_rt": "0.83",
}

POSITION_TABLE = [
    ("hldg_qty", "10", 10),
    ("hldg_qty", " 10 ", 10),
    ("hldg_qty", "", 0),
    ("hldg_qty", "1,000", 1000),
    ("hldg_qty", "9999999999999999999", 9_999_999_999_999_999_999),
    ("ord_psbl_qty", "9999999999999999999", 9_999_999_999_999_999_999),
    ("pchs_avg_pric", "181,500.0000", Decimal("181500.0000")),
    ("prpr", "183000", Decimal(183000)),
    ("hldg_qty", "１０", REFUSED),
    ("hldg_qty", "1_0", REFUSED),
    ("hldg_qty", "1e1", REFUSED),
    ("hldg_qty", "-1", REFUSED),
    ("hldg_qty", "10000000000000000000", REFUSED),
    ("ord_psbl_qty", "7.0", REFUSED),
    ("ord_psbl_qty", 7, REFUSED),
    ("pchs_avg_pric", "NaN", REFUSED),
    ("pchs_avg_pric", "-181500", REFUSED),
    ("pchs_avg_pric", "1234567890123456789", REFUSED),
    ("prpr", "Infinity", REFUSED),
    ("prpr", "-0", REFUSED),
    ("prpr", "1e3", REFUSED),
]


def balance(*rows: dict[str, Any]) -> bytes:
    page = {"rt_cd": "0", "msg_cd": "KIOK0510", "msg1": "", "output1": list(rows)}
    return json.dumps(page, ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("field", "raw", "expected"),
    [pytest.param(*case, id=f"{case[0]}={case[1]!r}") for case in POSITION_TABLE],
)
def test_positions_follow_the_same_rules(field: str, raw: Any, expected: Any) -> None:
    rows = (OTHER_POSITION, POSITION | {field: raw})
    if expected is REFUSED:
        with pytest.raises(DecodeError) as caught:
            decode_balance(balance(*rows))
        assert (caught.value.field, caught.value.pdno) == (field, "000660")
        return
    value = getattr(decode_balance(balance(*rows)).output1[1], field)
    assert value == expected and type(value) is type(expected)


OTHER_POSITION = POSITION | {"pdno": "005930", "prdt_name": "삼성전자"}


def test_fast_path_rows_have_the_public_fields_in_order() -> None:
    for public in (SellableQuantity, Position):
        rows = models._Rows.of(public)
        assert rows.text.__struct_fields__ == public.__struct_fields__
        names = [name for name, _ in rows.rules]
        assert public.__struct_fields__[rows.first : rows.end] == tuple(names)


def lengths(row: type[msgspec.Struct]) -> dict[str, int]:
    return {name: number.digits for name, number in models._Rows.of(row).rules}


def test_every_number_on_the_reference_page_has_its_length() -> None:
    """The reference page's table, copied by hand: a declaration that drifts from it fails."""
    assert lengths(SellableQuantity) == {
        "buy_qty": 10,
        "sll_qty": 10,
        "cblc_qty": 19,
        "nsvg_qty": 19,
        "ord_psbl_qty": 10,
        "pchs_avg_pric": 18,
        "pchs_amt": 19,
        "now_pric": 8,
        "evlu_amt": 19,
        "evlu_pfls_amt": 19,
        "evlu_pfls_rt": 7,
    }
    kinds = {name: number.kind for name, number in models._Rows.of(SellableQuantity).rules}
    assert {name for name, kind in kinds.items() if kind is Kind.QUANTITY} == {
        "buy_qty",
        "sll_qty",
        "cblc_qty",
        "nsvg_qty",
        "ord_psbl_qty",
    }
    assert {name for name, kind in kinds.items() if kind is Kind.SIGNED} == {
        "evlu_pfls_amt",
        "evlu_pfls_rt",
    }
    assert lengths(Position) == {
        "hldg_qty": 19,
        "ord_psbl_qty": 19,
        "pchs_avg_pric": 18,
        "prpr": 19,
    }


def test_the_error_quotes_a_long_value_shortened() -> None:
    with pytest.raises(DecodeError) as caught:
        decode(body(output1=OUTPUT | {"ord_psbl_qty": "x" * 10_000}))
    assert len(str(caught.value)) < 200


# -- which row answers: ambiguity ---------------------------------------------------------------


@pytest.mark.parametrize(
    "envelope",
    [
        {"output1": [OUTPUT, OUTPUT | {"ord_psbl_qty": "120"}]},
        {"output": [OUTPUT, OUTPUT | {"prdt_name": "삼성전자우"}]},
        {"output1": [OUTPUT, OUTPUT | {"pdno": " 005930 ", "evlu_pfls_rt": "-1.20"}]},
        {"output1": OUTPUT, "output": OUTPUT | {"cblc_qty": "0"}},
        {"output1": OUTPUT, "output": [OUTPUT | {"ord_psbl_qty": "0"}]},
    ],
)
def test_two_different_rows_for_the_ticker_are_an_ambiguous_answer(
    envelope: dict[str, Any],
) -> None:
    with pytest.raises(DecodeError, match="ambiguous") as caught:
        decode(body(**envelope))
    assert (caught.value.field, caught.value.pdno) == ("output1", "005930")


@pytest.mark.parametrize(
    "envelope",
    [
        {"output1": [OUTPUT, OUTPUT]},
        {"output1": [OUTPUT, OUTPUT | {"pdno": " 005930 ", "cblc_qty": "0120"}]},
        {"output1": OUTPUT, "output": [OUTPUT]},
        {"output1": [OUTPUT | {"pdno": "000660", "cblc_qty": "1"}, OUTPUT]},
    ],
)
def test_the_same_row_repeated_is_read_once(envelope: dict[str, Any]) -> None:
    q = decode(body(**envelope))
    assert (q.pdno, q.cblc_qty, q.ord_psbl_qty) == ("005930", 120, 115)


# -- the envelope: success that names a refusal, repeated keys ----------------------------------


@pytest.mark.parametrize("code", sorted(spec.GATEWAY_ERROR_CODES))
def test_success_naming_a_gateway_refusal_is_read_as_that_refusal(code: str) -> None:
    raw = body(msg_cd=code, msg1="초당 거래건수를 초과하였습니다.", output1=OUTPUT)
    answer = read_answer(raw, lambda b: decode_sellable(b, "005930"))
    assert type(answer) is Envelope
    assert (answer.rt_cd, answer.msg_cd, answer.msg1) == (
        spec.RT_FAILED,
        code,
        "초당 거래건수를 초과하였습니다.",
    )


def test_an_empty_holdings_page_naming_a_refusal_is_not_an_empty_account() -> None:
    raw = json.dumps({"rt_cd": "0", "msg_cd": "EGW00123", "msg1": "", "output1": []}).encode()
    answer = read_answer(raw, decode_balance)
    assert (type(answer), answer.rt_cd, answer.msg_cd) == (Envelope, "1", "EGW00123")


def test_a_malformed_success_naming_a_refusal_is_still_that_refusal() -> None:
    raw = body(msg_cd="EGW00201", output1=OUTPUT | {"ord_psbl_qty": "1e3"})
    answer = read_answer(raw, lambda b: decode_sellable(b, "005930"))
    assert isinstance(answer, Envelope) and (answer.rt_cd, answer.msg_cd) == ("1", "EGW00201")


@pytest.mark.parametrize("code", ["KIOK0510", "APBK0013", "", "EGW99999"])
def test_success_with_any_other_code_is_success(code: str) -> None:
    answer = read_answer(body(msg_cd=code, output1=OUTPUT), lambda b: decode_sellable(b, "005930"))
    assert isinstance(answer, OneRow) and answer.rt_cd == "0"


def test_a_failure_is_left_as_kis_sent_it() -> None:
    raw = body(rt_cd="1", msg_cd="EGW00201", msg1="초당 거래건수를 초과하였습니다.")
    answer = read_answer(raw, lambda b: decode_sellable(b, "005930"))
    assert isinstance(answer, OneRow) and answer.rt_cd == "1"


PADDED = {"nsvg_qty": " 0 "}
"""A quirk that sends a body to the slow path."""


@pytest.mark.parametrize("quirk", [{}, PADDED], ids=["fast path", "slow path"])
def test_a_repeated_key_reads_its_last_occurrence_on_both_paths(quirk: dict[str, str]) -> None:
    row = json.dumps(OUTPUT | quirk, ensure_ascii=False)[:-1] + ', "ord_psbl_qty": "7"}'
    raw = f'{{"rt_cd": "1", "msg_cd": "KIOK0510", "rt_cd": "0", "output1": {row}}}'.encode()
    envelope = decode_sellable(raw, "005930")
    assert envelope.rt_cd == "0"
    assert pick_sellable(envelope, "005930").ord_psbl_qty == 7


def test_a_repeated_verdict_naming_a_refusal_is_that_refusal() -> None:
    raw = b'{"rt_cd": "1", "msg_cd": "EGW00201", "msg1": "", "rt_cd": "0"}'
    answer = read_answer(raw, lambda b: decode_sellable(b, "005930"))
    assert isinstance(answer, Envelope) and (answer.rt_cd, answer.msg_cd) == ("1", "EGW00201")


# -- bodies nested too deep, bodies in the legacy encoding ---------------------------------------


def nested(depth: int, kind: str) -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def placed(deep: str, where: str) -> str:
    """A psbl-sell body with ``deep`` at ``where``; the envelope is one level, the row a second."""
    row = json.dumps(OUTPUT, ensure_ascii=False)
    return {
        "unknown key": f'{{"rt_cd": "0", "extra": {deep}, "output1": {row}}}',
        "unknown key in the row": f'{{"rt_cd": "0", "output1": {row[:-1]}, "extra": {deep}}}}}',
        "output1": f'{{"rt_cd": "0", "output1": {deep}}}',
        "a number": f'{{"rt_cd": "0", "output1": {row[:-1]}, "cblc_qty": {deep}}}}}',
        "msg1": f'{{"rt_cd": "0", "msg1": {deep}, "output1": {row}}}',
        "a list of rows": f'{{"rt_cd": "0", "output": [{row}, {deep}]}}',
    }[where]


WHERE = ["unknown key", "unknown key in the row", "output1", "a number", "msg1", "a list of rows"]


@pytest.mark.parametrize("depth", [models.MAX_NESTING, 1000])
@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("where", WHERE)
def test_json_nested_past_the_limit_anywhere_is_a_decode_error_for_the_ticker(
    where: str, kind: str, depth: int
) -> None:
    """The same outcome on every Python: 1,000 levels decode on 3.12+ and not on 3.11 when
    msgspec's recursion guard is the only one. (``depth`` levels under the envelope's own.)"""
    raw = placed(nested(depth, kind), where).encode()
    with pytest.raises(DecodeError, match="nested too deeply") as caught:
        decode(raw)
    assert caught.value.pdno == "005930"
    assert isinstance(read_answer(raw, lambda b: decode_sellable(b, "005930")), DecodeError)
    for decoder in (decode_balance, decode_envelope, decode_token):
        with pytest.raises(DecodeError, match="nested too deeply"):
            decoder(raw)


@pytest.mark.parametrize("kind", ["list", "object"])
@pytest.mark.parametrize("where", WHERE)
def test_json_nested_a_million_deep_is_a_decode_error_not_a_crash(where: str, kind: str) -> None:
    raw = placed(nested(1_000_000, kind), where).encode()
    with pytest.raises(DecodeError, match=r"nested too deeply .*\(100000[12] levels"):
        decode(raw)


@pytest.mark.parametrize("kind", ["list", "object"])
def test_json_nested_up_to_the_limit_under_an_unknown_key_is_ignored(kind: str) -> None:
    deepest = models.MAX_NESTING - 1  # under the envelope's own level
    raw = placed(nested(deepest, kind), "unknown key").encode()
    assert decode(raw).ord_psbl_qty == 115
    assert decode_envelope(raw).rt_cd == "0"


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("{}", 1),
        ("[[], [[]], {}]", 3),
        ('{"a": "[[[[[[", "b": ["]]]"]}', 2),
        ('{"a": "\\\\", "b": [["\\\\"]]}', 3),
        ('{"a": "\\"[[["}', 1),
        ('{"a": "\\\\\\"[[["}', 1),
        ('["unterminated [[[', 1),
        ("", 0),
    ],
)
def test_nesting_is_measured_outside_strings(text: str, depth: int) -> None:
    assert models._depth(text.encode()) == depth


def test_brackets_inside_strings_do_not_count_towards_the_nesting() -> None:
    row = OUTPUT | {"prdt_name": "[" * 500 + "{" * 500}
    assert decode(body(output1=row)).prdt_name.startswith("[[[")


@pytest.mark.parametrize(
    "text",
    [
        '["' + '\\"' * 300_000,  # an unterminated string of escaped quotes
        '"' * 600_001 + "[" * 100,
        '["\\' * 200_000,
        "[" * 100 + "\\" + "[" * 100_000,
    ],
)
def test_hostile_strings_are_a_decode_error_not_a_hang(text: str) -> None:
    with pytest.raises(DecodeError):
        decode_envelope(text.encode())


def test_euc_kr_body_is_read_with_many_brackets_in_its_strings() -> None:
    """A CP949 byte can equal a quote or a bracket, so such a body is transcoded before its
    nesting is measured."""
    rows = [OUTPUT | {"prdt_name": "삼성전자 [우] {신}"}] * 80
    raw = json.dumps({"rt_cd": "0", "output": rows}, ensure_ascii=False).encode("cp949")
    assert decode(raw).prdt_name == "삼성전자 [우] {신}"


def _raising(kind: type[Exception]) -> Any:
    """A fast-path decoder that reports a body that is not UTF-8 as ``kind``, as msgspec 0.22
    (``UnicodeDecodeError``) and 0.23 (``msgspec.DecodeError``) do."""

    def fast(raw: bytes) -> Any:
        try:
            raw.decode()
        except UnicodeDecodeError as exc:
            if kind is UnicodeDecodeError:
                raise
            raise kind("Invalid UTF-8 encoded string") from exc
        return models._SELLABLE.fast(raw)

    return fast


@pytest.mark.parametrize("kind", [UnicodeDecodeError, msgspec.DecodeError])
def test_euc_kr_is_read_whichever_exception_msgspec_raises_for_it(
    kind: type[Exception],
) -> None:
    raw = json.dumps({"rt_cd": "0", "output": OUTPUT}, ensure_ascii=False).encode("euc-kr")
    answer = models._decode(raw, _raising(kind), SellableEnvelope, models._SELLABLE.rows, "005930")
    assert pick_sellable(answer, "005930").prdt_name == "삼성전자"


def test_euc_kr_body_with_a_quirk_is_read() -> None:
    document = {"rt_cd": "0", "msg1": "조회가 완료되었습니다", "output1": OUTPUT | PADDED}
    raw = json.dumps(document, ensure_ascii=False).encode("euc-kr")
    assert decode(raw).prdt_name == "삼성전자"


def test_euc_kr_is_noticed_after_a_number_the_fast_path_refused() -> None:
    row = json.dumps(OUTPUT | PADDED, ensure_ascii=False)
    raw = f'{{"rt_cd": "0", "output1": {row}, "msg1": "조회가 완료되었습니다"}}'.encode("euc-kr")
    assert decode(raw).nsvg_qty == 0


def test_a_body_in_no_korean_encoding_is_a_decode_error_even_after_a_refused_number() -> None:
    row = json.dumps(OUTPUT | PADDED)
    raw = f'{{"rt_cd": "0", "output1": {row}, "msg1": "'.encode() + b'\xff\xff"}'
    with pytest.raises(DecodeError, match="neither UTF-8 nor EUC-KR"):
        decode(raw)
