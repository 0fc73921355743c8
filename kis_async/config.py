"""Names the library and the CLI share: the environment variables, and the progress logger."""

from __future__ import annotations

import os
from collections.abc import Collection, Mapping
from typing import Final, Literal, NamedTuple, TypedDict

from yarl import URL

from . import validate
from .corporate import Corporate

ENV_APP_KEY: Final = "KIS_APP_KEY"
ENV_APP_SECRET: Final = "KIS_APP_SECRET"
ENV_ACCOUNT: Final = "KIS_ACCOUNT"
ENV_BASE_URL: Final = "KIS_BASE_URL"
ENV_REDIS_URL: Final = "KIS_REDIS_URL"
ENV_PERSONALSECKEY: Final = "KIS_PERSONALSECKEY"
ENV_PHONE_NUMBER: Final = "KIS_PHONE_NUMBER"
ENV_IP_ADDR: Final = "KIS_IP_ADDR"
ENV_MAC_ADDRESS: Final = "KIS_MAC_ADDRESS"

REQUIRED: Final = (ENV_APP_KEY, ENV_APP_SECRET, ENV_ACCOUNT)
OPTIONAL: Final[dict[str, Literal["base_url", "redis_url"]]] = {
    ENV_BASE_URL: "base_url",
    ENV_REDIS_URL: "redis_url",
}
"""Optional variables and the :class:`~kis_async.KISClient` keyword each one fills (a key of
:class:`Options`, which the type checker holds the two to)."""
CORPORATE: Final = {
    ENV_PERSONALSECKEY: "personalseckey",
    ENV_PHONE_NUMBER: "phone_number",
    ENV_IP_ADDR: "ip_addr",
    ENV_MAC_ADDRESS: "mac_address",
}
"""A partner firm's (제휴사, custtype B) variables and the :class:`~kis_async.Corporate`
keyword each fills; all but the MAC address are required once any is set."""
ALL: Final = (*REQUIRED, *OPTIONAL, *CORPORATE)

PROGRESS_LOGGER: Final = "kis_async.progress"
"""The logger (at INFO) for waits and stages a person should hear about as they start: the
one-token-a-minute wait, another process's token lock, pages of holdings, the pace changing.
The CLI shows it on stderr; a bot may attach a handler of its own. A record of a stage carries
``stage`` (``"token"`` or ``"holdings"``); a record of a wait of known length carries
``wait_s``."""


class Options(TypedDict, total=False):
    """The :class:`~kis_async.KISClient` keywords the environment may fill, each present only
    when its variable is set: typed, so ``KISClient(..., **options)`` is checked as written."""

    base_url: str
    redis_url: str
    corporate: Corporate


class Settings(NamedTuple):
    """What the environment says: the three credentials and any optional client keywords."""

    app_key: str
    app_secret: str
    account: str
    options: Options


class MissingVariablesError(ValueError):
    """Required variables missing or empty: the CLI tells how to set them (``--env-file``),
    which a library caller has no use for."""

    def __init__(self, names: list[str]) -> None:
        super().__init__(f"missing environment variable(s): {', '.join(names)}")
        self.names = names


def from_environ(
    environ: Mapping[str, str] | None = None, *, given: Collection[str] = ()
) -> Settings:
    """Read the variables; :class:`MissingVariablesError` (a ``ValueError``) names every
    required one that is missing or empty.

    ``given`` names required variables the caller has a value for already (``from_env``'s
    keywords), so their absence is no error; they read as ``""`` here.

    Any of the partner-firm variables makes the client a partner firm's (custtype ``B``).
    """
    env = os.environ if environ is None else environ
    corporate = {kw: env[name].strip() for name, kw in CORPORATE.items() if env.get(name, "")}
    required = REQUIRED + ((ENV_PERSONALSECKEY, ENV_PHONE_NUMBER, ENV_IP_ADDR) if corporate else ())
    missing = [n for n in required if n not in given and not env.get(n, "").strip()]
    if missing:
        raise MissingVariablesError(missing)
    options: Options = {}
    for name, keyword in OPTIONAL.items():
        if env.get(name):
            options[keyword] = env[name].strip()
    if corporate:
        options["corporate"] = Corporate(**corporate)
    return Settings(
        env.get(ENV_APP_KEY, ""), env.get(ENV_APP_SECRET, ""), env.get(ENV_ACCOUNT, ""), options
    )


def is_loopback(base_url: str) -> bool:
    """Whether ``base_url`` names this machine (a simulator, never KIS): the CLI then keeps its
    tokens out of the user's token cache, where a local server's would be clutter."""
    try:
        host = URL(base_url).host or ""
    except ValueError:
        return False
    return validate.is_loopback(host)
