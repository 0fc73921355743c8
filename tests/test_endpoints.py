"""A typed KIS endpoint is one declaration: its numbers are then read by KIS's rules exactly.

The answers here are written out by hand in the shape KIS sends, so a declaration that is wrong
cannot pass by agreeing with the simulator.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

import msgspec
import pytest

from kis_async import DecodeError, KISClient
from kis_async.endpoints import Endpoint, OneRow, RowPage
from kis_async.models import _Rows, decode_as
from kis_async.numbers import amount, quantity, signed
from kis_async.simulator import Simulator


class Quote(msgspec.Struct, frozen=True):
    """주식현재가 시세's row, as a bot would declare it (a few of its fields)."""

    stck_shrn_iscd: str
    stck_prpr: Annotated[Decimal, amount(10)]
    prdy_vrss: Annotated[Decimal, signed(10)] = Decimal(0)
    acml_vol: Annotated[int, quantity(18)] = 0


QUOTE = Endpoint("/uapi/domestic-stock/v1/quotations/inquire-price", "FHKST01010100", OneRow[Quote])
"""The whole declaration."""

KIS_QUOTE = (
    '{"output": {"stck_shrn_iscd": "005930", "stck_prpr": "72,100", "prdy_vrss": "-300",'
    ' "acml_vol": " 0012345 ", "hts_avls": "4304049"}, "rt_cd": "0", "msg_cd": "MCA00000",'
    ' "msg1": "정상처리 되었습니다."}'
).encode()


def test_a_declared_endpoint_reads_its_numbers_exactly() -> None:
    answer = decode_as(KIS_QUOTE, QUOTE.answer)
    assert isinstance(answer.output, Quote)
    assert answer.output.stck_prpr == Decimal(72100)
    assert answer.output.prdy_vrss == Decimal(-300)
    assert answer.output.acml_vol == 12345 and type(answer.output.acml_vol) is int


@pytest.mark.parametrize(
    ("field", "raw"),
    [("stck_prpr", "-72100"), ("acml_vol", "1.5"), ("stck_prpr", "7" * 11), ("acml_vol", "1e3")],
)
def test_a_declared_endpoint_refuses_what_kis_never_writes(field: str, raw: str) -> None:
    body = KIS_QUOTE.replace(
        b'"72,100"' if field == "stck_prpr" else b'" 0012345 "', b'"%b"' % raw.encode()
    )
    with pytest.raises(DecodeError) as caught:
        decode_as(body, QUOTE.answer)
    assert caught.value.field == field


def test_a_declared_page_reads_every_row() -> None:
    body = b'{"rt_cd": "0", "output1": [{"stck_shrn_iscd": "005930", "stck_prpr": "72100"}]}'
    page = decode_as(body, RowPage[Quote])
    assert page.output1 == [Quote("005930", Decimal(72100))]


async def test_a_declared_endpoint_goes_through_get(sim: Simulator, kis: KISClient) -> None:
    query = {"FID_COND_MRKT_DIV_CODE": "J", "FID_INPUT_ISCD": "005930"}
    answer = await kis.get(QUOTE.path, tr_id=QUOTE.tr_id, params=query, type=QUOTE.answer)
    assert isinstance(answer.output, Quote)
    assert answer.output.stck_prpr == sim.portfolio["005930"].now_price


def test_a_text_field_among_the_numbers_is_refused_when_declared() -> None:
    class Misordered(msgspec.Struct):
        qty: Annotated[int, quantity(10)]
        name: str
        price: Annotated[Decimal, amount(10)]

    with pytest.raises(TypeError, match=r"Misordered\.name: a text field among the numbers"):
        _Rows.of(Misordered)


def test_text_fields_after_the_numbers_are_read_too() -> None:
    class Tail(msgspec.Struct):
        code: str
        qty: Annotated[int, quantity(10)]
        note: str = ""

    body = b'{"rt_cd": "0", "output": {"code": "A", "qty": " 0012 ", "note": "n"}}'
    assert decode_as(body, OneRow[Tail]).output == Tail("A", 12, "n")
    assert decode_as(body.replace(b'" 0012 "', b'"12"'), OneRow[Tail]).output == Tail("A", 12, "n")


def test_a_number_of_the_wrong_type_is_refused_when_declared() -> None:
    class Mistyped(msgspec.Struct):
        qty: Annotated[Decimal, quantity(10)]

    with pytest.raises(TypeError, match="a quantity field must be int"):
        _Rows.of(Mistyped)
