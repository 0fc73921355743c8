"""kis_async: bulk sellable-quantity checks against the KIS Open API, at the exact call limit."""

from .auth import Token, TokenCache
from .batch import Batch, Outcome
from .client import DEFAULT, KISClient
from .errors import (
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
from .spec import CALLS_PER_SECOND, REAL_HOST
from .throttle import Throttle

__all__ = [
    "CALLS_PER_SECOND",
    "DEFAULT",
    "REAL_HOST",
    "APIError",
    "AuthError",
    "Batch",
    "DecodeError",
    "KISClient",
    "KISError",
    "Outcome",
    "PagingError",
    "Position",
    "RateLimitError",
    "RequestTimeout",
    "SellableQuantity",
    "Throttle",
    "Token",
    "TokenCache",
    "TokenCacheError",
    "TransportError",
]
__version__ = "0.1.0"
