"""What a partner firm (제휴사, custtype ``B``) sends with every call.

custtype ``P`` covers individuals *and* ordinary corporations; ``B`` means a partner firm whose
app serves its own members (KIS's own sample code says so). The reference page marks
``personalseckey`` (고객식별키), ``seq_no``, ``phone_number`` and ``ip_addr`` ``[법인 필수]``,
required for such customers, and ``gt_uid`` (a Global UID, up to 32 characters, unique per
transaction) as theirs alone; ``mac_address`` is optional. Without them KIS refuses a partner
firm's every call. The class keeps the reference page's word, ``Corporate``.

Not implemented: a partner firm's tokens come from an authorization-code grant (3-month access,
1-year refresh token) whose refresh parameters KIS has not published; the client asks for the
``client_credentials`` token as for everyone else.

``personalseckey`` is a secret like the appsecret: it is checked here and then only ever sent to
``base_url``; no repr, message, log line or cache file holds it.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Mapping
from typing import Final

from . import validate
from .errors import ArgumentError

SEQ_NO: Final = "001"
"""The reference page's value for ``seq_no`` (its table says length 2; the value has 3)."""
REQUIRED_HEADERS: Final = ("personalseckey", "seq_no", "phone_number", "ip_addr", "gt_uid")
"""What the reference page requires of a partner firm's call (custtype B): what
:meth:`Corporate.headers` and :func:`with_gt_uid` send, and what the simulator checks."""
PERSONALSECKEY_MAX_LENGTH: Final = 180
_PHONE = re.compile(r"[0-9]{9,12}")
_MAC = re.compile(r"[0-9A-F]{12}")


class Corporate:
    """A partner firm's (제휴사, custtype ``B``) identification of its member, sent with every
    API call of a client. Ordinary corporations are custtype ``P`` and need none of it.

    :param personalseckey: 고객식별키, the partner firm's key for its member (secret; at most 180
        visible ASCII characters).
    :param phone_number: the member's mobile number, digits only (``01011112222``); hyphens and
        blanks are removed.
    :param ip_addr: the member's public IP address (IPv4 or IPv6).
    :param mac_address: optional; 12 hex digits, with or without ``:``/``-`` separators.

    Every argument is checked here, so a mistake is an :class:`~kis_async.ArgumentError` (a
    ``ValueError``) naming it before any call.
    """

    __slots__ = ("_personalseckey", "ip_addr", "mac_address", "phone_number")

    def __init__(
        self,
        *,
        personalseckey: str,
        phone_number: str,
        ip_addr: str,
        mac_address: str | None = None,
    ) -> None:
        self._personalseckey = validate.checked_key(
            "personalseckey", personalseckey, max_length=PERSONALSECKEY_MAX_LENGTH
        )
        self.phone_number = _phone(phone_number)
        self.ip_addr = _ip(ip_addr)
        self.mac_address = None if mac_address is None else _mac(mac_address)

    def headers(self) -> dict[str, str]:
        """The headers that are the same on every call (``gt_uid`` is not: see :func:`gt_uid`)."""
        fixed = {
            "personalseckey": self._personalseckey,
            "seq_no": SEQ_NO,
            "phone_number": self.phone_number,
            "ip_addr": self.ip_addr,
        }
        if self.mac_address is not None:
            fixed["mac_address"] = self.mac_address
        return fixed

    def secrets(self) -> tuple[str, ...]:
        """What no message may carry (:mod:`kis_async.redaction`): the personalseckey."""
        return (self._personalseckey,)

    def __repr__(self) -> str:
        return (
            f"Corporate(personalseckey=<redacted>, phone_number={self.phone_number[:3]}****, "
            f"ip_addr={self.ip_addr!r})"
        )


def gt_uid() -> str:
    """A fresh Global UID: 32 hex characters, unique per transaction.

    A retry is a new transaction (KIS saw the first try, or may have), so it gets a new one too.
    """
    return uuid.uuid4().hex


def with_gt_uid(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` plus a fresh ``gt_uid``."""
    return {**headers, "gt_uid": gt_uid()}


def _phone(value: str) -> str:
    digits = value.replace("-", "").replace(" ", "") if isinstance(value, str) else ""
    if not _PHONE.fullmatch(digits):
        raise ArgumentError(
            "phone_number must be 9-12 digits, like 01011112222", argument="phone_number"
        )
    return digits


def _ip(value: str) -> str:
    """An IPv4 or IPv6 address without a zone id (``fe80::1%eth0``).

    A zone id names a link on the sending host, so it is never part of the public address KIS
    asks for; ``ipaddress`` accepts any text after the ``%`` (a line break, 200 KB), which would
    otherwise fail every call late, inside the HTTP layer. Refusing them all leaves nothing to
    bound.
    """
    text = value.strip() if isinstance(value, str) else "-"
    if "%" in text:
        raise ArgumentError(
            f"ip_addr must be an address without a zone id (the part after %), got "
            f"{validate.shown(value)}",
            argument="ip_addr",
        )
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ArgumentError(
            f"ip_addr must be an IPv4 or IPv6 address, got {validate.shown(value)}",
            argument="ip_addr",
        ) from None


def _mac(value: str) -> str:
    hexdigits = value.replace(":", "").replace("-", "").upper() if isinstance(value, str) else ""
    if not _MAC.fullmatch(hexdigits):
        raise ArgumentError(
            f"mac_address must be 12 hex digits, got {validate.shown(value)}",
            argument="mac_address",
        )
    return hexdigits
