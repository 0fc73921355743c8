"""What KIS defines across its API: hosts, the token path, limits and message codes, named in one
place. Each inquiry's own path, tr_id and answer are declared in :mod:`kis_async.endpoints`.

The client reads these, and the simulator reads them where it plays KIS's side of the same fact:
that keeps each fact in one place, but does not make it right (a wrong value here would pass by
agreeing with itself), which is what the tests' fixtures, written out as KIS sends them, are for.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta, timezone
from types import MappingProxyType
from typing import Final

REAL_HOST: Final = "https://openapi.koreainvestment.com:9443"
PAPER_HOST: Final = "https://openapivts.koreainvestment.com:29443"
"""Paper trading (모의투자). KIS does not serve inquire-psbl-sell there."""

TOKEN_PATH: Final = "/oauth2/tokenP"
REVOKE_PATH: Final = "/oauth2/revokeP"
"""Revokes a token: the one way to make KIS mint a new one within :data:`SAME_TOKEN_WINDOW`."""
MORE_PAGES: Final = frozenset({"F", "M"})
"""Response ``tr_cont`` values that mean another page follows (``D``/``E``: the last)."""
NEXT_PAGE: Final = "N"
"""Request ``tr_cont`` asking for the next page."""

CALLS_PER_SECOND: Final = 20
"""Real accounts: calls per second per appkey."""
TOKEN_ISSUE_INTERVAL: Final = 60.0
"""Seconds KIS requires between two token issuances for one appkey."""
SAME_TOKEN_WINDOW: Final = 6 * 3600.0
"""Asking again this soon after an issuance returns the same token: reportedly even one the API
refuses (EGW00121), until it is revoked."""

APP_KEY_MAX_LENGTH: Final = 36
APP_SECRET_MAX_LENGTH: Final = 180
"""Header lengths on the reference page: longer cannot be a key KIS issued."""
QUANTITY_DIGITS: Final = 19
"""The widest quantity field KIS documents (``cblc_qty``, 19 digits): no order can ask more."""
TOKEN_MAX_LENGTH: Final = 1024
"""A sanity bound on a token from the token endpoint (the reference page allows 350 for the
whole authorization header; this leaves room should KIS grow it)."""

TOKEN_MAX_LIFETIME: Final = 92 * 86400.0
"""The longest a token can live: KIS documents a day for individuals and three months for partner
firms. A longer ``expires_in`` is clamped to it, and a stored token claiming longer is not used."""
CLOCK_TOLERANCE: Final = 300.0
"""Seconds a stored token's ``issued_at`` may be ahead of this host's clock (hosts sharing a store
disagree a little) before it is taken for a skewed clock's and not believed."""

KST: Final = timezone(timedelta(hours=9), "KST")
"""``access_token_token_expired`` is Korean wall-clock time; Korea keeps no DST."""
EXPIRY_FORMAT: Final = "%Y-%m-%d %H:%M:%S"

RT_OK: Final = "0"
RT_FAILED: Final = "1"
"""The ``rt_cd`` KIS sends with an error (any value but :data:`RT_OK` is a failure)."""

RATE_LIMITED: Final = "EGW00201"
"""Per-second limit exceeded. Transient."""
TOKEN_EXPIRED: Final = "EGW00123"
"""The token has expired."""
TOKEN_INVALID: Final = "EGW00121"
"""The token is not valid (revoked, or cached from elsewhere)."""
TOKEN_ISSUE_TOO_SOON: Final = "EGW00133"
"""A token was issued for the appkey under a minute ago."""
BAD_APPKEY: Final = "EGW00103"
"""Wrong appkey/appsecret. Permanent."""
BAD_APPSECRET: Final = "EGW00105"
"""Wrong appsecret. Permanent."""

