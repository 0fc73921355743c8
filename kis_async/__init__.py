"""kis_async: bulk sellable-quantity checks against the KIS Open API, at the exact call limit."""

from importlib.metadata import PackageNotFoundError, version

from .auth import Token
from .batch import Batch, Outcome
from .client import DEFAULT_TOKEN_CACHE, ClientStats, KISClient
from .clock import Clock
from .corporate import Corporate
from .errors import (
    AccountError,
    APIError,
    AuthError,
    DecodeError,
    KISError,
    PagingError,
    RateLimitError,
    RequestTimeout,
    TokenCacheError,
    TransportError,
)
from .models import Position, SellableQuantity
from .retry import RetryPolicy
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
    "AuthError",
    "Batch",
    "ClientStats",
    "Clock",
    "Corporate",
    "DecodeError",
    "KISClient",
    "KISError",
    "Outcome",
    "PagingError",
    "Position",
    "RateLimitError",
    "RequestTimeout",
    "RetryPolicy",
    "SellableQuantity",
    "Token",
    "TokenCache",
    "TokenCacheError",
    "TransportError",
    "__version__",
]
