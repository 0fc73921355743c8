"""The embedded KIS simulator: KIS has no paper-trading endpoint for inquire-psbl-sell.

``async with Simulator() as sim:`` serves the sample portfolio on loopback at the real 20 calls/s;
point a :class:`~kis_async.KISClient` at ``sim.url`` with :data:`DEMO_APP_KEY`,
:data:`DEMO_APP_SECRET` and :data:`DEMO_ACCOUNT`. :class:`SimulatorConfig` makes it as unkind as
KIS can be (network jitter before the call is counted, a lower limit than the client was told,
another program on the same appkey), and :data:`HOSTILE` faults answer as a proxy, a captive
portal or a buggy gateway would; :data:`REFUSALS` are KIS's own refusal codes, served on demand;
:class:`Stats` says what arrived and when. It answers in the dialect the live service speaks
(``SimulatorConfig.dialect``). Nothing the client needs imports this package: only the command
line does, for ``kis-async demo`` and ``kis-async simulator``.
"""

from .portfolio import KRX_NAMES, UNKNOWN_TICKERS, Holding, sample_portfolio
from .server import (
    DEMO_ACCOUNT,
    DEMO_APP_KEY,
    DEMO_APP_SECRET,
    DEMO_PERSONALSECKEY,
    HOSTILE,
    ORDINARY,
    REFUSALS,
    TOKEN_FAULTS,
    Fault,
    SimAccount,
    Simulator,
    SimulatorConfig,
    Stats,
    demo_accounts,
)

__all__ = [
    "DEMO_ACCOUNT",
    "DEMO_APP_KEY",
    "DEMO_APP_SECRET",
    "DEMO_PERSONALSECKEY",
    "HOSTILE",
    "KRX_NAMES",
    "ORDINARY",
    "REFUSALS",
    "TOKEN_FAULTS",
    "UNKNOWN_TICKERS",
    "Fault",
    "Holding",
    "SimAccount",
    "Simulator",
    "SimulatorConfig",
    "Stats",
    "demo_accounts",
    "sample_portfolio",
]
