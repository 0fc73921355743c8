"""What KIS defines: hosts, paths, tr_ids, limits and message codes, named in one place.

The client reads these, and the simulator reads them where it plays KIS's side of the same fact:
that keeps each fact in one place, but does not make it right (a wrong value here would pass by
agreeing with itself), which is what the tests' fixtures, written out as KIS sends them, are for.
"""

from __future__ import annotations

from datetime import timedelta, timezone
from typing import Final

REAL_HOST: Final = "https://openapi.koreainvestment.com:9443"
PAPER_HOST: Final = "https://openapivts.koreainvestment.com:29443"
"""Paper trading (모의투자). KIS does not serve inquire-psbl-sell there."""

TOKEN_PATH: Final = "/oauth2/tokenP"
SELLABLE_PATH: Final = "/uapi/domestic-stock/v1/trading/inquire-psbl-sell"
SELLABLE_TR_ID: Final = "TTTC8408R"
BALANCE_PATH: Final = "/uapi/domestic-stock/v1/trading/inquire-balance"
BALANCE_TR_ID: Final = "TTTC8434R"
BALANCE_QUERY: Final = {
    "AFHR_FLPR_YN": "N",
    "OFL_YN": "",
    "INQR_DVSN": "01",
    "UNPR_DVSN": "01",
    "FUND_STTL_ICLD_YN": "N",
    "FNCG_AMT_AUTO_RDPT_YN": "N",
    "PRCS_DVSN": "00",
}
"""inquire-balance's fixed query: regular hours, no fund settlement, no auto-repay.

``INQR_DVSN`` is ``01`` (by loan date), not the ``02`` (by ticker) of older references: KIS
announced on 2026-02-10 that ``02`` is refused ("ERROR : INPUT INVALID_CHECK_INQR_DVSN",
OPSQ2001), as users of other KIS libraries reported. With ``01`` a ticker held partly on margin
can be listed once per loan date; :meth:`~kis_async.KISClient.held_tickers` asks about it once.
"""
PRICE_PATH: Final = "/uapi/domestic-stock/v1/quotations/inquire-price"
PRICE_TR_ID: Final = "FHKST01010100"
"""주식현재가 시세: not used by the library itself; the simulator serves it, so a bot's other
calls through :meth:`~kis_async.KISClient.get` can be shown and tested."""
MORE_PAGES: Final = frozenset({"F", "M"})
"""Response ``tr_cont`` values that mean another page follows (``D``/``E``: the last)."""
NEXT_PAGE: Final = "N"
"""Request ``tr_cont`` asking for the next page."""

CALLS_PER_SECOND: Final = 20
"""Real accounts: calls per second per appkey."""
TOKEN_ISSUE_INTERVAL: Final = 60.0
"""Seconds KIS requires between two token issuances for one appkey."""
SAME_TOKEN_WINDOW: Final = 6 * 3600.0
"""Asking again this soon after an issuance returns the same token."""

APP_KEY_MAX_LENGTH: Final = 36
APP_SECRET_MAX_LENGTH: Final = 180
"""Header lengths on the reference page: longer cannot be a key KIS issued."""
TOKEN_MAX_LENGTH: Final = 1024
"""A sanity bound on a token from the token endpoint (the reference page allows 350 for the
whole authorization header; this leaves room should KIS grow it)."""

KST: Final = timezone(timedelta(hours=9), "KST")
"""``access_token_token_expired`` is Korean wall-clock time; Korea keeps no DST."""
EXPIRY_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

RT_OK: Final = "0"
RT_FAILED: Final = "1"
"""The ``rt_cd`` KIS sends with an error (any value but :data:`RT_OK` is a failure)."""

RATE_LIMITED: Final = "EGW00201"
"""초당 거래건수를 초과하였습니다: per-second limit exceeded. Transient."""
TOKEN_EXPIRED: Final = "EGW00123"
"""기간이 만료된 token 입니다."""
TOKEN_INVALID: Final = "EGW00121"
"""유효하지 않은 token 입니다 (revoked, or cached from elsewhere)."""
TOKEN_ISSUE_TOO_SOON: Final = "EGW00133"
"""접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)."""
BAD_APPKEY: Final = "EGW00103"
"""유효하지 않은 AppKey입니다: wrong appkey/appsecret. Permanent."""
BAD_APPSECRET: Final = "EGW00105"
"""유효하지 않은 AppSecret입니다. Permanent."""

ACCOUNT_REFUSED: Final = "OPSQ2000"
"""ERROR : INPUT INVALID_CHECK_ACNO at the gateway: the account is not one this appkey may use
(reported by users; APBK0917 carries the same message from the back end)."""
ACCOUNT_REFUSED_MARK: Final = "INVALID_CHECK_ACNO"

STALE_TOKEN_CODES: Final = frozenset({TOKEN_EXPIRED, TOKEN_INVALID})
CREDENTIAL_CODES: Final = frozenset({BAD_APPKEY, BAD_APPSECRET})
ACCOUNT_CODES: Final = frozenset({ACCOUNT_REFUSED, "APBK0917"})
GATEWAY_ERROR_CODES: Final = frozenset(
    {RATE_LIMITED, TOKEN_ISSUE_TOO_SOON, *STALE_TOKEN_CODES, *CREDENTIAL_CODES}
)
"""The gateway's documented refusals: an answer carrying one of these is an error, whatever its
``rt_cd`` says (success answers carry codes such as ``KIOK0510`` or ``APBK0013``)."""

SELLABLE_DIGITS: Final = {
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
"""inquire-psbl-sell's numbers and the Length its reference page gives each: the most digits of a
quantity, or of a price, amount or rate before its decimal point. The page prints the lengths of
``pchs_avg_pric`` and ``evlu_pfls_rt`` as "184" and "72", read here as 18.4 and 7.2 (integer and
fraction digits; 18 + 4 and 7 + 2 are the lengths inquire-balance gives the same two fields)."""
BALANCE_DIGITS: Final = {"hldg_qty": 19, "ord_psbl_qty": 19, "pchs_avg_pric": 18, "prpr": 19}
"""inquire-balance's numbers that :class:`~kis_async.models.Position` reads. That page is not in
the reference set: quantities get 19 digits (the widest quantity on the reference page), the
average price 18 as on inquire-psbl-sell, the current price 19 as KIS's amounts."""
