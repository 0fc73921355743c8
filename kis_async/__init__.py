"""kis_async: bulk sellable-quantity checks against the KIS Open API, at the exact call limit."""

from importlib.metadata import PackageNotFoundError, version

from .auth import Token
from .batch import Batch, Failed, Outcome, Succeeded
from .client import DEFAULT_TOKEN_CACHE, ClientStats, KISClient
from .clock import Clock
from .corporate import Corporate
from .endpoints import Endpoint, OneRow, Position, RowPage, SellableQuantity
from .errors import (
    AccountError,
    APIError,
    ArgumentError,
    AuthError,
    CallBudgetError,
    ClientClosedError,
    DecodeError,
    KISError,
    ListingChanged,
    PagingError,
    RateLimitError,
    RequestTimeout,
    SameTokenError,
    TokenCacheError,
    TransportError,
    WrongLoopError,
)
from .numbers import amount, quantity, signed
from .pacing import Priority
from .retry import RetryPolicy
from .sells import Sell, SellCheck, SellFailed, SellFits, SellNotHeld, SellShort, Verdict
from .spec import CALLS_PER_SECOND, REAL_HOST
from .tokencache import TokenCache

try:
    __version__ = version("kis-async")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [
    "CALLS_PER_SECOND",
    "DEFAULT_TOKEN_CACHE",
    "REAL_HOST",
    "APIError",
    "AccountError",
    "ArgumentError",
    "AuthError",
    "Batch",
    "CallBudgetError",
    "ClientClosedError",
    "ClientStats",
    "Clock",
    "Corporate",
    "DecodeError",
    "Endpoint",
    "Failed",
    "KISClient",
    "KISError",
    "ListingChanged",
    "OneRow",
    "Outcome",
    "PagingError",
    "Position",
    "Priority",
    "RateLimitError",
    "RequestTimeout",
    "RetryPolicy",
    "RowPage",
    "SameTokenError",
    "Sell",
    "SellCheck",
    "SellFailed",
    "SellFits",
    "SellNotHeld",
    "SellShort",
    "SellableQuantity",
    "Succeeded",
    "Token",
    "TokenCache",
    "TokenCacheError",
    "TransportError",
    "Verdict",
    "WrongLoopError",
    "__version__",
    "amount",
    "quantity",
    "signed",
]
