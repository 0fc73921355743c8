"""Checks on what the caller hands us, done at construction so bad input costs no call.

Every check raises :class:`~kis_async.errors.ArgumentError` (a ``ValueError`` whose
``argument`` names what was refused; ``TypeError`` for a value of the wrong kind) with a message
that names the argument too, and shows a bad value only where it is not a secret.
"""

from __future__ import annotations

import ipaddress
import math
import re
from collections.abc import Iterable, Mapping
from typing import NamedTuple

from yarl import URL

from .errors import ArgumentError

_PDNO = re.compile(r"[0-9A-Z]{1,12}")
_ACCOUNT = re.compile(r"([0-9]{8})-?([0-9]{2})")
_VISIBLE_ASCII = re.compile(r"[\x21-\x7e]+")
_PATH = re.compile(r"/uapi/[A-Za-z0-9_/-]+")
_TR_ID = re.compile(r"[A-Za-z0-9]{1,13}")
_SHOWN_BAD_CODES = 20
KRX_CODE_DIGITS = 6
"""Every all-digit KRX short code has six digits (005930): a shorter one lost its zeros."""


class Account(NamedTuple):
    """An account number split the way KIS wants it: ``CANO`` and ``ACNT_PRDT_CD``."""

    cano: str
    product: str

    def __str__(self) -> str:
        return f"{self.cano}-{self.product}"

    def masked(self) -> str:
        """The account as logs and messages show it: ``50****56-01``."""
        return f"{self.cano[:2]}****{self.cano[-2:]}-{self.product}"

    def redact(self, text: str) -> str:
        """``text`` with the account number, in any of its forms, shown as :meth:`masked`."""
        if self.cano not in text:
            return text
        masked = self.masked()
        for form in (f"{self.cano}-{self.product}", self.cano + self.product):
            text = text.replace(form, masked)
        return text.replace(self.cano, masked.partition("-")[0])


def parse_account(account: str) -> Account:
    """Accept ``"12345678-01"`` or ``"1234567801"``; raise ``ArgumentError`` for anything else."""
    match = _ACCOUNT.fullmatch(account.strip()) if isinstance(account, str) else None
    if match is None:
        raise ArgumentError(
            f"account must look like 12345678-01 or 1234567801, got {shown(account)}",
            argument="account",
        )
    return Account(match[1], match[2])


def normalize_pdno(pdno: str) -> str:
    """Return the ticker stripped and upper-cased; raise ``ValueError`` naming a malformed one.

    An all-digit code shorter than six is refused rather than padded: ``5930`` is no KRX code,
    and a library guessing what its caller meant would hide the spreadsheet that dropped the
    zeros. The message names the padded code, which is nearly always what was meant.
    """
    if isinstance(pdno, str):
        code = pdno.strip()
        if code.isascii() and _PDNO.fullmatch(code := code.upper()):
            if code.isdigit() and len(code) < KRX_CODE_DIGITS:
                raise ArgumentError(
                    f"ticker {code!r} has fewer than {KRX_CODE_DIGITS} digits; "
                    f"did you mean {code.zfill(KRX_CODE_DIGITS)}?",
                    argument="pdno",
                )
            return code
    raise ArgumentError(
        f"ticker must be 1-12 ASCII letters or digits, got {shown(pdno)}", argument="pdno"
    )


def normalize_pdnos(pdnos: Iterable[str]) -> list[str]:
    """Normalize a batch and drop repeats, keeping first-seen order.

    Every malformed code is named in one ``ValueError``, so a caller fixes its list in one pass.
    """
    if isinstance(pdnos, str):
        raise TypeError("pass a list of tickers, not one string")
    seen: dict[str, None] = {}
    bad: list[str] = []
    for pdno in pdnos:
        try:
            seen.setdefault(normalize_pdno(pdno), None)
        except ValueError:
            bad.append(shown(pdno) + _suggestion(pdno))
    if bad:
        listed = ", ".join(bad[:_SHOWN_BAD_CODES])
        if len(bad) > _SHOWN_BAD_CODES:
            listed += f" and {len(bad) - _SHOWN_BAD_CODES} more"
        raise ArgumentError(
            f"{len(bad)} malformed ticker(s); each must be 1-12 ASCII letters or digits "
            f"(six if all digits): {listed}",
            argument="pdnos",
        )
    return list(seen)


def _suggestion(pdno: object) -> str:
    """`` (did you mean 005930?)`` for a code that lost its leading zeros, else nothing."""
    code = pdno.strip() if isinstance(pdno, str) else ""
    if code.isascii() and code.isdigit() and len(code) < KRX_CODE_DIGITS:
        return f" (did you mean {code.zfill(KRX_CODE_DIGITS)}?)"
    return ""