ACCOUNT_REFUSED: Final = "OPSQ2000"
"""ERROR : INPUT INVALID_CHECK_ACNO at the gateway: the account is not one this appkey may use
(reported by users; APBK0917 carries the same message from the back end)."""
ACCOUNT_REFUSED_MARK: Final = "INVALID_CHECK_ACNO"
QUERY_REFUSED: Final = "OPSQ2001"
"""A query parameter KIS refuses (e.g. ``INQR_DVSN=02`` since 2026-02); ``rt_cd`` "2"."""
LEDGER_LIMITED: Final = "EGW00215"
"""More calls per second than the account ledger allows (reported by users in 2026, about one a
second per account across ledger inquiries such as inquire-balance). Transient."""
LEDGER_CALLS_PER_SECOND: Final = 1.0
"""The ledger limit one project measured (TTTC8434R, TTTC8001R and TTTC8036R together, per
account): where a ledger pace starts once a tr_id draws EGW00215."""
DATA_CHANGED: Final = "SYDB0050"
"""The data changed since the first page: ask again from the start (``rt_cd`` "7")."""
APPSECRET_REFUSED: Final = "EGW00304"
"""An API call's appsecret is not the appkey's (HTTP 500); tokenP says EGW00105."""
PRODUCT_MISMATCH: Final = "APBK1271"
"""The account product code does not match the account (reported on inquire-balance)."""
NOT_CONSIGNMENT: Final = "APAC0489"
"""Only 위탁 (consignment) accounts can be queried (reported on inquire-balance)."""
NOT_PAPER_APPKEY: Final = "EGW02007"
"""A real-trading appkey sent to the paper host, which still issues it a token."""
RT_CODES: Final[Mapping[str, str]] = MappingProxyType(
    {ACCOUNT_REFUSED: "2", QUERY_REFUSED: "2", DATA_CHANGED: "7"}
)
"""The ``rt_cd`` KIS sends with these codes; every other refusal comes with :data:`RT_FAILED`."""

MESSAGES: Final[Mapping[str, str]] = MappingProxyType(
    {
        RATE_LIMITED: "초당 거래건수를 초과하였습니다.",
        TOKEN_EXPIRED: "기간이 만료된 token 입니다.",
        TOKEN_INVALID: "유효하지 않은 token 입니다.",
        TOKEN_ISSUE_TOO_SOON: "접근토큰 발급 잠시 후 다시 시도하세요(1분당 1회)",
        BAD_APPKEY: "유효하지 않은 AppKey입니다.",
        BAD_APPSECRET: "유효하지 않은 AppSecret입니다.",
        ACCOUNT_REFUSED: "ERROR : INPUT INVALID_CHECK_ACNO",
        QUERY_REFUSED: "ERROR : INPUT INVALID_CHECK_INQR_DVSN",
        LEDGER_LIMITED: "원장에서 허용 가능한 초당 거래건수를 초과하였습니다.",
        DATA_CHANGED: "조회이후에 자료가 변경되었습니다.(다시 조회하세요)",
        NOT_PAPER_APPKEY: "모의투자용 앱키가 아닙니다",
    }
)
"""The ``msg1`` KIS sends with each of its codes above, as its users recorded them (the texts of
EGW00304, APBK1271 and APAC0489 were not recorded)."""

STALE_TOKEN_CODES: Final = frozenset({TOKEN_EXPIRED, TOKEN_INVALID})
CREDENTIAL_CODES: Final = frozenset(
    {BAD_APPKEY, BAD_APPSECRET, APPSECRET_REFUSED, NOT_PAPER_APPKEY}
)
"""The appkey, its appsecret or the host it was sent to refused: permanent, an AuthError."""
ACCOUNT_CODES: Final = frozenset({ACCOUNT_REFUSED, "APBK0917", PRODUCT_MISMATCH, NOT_CONSIGNMENT})
"""The account refused for this appkey or this inquiry: permanent, an AccountError."""
GATEWAY_ERROR_CODES: Final = frozenset(
    {RATE_LIMITED, LEDGER_LIMITED, TOKEN_ISSUE_TOO_SOON, *STALE_TOKEN_CODES, *CREDENTIAL_CODES}
)
"""The gateway's refusals: an answer carrying one of these is an error, whatever its
``rt_cd`` says (success answers carry codes such as ``KIOK0510`` or ``APBK0013``)."""
