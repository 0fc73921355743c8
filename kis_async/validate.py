"""Checks on what the caller hands us, done before any request so bad input costs no call."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import NamedTuple

_PDNO = re.compile(r"[0-9A-Z]{1,12}")
_ACCOUNT = re.compile(r"([0-9]{8})-?([0-9]{2})")


class Account(NamedTuple):
    """An account number split the way KIS wants it: ``CANO`` and ``ACNT_PRDT_CD``."""

    cano: str
    product: str

    def __str__(self) -> str:
        return f"{self.cano}-{self.product}"


def parse_account(account: str) -> Account:
    """Accept ``"12345678-01"`` or ``"1234567801"``; raise ``ValueError`` for anything else."""
    match = _ACCOUNT.fullmatch(account.strip()) if isinstance(account, str) else None
    if match is None:
        raise ValueError(f"account must look like 12345678-01 or 1234567801, got {_shown(account)}")
    return Account(match[1], match[2])


def normalize_pdno(pdno: str) -> str:
    """Return the ticker stripped and upper-cased; raise ``ValueError`` naming a malformed one."""
    if isinstance(pdno, str):
        code = pdno.strip()
        if code.isascii() and _PDNO.fullmatch(code := code.upper()):
            return code
    raise ValueError(f"ticker must be 1-12 ASCII letters or digits, got {_shown(pdno)}")


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
            bad.append(_shown(pdno))
    if bad:
        listed = ", ".join(bad[:20]) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise ValueError(
            f"{len(bad)} malformed ticker(s); each must be 1-12 ASCII letters or digits: {listed}"
        )
    return list(seen)


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