def checked_key(name: str, value: str, *, max_length: int) -> str:
    """An appkey or appsecret: visible ASCII, as KIS issues them. The value is never shown.

    A CR or LF here would otherwise fail late, inside the HTTP layer, on every call.
    """
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__}")
    value = value.strip()
    if not value:
        raise ArgumentError(f"{name} must be a non-empty string", argument=name)
    if not _VISIBLE_ASCII.fullmatch(value):
        raise ArgumentError(
            f"{name} must be printable ASCII without spaces or control characters", argument=name
        )
    if len(value) > max_length:
        raise ArgumentError(
            f"{name} is {len(value)} characters; KIS issues at most {max_length}", argument=name
        )
    return value


def checked_base_url(base_url: str) -> str:
    """``https://host[:port]``, or ``http://`` on a loopback address (the embedded simulator).

    No credentials, path, query or fragment: every request path is appended to it. A password
    in a refused URL is not repeated in the message.
    """
    try:
        url = URL(base_url) if isinstance(base_url, str) else None
    except ValueError:
        url = None
    if url is not None and url.is_absolute() and url.host:
        secure = url.scheme == "https" or (url.scheme == "http" and is_loopback(url.host))
        plain = not (url.user or url.password or url.query_string or url.fragment)
        if secure and plain and url.path in ("", "/"):
            return str(url.origin())
    refused = shown(base_url)
    if url is not None and url.password:
        refused = shown(str(url.with_password("***")))
    raise ArgumentError(
        "base_url must be https://host[:port] (or http:// on a loopback address) with no "
        f"credentials, path or query, got {refused}",
        argument="base_url",
    )


def checked_path(path: str) -> str:
    """An API path on ``base_url``: ``/uapi/...``, letters, digits, ``-``, ``_`` and ``/`` only.

    Anything else (``@host``, ``//host``, ``..``, a full URL) could send the keys elsewhere.
    """
    if not isinstance(path, str) or not _PATH.fullmatch(path) or "//" in path:
        raise ArgumentError(
            f"path must look like /uapi/domestic-stock/v1/..., got {shown(path)}", argument="path"
        )
    return path


def checked_tr_id(tr_id: str) -> str:
    """A KIS transaction id: up to 13 ASCII letters and digits, like ``FHKST01010100``."""
    if not isinstance(tr_id, str) or not _TR_ID.fullmatch(tr_id):
        raise ArgumentError(
            f"tr_id must be 1-13 ASCII letters or digits, got {shown(tr_id)}", argument="tr_id"
        )
    return tr_id


def checked_params(params: Mapping[str, str]) -> Mapping[str, str]:
    """Query parameters: string names and string values (KIS takes every value as text)."""
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of str to str, got {type(params).__name__}")
    for name, value in params.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise TypeError(f"params must map str to str; {name!r} maps to {shown(value)}")
    return params


def checked_custtype(custtype: str) -> str:
    """``P`` (individuals and ordinary corporations) or ``B`` (partner firms, 제휴사)."""
    if custtype not in ("P", "B"):
        raise ArgumentError(
            "custtype must be 'P' (individuals and ordinary corporations) or 'B' (partner "
            f"firms, 제휴사), got {custtype!r}",
            argument="custtype",
        )
    return custtype


def positive(name: str, value: float, *, at_most: float = math.inf) -> float:
    """A finite number of seconds or calls above zero (and at most ``at_most``)."""
    number = _real(name, value)
    if not 0 < number <= at_most or not math.isfinite(number):
        bound = f" and at most {at_most:g}" if math.isfinite(at_most) else ""
        raise ArgumentError(
            f"{name} must be a finite number above 0{bound}, got {value!r}", argument=name
        )
    return number


def non_negative(name: str, value: float, *, below: float = math.inf) -> float:
    """A finite number at least zero (and below ``below``)."""
    number = _real(name, value)
    if not 0 <= number < below or not math.isfinite(number):
        bound = f" and below {below:g}" if math.isfinite(below) else ""
        raise ArgumentError(
            f"{name} must be a finite number at least 0{bound}, got {value!r}", argument=name
        )
    return number


def count(name: str, value: int, *, minimum: int, maximum: int) -> int:
    """A whole number within bounds; ``True`` is not a count."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if not minimum <= value <= maximum:
        raise ArgumentError(
            f"{name} must be between {minimum} and {maximum}, got {value}", argument=name
        )
    return value


def _real(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a URL's host, brackets allowed) is this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def shown(value: object) -> str:
    """A refused value as a message shows it: its ``repr``, cut to 40 characters, so a huge or
    multi-line argument makes neither a huge message nor a line break in it."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
