"""What an answer means, decided by one pure function: the table, without a server."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import pytest

from kis_async import (
    AccountError,
    APIError,
    AuthError,
    CallBudgetError,
    ClientClosedError,
    DecodeError,
    KISError,
    RateLimitError,
    RequestTimeout,
    RetryPolicy,
    TransportError,
)
from kis_async.models import Envelope, decode_token
from kis_async.verdict import (
    Answer,
    Fail,
    Ok,
    Renew,
    Retry,
    Verdict,
    classify,
    parse_retry_after,
)
from kis_async.wire import Closed, TooLarge


def envelope(msg_cd: str = "", rt_cd: str = "1") -> Envelope:
    return Envelope(rt_cd=rt_cd, msg_cd=msg_cd, msg1="message")


NOT_KIS = DecodeError("response is not valid JSON")


@dataclass(frozen=True)
class Row:
    status: int
    answer: Answer
    verdict: type[Verdict]
    error: type[KISError] | None = None
    token_endpoint: bool = False
    throttled: bool = False
    token_interval: bool = False
    ledger: bool = False


TABLE = {
    "success": Row(200, envelope(rt_cd="0"), Ok),
    "per-second limit": Row(500, envelope("EGW00201"), Retry, RateLimitError, throttled=True),
    "per-second limit on 200": Row(
        200, envelope("EGW00201"), Retry, RateLimitError, throttled=True
    ),
    "ledger limit": Row(500, envelope("EGW00215"), Retry, RateLimitError, ledger=True),
    "ledger limit on 200": Row(200, envelope("EGW00215"), Retry, RateLimitError, ledger=True),
    "token expired": Row(500, envelope("EGW00123"), Renew, AuthError),
    "token invalid": Row(500, envelope("EGW00121"), Renew, AuthError),
    "wrong appkey": Row(500, envelope("EGW00103"), Fail, AuthError),
    "wrong appsecret": Row(403, envelope("EGW00105"), Fail, AuthError),
    "other KIS error": Row(500, envelope("SIM00404"), Fail, APIError),
    "API refuses the appsecret": Row(500, envelope("EGW00304"), Fail, AuthError),
    "real appkey on the paper host": Row(500, envelope("EGW02007"), Fail, AuthError),
    "account not the appkey's (rt_cd 2)": Row(500, envelope("OPSQ2000", "2"), Fail, AccountError),
    "product code mismatch": Row(500, envelope("APBK1271"), Fail, AccountError),
    "not a consignment account": Row(500, envelope("APAC0489"), Fail, AccountError),
    "query refused (rt_cd 2)": Row(500, envelope("OPSQ2001", "2"), Fail, APIError),
    "data changed (rt_cd 7)": Row(500, envelope("SYDB0050", "7"), Fail, APIError),
    "rt_cd 0 on a 4xx": Row(400, envelope(rt_cd="0"), Fail, APIError),
    "proxy page 502": Row(502, NOT_KIS, Retry, TransportError),
    "proxy page 429": Row(429, NOT_KIS, Retry, TransportError),
    "proxy page 404": Row(404, NOT_KIS, Fail, TransportError),
    "malformed success": Row(200, NOT_KIS, Fail, DecodeError),
    "redirect": Row(302, envelope(rt_cd="0"), Fail, TransportError),
    "redirect without body": Row(307, NOT_KIS, Fail, TransportError),
    "timeout": Row(0, TimeoutError(), Retry, RequestTimeout),
    "connection reset": Row(0, aiohttp.ServerDisconnectedError(), Retry, TransportError),
    "body cut short": Row(0, aiohttp.ClientPayloadError("cut"), Retry, TransportError),
    "other client error": Row(0, aiohttp.InvalidURL("x"), Fail, TransportError),
    "client closed": Row(0, Closed(), Fail, ClientClosedError),
    "answer too large": Row(200, TooLarge(1 << 20), Fail, TransportError),
    "anything else": Row(0, RuntimeError("loop"), Fail, TransportError),
    "token: too soon": Row(
        403, envelope("EGW00133"), Retry, AuthError, token_endpoint=True, token_interval=True
    ),
    "token: refused": Row(403, envelope("EGW00103"), Fail, AuthError, token_endpoint=True),
    "token: odd code": Row(500, envelope("EGW00123"), Fail, AuthError, token_endpoint=True),
    "token: proxy 503": Row(503, NOT_KIS, Retry, TransportError, token_endpoint=True),
    "API: too soon is not retried": Row(403, envelope("EGW00133"), Fail, APIError),
}


@pytest.mark.parametrize("row", TABLE.values(), ids=TABLE.keys())
def test_classify(row: Row) -> None:
    verdict = classify(
        row.status, row.answer, tr_id="TTTC8408R", pdno="005930", token_endpoint=row.token_endpoint
    )
    assert type(verdict) is row.verdict
    if isinstance(verdict, Ok):
        return
    assert type(verdict.error) is row.error
    if not isinstance(verdict.error, DecodeError):
        assert verdict.error.pdno == "005930"
    if isinstance(verdict, Retry):
        said = (verdict.throttled, verdict.token_interval, verdict.ledger)
        assert said == (row.throttled, row.token_interval, row.ledger)


def test_api_error_carries_what_a_user_needs() -> None:
    verdict = classify(500, envelope("SIM00404"), tr_id="TTTC8408R", pdno="999999")
    assert isinstance(verdict, Fail) and isinstance(verdict.error, APIError)
    error = verdict.error
    assert (error.rt_cd, error.msg_cd, error.msg1, error.status, error.tr_id, error.pdno) == (
        "1",
        "SIM00404",
        "message",
        500,
        "TTTC8408R",
        "999999",
    )


def test_token_endpoint_failures_say_so() -> None:
    verdict = classify(0, TimeoutError(), token_endpoint=True)
    assert isinstance(verdict, Retry) and isinstance(verdict.error, RequestTimeout)
    error = verdict.error
    assert (error.source, error.detail) == ("token", "no answer within the request timeout")
    assert error.reason == "token endpoint: no answer within the request timeout"


def test_an_exhausted_rate_limit_is_a_call_budget_error_with_kis_envelope() -> None:
    verdict = classify(500, envelope("EGW00201"), tr_id="TTTC8408R")
    assert isinstance(verdict, Retry) and isinstance(verdict.error, RateLimitError)
    assert isinstance(verdict.error, CallBudgetError) and isinstance(verdict.error, APIError)
    assert (verdict.error.msg_cd, verdict.error.status) == ("EGW00201", 500)


def test_retry_after_is_carried_on_the_retry() -> None:
    verdict = classify(503, NOT_KIS, retry_after=7.0)
    assert isinstance(verdict, Retry) and verdict.after == 7.0


def test_a_token_answer_is_judged_like_any_envelope() -> None:
    ok = decode_token(b'{"access_token": "t", "expires_in": 86400}')
    refused = decode_token(b'{"error_code": "EGW00103", "error_description": "bad key"}')
    assert isinstance(classify(200, ok, token_endpoint=True), Ok)
    verdict = classify(403, refused, token_endpoint=True)
    assert isinstance(verdict, Fail) and isinstance(verdict.error, AuthError)
    assert verdict.error.msg_cd == "EGW00103" and verdict.error.msg1 == "bad key"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        (None, None),
        ("", None),
        ("120", 120.0),
        (" 5 ", 5.0),
        ("-1", None),
        ("soon", None),
        ("99999999999", float("inf")),
        ("Wed, 25 Nov 2026 18:00:30 GMT", 30.0),
        ("Wed, 25 Nov 2026 17:59:00 GMT", 0.0),
    ],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    now = 1795629600.0  # Wed, 25 Nov 2026 18:00:00 GMT
    assert parse_retry_after(value, now=now) == seconds


def test_backoff_doubles_with_jitter_up_to_its_cap() -> None:
    policy = RetryPolicy(backoff=0.2, max_backoff=1.0, uniform=lambda low, high: high)
    assert [policy.delay(n) for n in range(5)] == [0.2, 0.4, 0.8, 1.0, 1.0]
    low = RetryPolicy(backoff=0.2, uniform=lambda low, high: low)
    assert low.delay(0) == pytest.approx(0.1)
    assert policy.delay(10_000) == 1.0, "a huge retry number does not overflow"


def test_retry_after_wins_when_longer_but_is_bounded() -> None:
    policy = RetryPolicy(backoff=0.2, max_retry_after=30.0, uniform=lambda low, high: high)
    assert policy.delay(0, after=3.0) == 3.0
    assert policy.delay(0, after=0.0) == 0.2
    assert policy.delay(0, after=120.0) == 30.0
    assert policy.delay(0, after=float("inf")) == 30.0


@pytest.mark.parametrize(
    ("options", "error"),
    [
        ({"max_retries": -1}, ValueError),
        ({"max_retries": True}, TypeError),
        ({"max_retries": 1.5}, TypeError),
        ({"max_retries": 10**9}, ValueError),
        ({"backoff": 0}, ValueError),
        ({"backoff": float("nan")}, ValueError),
        ({"max_backoff": float("inf")}, ValueError),
        ({"max_retry_after": -1}, ValueError),
    ],
)
def test_retry_policy_is_validated_at_construction(
    options: dict[str, float], error: type[Exception]
) -> None:
    with pytest.raises(error, match=next(iter(options))):
        RetryPolicy(**options)  # type: ignore[arg-type]
