from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import msgspec
import pytest

from kis_async import DecodeError, SellableQuantity
from kis_async.models import decode_sellable, pick_sellable

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
