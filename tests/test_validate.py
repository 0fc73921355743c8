from __future__ import annotations

import pytest

from kis_async import ArgumentError, KISClient
from kis_async.validate import normalize_pdno, normalize_pdnos, parse_account


@pytest.mark.parametrize("text", ["12345678-01", "1234567801", " 12345678-01 "])
def test_account_accepts_both_documented_forms(text: str) -> None:
    account = parse_account(text)
    assert (account.cano, account.product) == ("12345678", "01")


@pytest.mark.parametrize("text", ["1234567-01", "123456789-01", "12345678_01", "abcdefgh-01", ""])
def test_malformed_account_is_refused_at_construction(text: str) -> None:
    with pytest.raises(ArgumentError, match="account must look like") as caught:
        KISClient("key", "secret", text, token_cache=None)
    assert caught.value.argument == "account"


def test_ticker_is_stripped_and_upper_cased() -> None:
    assert normalize_pdno(" 005930 ") == "005930"
    assert normalize_pdno("q500001") == "Q500001"


@pytest.mark.parametrize("bad", ["", "   ", "0059-30", "1234567890123", "삼성전자", "ß", "00 5930"])
def test_malformed_ticker_names_itself(bad: str) -> None:
    with pytest.raises(ValueError, match="ticker must be 1-12 ASCII letters or digits"):
        normalize_pdno(bad)


def test_batch_names_every_bad_code_at_once_and_dedupes_the_rest() -> None:
    assert normalize_pdnos(["005930", "000660", " 005930"]) == ["005930", "000660"]
    with pytest.raises(ArgumentError, match="2 malformed") as caught:
        normalize_pdnos(["005930", "bad code", "000660", "!!"])
    assert caught.value.argument == "pdnos"
    assert "'bad code'" in str(caught.value)
    assert "'!!'" in str(caught.value)


def test_a_single_string_is_not_mistaken_for_a_list_of_characters() -> None:
    with pytest.raises(TypeError):
        normalize_pdnos("005930")


@pytest.mark.parametrize(
    "url", ["http://openapi.koreainvestment.com:9443", "ftp://127.0.0.1", "http://10.0.0.1:80"]
)
def test_plain_http_is_refused_unless_loopback(url: str) -> None:
    with pytest.raises(ValueError, match="base_url"):
        KISClient("key", "secret", "12345678-01", base_url=url, token_cache=None)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8080", "http://localhost:1", "http://[::1]:9"])
def test_plain_http_on_loopback_is_accepted_for_the_simulator(url: str) -> None:
    assert KISClient("key", "secret", "12345678-01", base_url=url, token_cache=None).base_url


@pytest.mark.parametrize(
    ("options", "error", "named"),
    [
        ({"rate_limit": float("inf")}, ValueError, "rate_limit"),
        ({"rate_limit": float("nan")}, ValueError, "rate_limit"),
        ({"rate_limit": 0}, ValueError, "rate_limit"),
        ({"rate_limit": True}, TypeError, "rate_limit"),
        ({"rate_limit": "20"}, TypeError, "rate_limit"),
        ({"timeout": float("nan")}, ValueError, "timeout"),
        ({"timeout": float("inf")}, ValueError, "timeout"),
        ({"timeout": 1e-9 - 1e-9}, ValueError, "timeout"),
        ({"pace_margin": 1.0}, ValueError, "pace_margin"),
        ({"pace_margin": -0.1}, ValueError, "pace_margin"),
        ({"token_issue_interval": float("inf")}, ValueError, "token_issue_interval"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency"),
        ({"max_concurrency": 2.5}, TypeError, "max_concurrency"),
        ({"max_concurrency": True}, TypeError, "max_concurrency"),
        ({"retry": 3}, TypeError, "retry"),
        ({"custtype": "X"}, ValueError, "custtype"),
        ({"token_cache": 42}, TypeError, "token_cache"),
        ({"token_cache": ""}, TypeError, "token_cache"),
        ({"redis_url": ""}, ValueError, "redis_url"),
        ({"redis_fail_open": "yes"}, TypeError, "redis_fail_open"),
        ({"base_url": "https://user:pw@openapi.koreainvestment.com"}, ValueError, "base_url"),
        ({"base_url": "https://openapi.koreainvestment.com/uapi"}, ValueError, "base_url"),
        ({"base_url": "https://h:99999"}, ValueError, "base_url"),
        ({"base_url": "openapi.koreainvestment.com"}, ValueError, "base_url"),
    ],
)
def test_every_option_is_checked_at_construction_naming_itself(
    options: dict[str, object], error: type[Exception], named: str
) -> None:
    with pytest.raises(error, match=named) as caught:
        KISClient("key", "secret", "12345678-01", **({"token_cache": None} | options))  # type: ignore[arg-type]
    if error is ValueError:
        assert isinstance(caught.value, ArgumentError) and caught.value.argument == named


def test_a_refused_base_url_does_not_repeat_its_password() -> None:
    with pytest.raises(ValueError, match="base_url") as caught:
        KISClient("key", "secret", "12345678-01", base_url="https://u:hunter2@h", token_cache=None)
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("app_key", "key\r\nX-Evil: 1", "printable ASCII"),
        ("app_key", "", "non-empty"),
        ("app_key", "k" * 37, "at most 36"),
        ("app_secret", "s e c r e t", "printable ASCII"),
        ("app_secret", "비밀", "printable ASCII"),
        ("app_secret", None, "must be a string"),
    ],
)
def test_keys_are_checked_without_being_shown(name: str, value: object, message: str) -> None:
    keys: dict[str, object] = {"app_key": "key", "app_secret": "secret"} | {name: value}
    with pytest.raises((ValueError, TypeError), match=message) as caught:
        KISClient(keys["app_key"], keys["app_secret"], "12345678-01", token_cache=None)  # type: ignore[arg-type]
    assert name in str(caught.value)
    if isinstance(caught.value, ValueError):
        assert isinstance(caught.value, ArgumentError) and caught.value.argument == name
    if isinstance(value, str) and value:
        assert value not in str(caught.value)


@pytest.mark.parametrize(
    ("short", "meant"),
    [("5930", "005930"), ("660", "000660"), (" 1 ", "000001"), ("00593", "000593")],
)
def test_a_code_that_lost_its_zeros_is_refused_naming_the_padded_one(
    short: str, meant: str
) -> None:
    with pytest.raises(ArgumentError, match=f"did you mean {meant}\\?") as caught:
        normalize_pdno(short)
    assert caught.value.argument == "pdno"
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("code", ["005930", "0080G0", "Q500001", "A1", "123456789012"])
def test_six_digits_or_any_code_with_a_letter_is_accepted(code: str) -> None:
    assert normalize_pdno(code) == code


def test_a_batch_names_the_padded_code_for_each_that_lost_its_zeros() -> None:
    with pytest.raises(ArgumentError, match="3 malformed") as caught:
        normalize_pdnos(["5930", "005930", "bad code", "660"])
    message = str(caught.value)
    assert "'5930' (did you mean 005930?)" in message
    assert "'660' (did you mean 000660?)" in message
    assert "'bad code', " in message  # no suggestion for a code no padding would mend


async def test_the_client_refuses_a_short_code_before_any_call() -> None:
    """Not opened, and pointed at the real KIS: a call would fail otherwise, not this way."""
    kis = KISClient("key", "secret", "12345678-01", token_cache=None)
    with pytest.raises(ArgumentError, match="did you mean 005930"):
        await kis.sellable_quantity("5930")
