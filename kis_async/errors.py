"""The exceptions kis_async raises, arranged so a bot can catch them by meaning.

::

    KISError
    ├── APIError            KIS answered with an error envelope (rt_cd != "0")
    │   ├── AuthError       credentials or token refused; retrying will not help
    │   │   └── SameTokenError  a refused token KIS keeps handing back (its 6-hour rule)
    │   ├── AccountError    the account number refused for this appkey
    │   └── RateLimitError  EGW00201 persisted through every retry (also a CallBudgetError)
    ├── CallBudgetError     the call budget had no room for the call: KIS's (RateLimitError),
    │                       or the one shared through Redis, booked too far ahead
    ├── TransportError      no usable answer: connection, 5xx page, retries exhausted
    │   ├── RequestTimeout  the per-request timeout fired
    │   └── ClientClosedError  the KISClient was closed before the call could be sent
    ├── DecodeError         the answer arrived but is not what KIS documents
    │   └── PagingError     a paged inquiry that does not end, or cannot be followed
    │       └── ListingChanged  its data changed between pages (SYDB0050)
    ├── TokenCacheError     the token cache is unsafe to use, or its lock held too long
    └── WrongLoopError      a call from an event loop other than the client's (a RuntimeError)

Only what KIS sent is an :class:`APIError`: its fields are the envelope KIS answered with, never
made up. A condition kis_async judges itself (the shared budget full, the client closed) has a
class of its own, and says what happened in words rather than in an HTTP status.

:class:`ArgumentError` is apart from the tree: a ``ValueError`` raised before any request, naming
the argument that was refused.

Every error has ``reason`` (what happened, without the ticker) and ``pdno`` (the ticker, if
any); ``str(error)`` is both. Messages carry what a user needs to act (code, message, HTTP status,
tr_id, ticker) and never the appsecret or the token: nothing secret is ever passed into an
exception.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from .spec import KST

Source = Literal["api", "token", "redis"]
"""What a :class:`TransportError` could not get an answer from."""
_SOURCE_PREFIX: dict[Source, str] = {"token": "token endpoint: "}
"""How a reason names where it happened, when the API itself is not the place."""


class KISError(Exception):
    """Base of every error kis_async raises on purpose.

    ``reason`` says what went wrong; ``pdno`` names the ticker, if the error is about one.
    """

    reason: str
    pdno: str | None

    def __init__(self, reason: str, *, pdno: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.pdno = pdno

    def __str__(self) -> str:
        return f"{self.reason} (pdno {self.pdno})" if self.pdno else self.reason

    def __bool__(self) -> Literal[True]:
        """Always true, and typed so: a type checker then narrows on ``if outcome.error:``
        (see :data:`kis_async.batch.Outcome`), which it cannot for a class a subclass might
        make falsy."""
        return True

    def __reduce__(self) -> tuple[Any, ...]:
        """Copy and pickle by attributes: subclasses take keyword-only arguments."""
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(kind: type[KISError], args: tuple[Any, ...], state: dict[str, Any]) -> KISError:
    error = kind.__new__(kind)
    error.args = args
    error.__dict__.update(state)
    return error


class APIError(KISError):
    """KIS refused the call with its error envelope. Not retried unless the code is transient."""

    def __init__(
        self,
        *,
        rt_cd: str,
        msg_cd: str,
        msg1: str,
        status: int,
        tr_id: str | None = None,
        pdno: str | None = None,
    ) -> None:
        where = f"HTTP {status}" + (f", tr_id {tr_id}" if tr_id else "")
        super().__init__(f"[{msg_cd or rt_cd}] {msg1.strip()} ({where})", pdno=pdno)
        self.rt_cd = rt_cd
        self.msg_cd = msg_cd
        self.msg1 = msg1
        self.status = status
        self.tr_id = tr_id


class AuthError(APIError):
    """The appkey/appsecret or the access token was refused, or no token could be issued."""


class SameTokenError(AuthError):
    """KIS refuses the access token yet hands the same one back when asked for a new one, even
    after it was revoked: KIS re-issues one token for 6 hours after an issuance.

    ``until`` (epoch seconds) is when a new token can be issued, at the latest; until then the
    client asks for none, since each asking texts the account holder. The envelope fields are
    KIS's refusal of the token. When this process saw no refusal itself (another process sharing
    the token store marked the token dead), only ``msg_cd`` is known: ``msg1`` is empty and
    ``status`` 0, and the message says so instead of an HTTP status.
    """

    def __init__(
        self,
        *,
        rt_cd: str,
        msg_cd: str,
        msg1: str,
        status: int,
        until: float,
        tr_id: str | None = None,
        pdno: str | None = None,
    ) -> None:
        super().__init__(
            rt_cd=rt_cd, msg_cd=msg_cd, msg1=msg1, status=status, tr_id=tr_id, pdno=pdno
        )
        when = datetime.fromtimestamp(until, KST).strftime("%Y-%m-%d %H:%M KST")
        refused = f"HTTP {status}" if status else "seen by another process sharing the token"
        KISError.__init__(
            self,
            f"[{msg_cd}] KIS refuses the access token ({refused}) yet hands the same one back "
            "when asked for a new one, even after revoking it: KIS re-issues one token for 6 "
            f"hours after an issuance. No token is asked for again until about {when}",
            pdno=pdno,
        )
        self.until = until


class AccountError(APIError):
    """KIS refused the account number (``INVALID_CHECK_ACNO``): not this appkey's, or mistyped.

    Nothing about the ticker; every call with this account will get the same answer.
    """


class CallBudgetError(KISError):
    """The call budget had no room for this call, so it was not answered.

    Catch this one to back off whoever said so: KIS, refusing the call rate on every retry (a
    :class:`RateLimitError`, with KIS's envelope), or kis_async itself, when the budget shared
    through Redis is booked further ahead than its ``max_wait`` (then nothing was sent, and
    there is no envelope: the error is this class itself).
    """


class RateLimitError(APIError, CallBudgetError):
    """KIS kept answering EGW00201 (the appkey's per-second limit), or EGW00215 (the account
    ledger's), after every retry."""


class TransportError(KISError):
    """No usable answer arrived: the connection failed, or a proxy sent a non-KIS error page.

    ``source`` says what could not be reached: ``"api"`` (an API call), ``"token"`` (the token
    endpoint) or ``"redis"`` (the shared pacer or token store). ``detail`` is what went wrong,
    and ``reason`` the same, naming the token endpoint when that is where it went wrong.
    ``status`` is the HTTP status of an answer that came but could not be used; ``0`` for an
    answer whose status line or headers were malformed (the host was reached, and answered
    something that is not HTTP), ``None`` when no answer came.
    """

    def __init__(
        self,
        detail: str,
        *,
        status: int | None = None,
        pdno: str | None = None,
        source: Source = "api",
    ) -> None:
        super().__init__(_SOURCE_PREFIX.get(source, "") + detail, pdno=pdno)
        self.detail = detail
        self.status = status
        self.source: Source = source


class RequestTimeout(TransportError):
    """The per-request timeout fired on every try."""


class ClientClosedError(TransportError):
    """The :class:`~kis_async.KISClient` was closed before this call's next try could be sent.

    Every call still waiting for the pacer when the client closes ends this way, as does every
    call made after it closed; no fault of the network or of KIS, so nothing the set-up must fix.
    """

    def __init__(self, *, pdno: str | None = None, source: Source = "api") -> None:
        super().__init__("the KISClient was closed before this call", pdno=pdno, source=source)


class DecodeError(KISError):
    """A response arrived but does not match the documented shape; ``field`` names the culprit."""

    def __init__(self, reason: str, *, field: str | None = None, pdno: str | None = None) -> None:
        super().__init__(reason, pdno=pdno)
        self.field = field


class PagingError(DecodeError):
    """A paged inquiry repeated its continuation key, sent one that cannot be echoed, or ran
    past its page bound."""


class ListingChanged(PagingError):
    """KIS answered a next-page request with SYDB0050: the data changed since the first page,
    so the pages read so far may not fit together. Ask again from the first page."""


class TokenCacheError(KISError):
    """The token cache is unsafe to use (readable by others, someone else's, not a regular file,
    in a folder others can write to), or another process has held its lock too long."""


class WrongLoopError(KISError, RuntimeError):
    """A call made on an event loop other than the one that opened the client (``async with``).

    The client's pacer, token lock and session belong to that loop: a call from another (a
    second thread with its own ``asyncio.run``) would wait on them for a wake-up that never
    comes, so it is refused at once. A ``RuntimeError``, as misuse is; a ``KISError`` too, so a
    batch keeps it as each ticker's error, with this message, rather than an unexpected one.
    """

    def __init__(self, *, pdno: str | None = None) -> None:
        super().__init__(
            "this KISClient was opened on another event loop: use a client only on the loop "
            "that opened it (async with); each thread running its own loop needs a KISClient "
            "of its own",
            pdno=pdno,
        )


class ArgumentError(ValueError):
    """An argument refused before any request; ``argument`` names it, as the caller spelled it.

    A ``ValueError``, so ``except ValueError`` catches it; a program that wants to say which of
    its own inputs was wrong (the command line names the environment variable) reads
    ``argument`` rather than the message. The message names the argument too, and shows its
    value only when that is not a secret.
    """

    def __init__(self, message: str, *, argument: str) -> None:
        super().__init__(message)
        self.argument = argument
