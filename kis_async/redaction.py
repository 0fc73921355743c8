"""What of the server's own text an error may carry: never the client's secrets.

KIS's messages (``msg1``, ``error_description``) go into exceptions, logs and the command line's
output. A gateway that echoes the request (a proxy's error page, a misconfigured or hostile
server) could quote the appsecret, the token or a partner firm's personalseckey there; each is
replaced by ``***`` before the message is kept anywhere. The account number is masked apart
(:meth:`kis_async.validate.Account.redact`), after this, so that masking a run of digits inside
a secret cannot leave the rest of it unrecognised.
"""

from __future__ import annotations

from collections.abc import Iterable

HIDDEN = "***"


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every one of ``secrets`` in it replaced by :data:`HIDDEN`."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, HIDDEN)
    return text
