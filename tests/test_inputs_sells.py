"""Sell orders as users write them (issue 23): Excel CSVs in CP949 or UTF-8, Korean or English
headers, plain ``code quantity`` lists; a holdings export's quantities never read as orders, and
every bad row named at once."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from kis_async import inputs
from kis_async.orders_input import OrderRow, read_sells


def read(tmp_path: Path, data: bytes, name: str = "orders.csv") -> tuple[list[OrderRow], list[str]]:
    """The orders in a file holding ``data``, and the notes said reading it."""
    path = tmp_path / name
    path.write_bytes(data)
    notes: list[str] = []
    return read_sells(str(path), notes.append), notes


def refused(tmp_path: Path, data: bytes, name: str = "orders.csv") -> str:
    """The one-line message reading a file holding ``data`` is refused with."""
    with pytest.raises(inputs.UsageError) as caught:
        read(tmp_path, data, name)
    message = str(caught.value)
    assert "\n" not in message
    return message


def rows(*orders: tuple[str, int, int]) -> list[OrderRow]:
    return [OrderRow(pdno, qty, None, line) for pdno, qty, line in orders]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(
            "종목코드,종목명,주문수량\r\n5930,삼성전자,10\r\n000660,SK하이닉스,3\r\n".encode(
                "cp949"
            ),
            rows(("005930", 10, 2), ("000660", 3, 3)),
            id="korean-excel-cp949",
        ),
        pytest.param(
            "\ufeff종목코드,종목명,수량\r\n005930,삼성전자,7\r\n".encode(),
            rows(("005930", 7, 2)),
            id="utf8-bom",
        ),
        pytest.param(
            b"pdno,name,qty\n005930,Samsung,1\n035420,NAVER,2\n",
            rows(("005930", 1, 2), ("035420", 2, 3)),
            id="english",
        ),
        pytest.param(
            b"Ticker,Quantity\n0080g0,4\n", rows(("0080G0", 4, 2)), id="ascii-case-ignored"
        ),
        pytest.param(
            b"PDNO\tQTY\n005930\t10\n000660\t20\n",
            rows(("005930", 10, 2), ("000660", 20, 3)),
            id="tab-separated",
        ),
        pytest.param(
            "종목코드;주문수량\n005930;5\n".encode(), rows(("005930", 5, 2)), id="semicolons"
        ),
        pytest.param(
            b'pdno,qty\n005930,"1,000"\n000660," 12,345,678 "\n',
            rows(("005930", 1000, 2), ("000660", 12345678, 3)),
            id="quoted-thousands",
        ),
        pytest.param(
            "종목코드,종목명,보유수량,매도가능수량,주문수량\n005930,삼성전자,100,90,10\n".encode(),
            rows(("005930", 10, 2)),
            id="holdings-and-order-columns",
        ),
        pytest.param(
            "주문수량,비고,종목코드\n3,,005930,extra,cells\n".encode(),
            rows(("005930", 3, 2)),
            id="any-column-order-extra-cells-ignored",
        ),
        pytest.param(
            b"# sell today\npdno,qty\n\n005930,1\n,,\n# not this one\n005930,2\n",
            rows(("005930", 1, 4), ("005930", 2, 7)),
            id="comments-blank-rows-repeats-kept",
        ),
        pytest.param(
            b'pdno,memo,qty\n005930,"two\nlines",1\n000660,,2\n',
            rows(("005930", 1, 2), ("000660", 2, 4)),
            id="a-quoted-newline-keeps-line-numbers",
        ),
        pytest.param(
            b"pdno,qty\n005930,9999999999999999999\n",
            rows(("005930", 9999999999999999999, 2)),
            id="nineteen-digits",
        ),
        pytest.param(b"pdno,qty\n", [], id="header-only"),
    ],
)
def test_a_csv_is_read_by_its_header(tmp_path: Path, data: bytes, expected: list[OrderRow]) -> None:
    assert read(tmp_path, data)[0] == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(
            "005930 10\n000660 20\n", rows(("005930", 10, 1), ("000660", 20, 2)), id="space"
        ),
        pytest.param("005930\t10\n", rows(("005930", 10, 1)), id="tab"),
        pytest.param(
            "005930,10\n000660, 20\n", rows(("005930", 10, 1), ("000660", 20, 2)), id="comma"
        ),
        pytest.param('005930,"1,000"\n', rows(("005930", 1000, 1)), id="excel-quoted"),
        pytest.param(
            "# to sell\n\n005930   10  # half\n   \n  # done\n035420 1\n",
            rows(("005930", 10, 3), ("035420", 1, 6)),
            id="comments-and-blank-lines",
        ),
        pytest.param("5930 1\n5930 2\n", rows(("005930", 1, 1), ("005930", 2, 2)), id="repeats"),
        pytest.param("\r\n# nothing\n\n", [], id="no-orders"),
        pytest.param("", [], id="empty"),
    ],
)
def test_a_headerless_file_is_a_plain_list(
    tmp_path: Path, text: str, expected: list[OrderRow]
) -> None:
    assert read(tmp_path, text.encode(), "orders.txt")[0] == expected


def test_zeros_are_restored_with_one_note_and_the_columns_read_are_noted(tmp_path: Path) -> None:
    data = "종목코드,종목명,보유수량,주문수량\n5930,삼성전자,9,1\n660,SK하이닉스,9,2\n".encode(
        "cp949"
    )
    orders, notes = read(tmp_path, data)
    assert [order.pdno for order in orders] == ["005930", "000660"]
    path = tmp_path / "orders.csv"
    assert notes == [
        f"{path}: tickers from '종목코드', quantities from '주문수량'",
        f"{path}: 2 code(s) had lost their leading zeros; restored (5930 → 005930)",
    ]


@pytest.mark.parametrize(
    ("header", "needles"),
    [
        pytest.param(
            "종목코드,종목명,보유수량,매도가능수량",
            (
                "no order quantity column (header: '종목코드', '종목명', '보유수량', "
                "'매도가능수량')",
                "'보유수량', '매도가능수량' are holdings/sellable columns, not an order quantity",
                "name the order column qty or 주문수량",
            ),
            id="holdings-export",
        ),
        pytest.param(
            "pdno,sellable_qty",
            ("'sellable_qty' is a holdings/sellable column, not an order quantity",),
            id="english-sellable",
        ),
        pytest.param(
            "pdno,account",
            ("no order quantity column (header: 'pdno', 'account'); name the",),
            id="no-quantity-at-all",
        ),
        pytest.param(
            "종목명,주문수량",
            ("no ticker column; name one pdno or 종목코드 (header: '종목명',",),
            id="no-ticker",
        ),
        pytest.param(
            "종목코드,수량,주문수량",
            ("2 quantity columns ('수량', '주문수량'); keep one",),
            id="two-quantities",
        ),
        pytest.param(
            "종목코드,단축코드,수량",
            ("2 ticker columns ('종목코드', '단축코드'); keep one",),
            id="two-tickers",
        ),
    ],
)
def test_a_header_without_one_order_quantity_and_ticker_column_is_refused(
    tmp_path: Path, header: str, needles: tuple[str, ...]
) -> None:
    message = refused(tmp_path, f"{header}\n005930,삼성전자,10,10\n".encode("cp949"))
    assert message.startswith(f"{tmp_path / 'orders.csv'}: ")
    for needle in needles:
        assert needle in message


def test_swapped_columns_in_a_plain_list_are_refused_not_read_as_another_ticker(
    tmp_path: Path,
) -> None:
    """``100 005930``: read as written it would be ticker 000100 (a real stock, 유한양행)
    selling 5,930 shares."""
    message = refused(tmp_path, b"100 005930\n")
    assert "quantity '005930' starts with a zero" in message


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("10.5", "quantity '10.5' is not a whole number of shares"),
        ("1e3", "quantity '1e3' is not a whole number of shares"),
        ("ten", "quantity 'ten' is not a whole number of shares"),
        ("１０", "quantity '１０' is not a whole number of shares"),
        ("-5", "quantity '-5' is not a whole number of shares"),
        ("+5", "quantity '+5' is not a whole number of shares"),
        ('"1,00"', "quantity '1,00' is not a whole number of shares"),
        ("1_000", "quantity '1_000' is not a whole number of shares"),
        ("", "no quantity"),
        ("0", "quantity 0: an order sells at least 1 share"),
        ("000", "quantity 0: an order sells at least 1 share"),
        (
            "0007",
            "quantity '0007' starts with a zero, as a ticker does: are the code and quantity "
            "columns the other way round?",
        ),
        ("1" * 20, f"quantity '{'1' * 20}' has more than 19 digits, more than any KIS quantity"),
    ],
)
def test_a_bad_quantity_is_named_with_its_line(tmp_path: Path, cell: str, problem: str) -> None:
    message = refused(tmp_path, f"pdno,qty\n005930,1\n005930,{cell}\n".encode())
    assert message == f"{tmp_path / 'orders.csv'} line 3: {problem}"


def test_every_bad_row_is_named_in_one_message(tmp_path: Path) -> None:
    data = (
        "종목코드,종목명,주문수량\n"
        "005930,삼성전자,10\n"
        ",빈칸,3\n"
        "000660,SK하이닉스,10.5\n"
        "\n"
        "SK하이닉스,,0\n"
        "035420\n"
        "005930,삼성전자,5\n"
    ).encode("cp949")
    assert refused(tmp_path, data) == (
        f"{tmp_path / 'orders.csv'}: 4 bad order(s): line 3: no ticker; "
        "line 4: quantity '10.5' is not a whole number of shares; "
        "line 6: ticker must be 1-12 ASCII letters or digits, got 'SK하이닉스', "
        "quantity 0: an order sells at least 1 share; "
        "line 7: no quantity"
    )


def test_past_ten_bad_rows_the_rest_are_counted(tmp_path: Path) -> None:
    data = b"pdno,qty\n" + b"005930,x\n" * 13
    message = refused(tmp_path, data)
    assert message.startswith(f"{tmp_path / 'orders.csv'}: 13 bad order(s): line 2: ")
    assert "line 11: " in message
    assert "line 12: " not in message
    assert message.endswith("line 11: quantity 'x' is not a whole number of shares; and 3 more")


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            "005930 1,000\n",
            "line 1: 3 field(s); a line is a code and a quantity (write 1000, not 1,000)",
        ),
        ("005930 10 삼성전자\n", "line 1: 3 field(s); a line is a code and a quantity"),
        ("005930\n", "line 1: 1 field(s); a line is a code and a quantity"),
        ('005930 "10\n', "line 1: 3 field(s); a line is a code and a quantity"),
        ("005930 10.5\n", "line 1: quantity '10.5' is not a whole number of shares"),
        (
            "# x\n삼성전자 10\n",
            "line 2: ticker must be 1-12 ASCII letters or digits, got '삼성전자'",
        ),
        (
            "종목 주식수\n005930 1\n",
            "line 1: '종목 주식수' is no order, nor a header this reads (a header names its "
            "columns pdno or 종목코드 and qty or 주문수량, commas, tabs or semicolons between)",
        ),
        ("pdno qty\n005930 1\n", "line 1: 'pdno qty' is no order, nor a header this reads"),
    ],
)
def test_a_bad_plain_line_is_named(tmp_path: Path, text: str, problem: str) -> None:
    message = refused(tmp_path, text.encode(), "orders.txt")
    assert message.startswith(f"{tmp_path / 'orders.txt'} {problem}")


@pytest.mark.parametrize(
    ("cell", "account"),
    [
        ("12345678-01", "12345678-01"),
        ("1234567801", "12345678-01"),
        (" 12345678-01 ", "12345678-01"),
    ],
)
def test_an_account_column_is_read_normalized(tmp_path: Path, cell: str, account: str) -> None:
    orders, notes = read(tmp_path, f"계좌번호,종목코드,주문수량\n{cell},005930,1\n".encode("cp949"))
    assert orders == [OrderRow("005930", 1, account, 2)]
    assert notes[0].endswith("accounts from '계좌번호'")


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        ("", "no account"),
        ("98765432-1", "account '98******-1' must look like 12345678-01 or 1234567801"),
        ("987654320102", "account '98********02' must look like 12345678-01 or 1234567801"),
        ("abc", "account 'abc' must look like 12345678-01 or 1234567801"),
    ],
)
def test_a_blank_or_bad_account_is_named_without_its_digits(
    tmp_path: Path, cell: str, problem: str
) -> None:
    data = f"account,pdno,qty\n12345678-01,005930,1\n{cell},005930,1\n".encode()
    message = refused(tmp_path, data)
    assert message == f"{tmp_path / 'orders.csv'} line 3: {problem}"
    assert "765432" not in message


def test_a_file_with_no_account_column_gives_none(tmp_path: Path) -> None:
    orders, _ = read(tmp_path, b"pdno,qty\n005930,1\n")
    assert orders[0].account is None


class Keyboard(io.BytesIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("stream", "notes"),
    [
        (io.BytesIO, []),
        (
            Keyboard,
            ["reading sell orders from stdin, a code and a quantity a line; end with Ctrl-D"],
        ),
    ],
)
def test_stdin_is_read_for_a_dash_with_a_prompt_only_for_a_person(
    monkeypatch: pytest.MonkeyPatch, stream: type[io.BytesIO], notes: list[str]
) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(stream("005930 2\n".encode("cp949"))))
    said: list[str] = []
    assert read_sells("-", said.append) == rows(("005930", 2, 1))
    assert said == notes


def test_a_bad_row_on_stdin_names_standard_input(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"005930 0\n")))
    with pytest.raises(inputs.UsageError, match=r"^standard input line 1: quantity 0: "):
        read_sells("-", lambda _: None)


def test_an_input_past_the_limit_is_refused_unread(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 64)
    assert read(tmp_path, b"005930 1\n" * 7)[0] == rows(*(("005930", 1, n) for n in range(1, 8)))
    message = refused(tmp_path, b"005930 1\n" * 8)
    assert message == (
        f"{tmp_path / 'orders.csv'} is larger than 0 MiB, more than any ticker or order list or "
        "env file: not read"
    )


def test_text_neither_utf8_nor_cp949_is_refused(tmp_path: Path) -> None:
    assert refused(tmp_path, b"005930 1\n\xff\xfe\n") == (
        f"{tmp_path / 'orders.csv'} is neither UTF-8 nor CP949 text"
    )


def test_a_missing_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.csv"
    with pytest.raises(inputs.UsageError) as caught:
        read_sells(str(missing), lambda _: None)
    assert str(caught.value) == f"cannot read {missing}: No such file or directory"


def test_a_cell_past_the_csv_field_limit_is_refused(tmp_path: Path) -> None:
    data = b'pdno,qty\n005930,"' + b"1" * (128 * 1024 + 1) + b'"\n'
    assert refused(tmp_path, data).startswith(f"{tmp_path / 'orders.csv'}: not CSV this reads (")
