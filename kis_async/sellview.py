"""How the command line shows ``check --sells``: one row per intended sell, with its verdict.

The verdicts are :mod:`kis_async.sells`'s, judged here from what each :class:`~kis_async.render.Run`
gathered (its tickers' answers and errors, and when each answer came), so a run cut short by
Ctrl-C shows every order whose ticker was answered, judged on all of that ticker's orders. Every
row carries its account (masked): these runs may span several. The text rules are
:mod:`kis_async.render`'s: server text escaped, CSV cells never a formula.
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from typing import Any

from .errors import APIError, KISError
from .render import (
    Run,
    aligned,
    csv_cell,
    error_cells,
    failures,
    headline,
    json_text,
    learned,
    printable,
    stopped,
    timing,
)
from .sells import Answered, SellCheck, judge

_COLUMNS = ("ticker", "name", "verdict", "sell", "short", "sellable", "held", "sold today")
_CSV_FIELDS = (
    "account",
    "pdno",
    "prdt_name",
    "qty",
    "verdict",
    "shortfall",
    "ord_psbl_qty",
    "cblc_qty",
    "sll_qty",
    "asked_before",
    "answered_at",
    "error",
    "error_class",
    "msg_cd",
)
_SHOWN = {"ok": "ok", "short": "short", "not_held": "not held", "error": "error"}


def checks(run: Run, pdno: str | None = None) -> list[SellCheck]:
    """The verdicts of ``run``'s orders whose ticker has an outcome (only ``pdno``'s, if
    given), in input order."""
    if run.sells is None:
        return []
    if pdno is not None:  # one ticker's, as its answer comes: never the whole list again
        answer = _answer(run, pdno)
        return [] if answer is None else judge(run.orders_of.get(pdno, []), {pdno: answer})
    answers: dict[str, Answered | KISError] = dict(run.batch.errors)
    for code, quantity in run.batch.results.items():
        answers[code] = Answered(quantity, run.answered_at[code])
    return judge([s for s in run.sells if s.pdno in answers], answers)


def _answer(run: Run, pdno: str) -> Answered | KISError | None:
    """``pdno``'s answer (and when it came) or error; ``None`` before either."""
    error = run.batch.errors.get(pdno)
    if error is not None:
        return error
    quantity = run.batch.results.get(pdno)
    return None if quantity is None else Answered(quantity, run.answered_at[pdno])


def account(run: Run) -> str | None:
    """The account a run's rows name: its label, else the masked account it checked."""
    if run.label is not None:
        return run.label
    return run.setup.account if run.setup is not None else None


def table(runs: list[Run]) -> str:
    """One aligned row per order (an account column in front when there are several
    accounts), then the tickers whose check failed, with the reasons."""
    shown = [run for run in runs if stopped(run) is None]
    labelled = len(runs) > 1 or runs[0].label is not None
    rows = [
        [*([account(run) or ""] if labelled else []), *_row(check)]
        for run in shown
        for check in checks(run)
    ]
    out = io.StringIO()
    if rows:
        header = [*(["account"] if labelled else []), *_COLUMNS]
        out.write(aligned([header, *rows], text_columns=3 + labelled))
    out.write(failures(shown))
    return out.getvalue().lstrip("\n")


def _row(check: SellCheck) -> list[str]:
    if check.verdict == "error":
        return [check.pdno, "", "error", f"{check.qty:,}", "", "", "", ""]
    return [
        check.pdno,
        printable(check.answer.prdt_name),
        _SHOWN[check.verdict],
        f"{check.qty:,}",
        f"{check.shortfall:,}" if check.shortfall else "",
        f"{check.ord_psbl_qty:,}",
        f"{check.cblc_qty:,}",
        f"{check.sll_qty:,}",
    ]


def record(check: SellCheck, account: str | None) -> dict[str, Any]:
    """One order as JSON gives it: the order, the verdict, KIS's numbers (``null`` when the
    check failed: never 0) and, for a failure, the error's class, message and KIS code."""
    error = check.error
    return {
        "account": account,
        "pdno": check.pdno,
        "qty": check.qty,
        "verdict": check.verdict,
        "shortfall": check.shortfall,
        "ord_psbl_qty": check.ord_psbl_qty,
        "cblc_qty": check.cblc_qty,
        "sll_qty": check.sll_qty,
        "asked_before": check.asked_before,
        "answered_at": check.answered_at.isoformat() if check.answered_at else None,
        "prdt_name": check.answer.prdt_name if check.answer else None,
        "error": type(error).__name__ if error is not None else None,
        "message": error.reason if error is not None else None,
        "msg_cd": error.msg_cd if isinstance(error, APIError) else None,
    }


def json_lines(run: Run, pdno: str) -> str:
    """The JSON lines of ``pdno``'s orders, once its answer (or error) is in."""
    where = account(run)
    return "".join(json_text(record(check, where)) + "\n" for check in checks(run, pdno))


def json_document(runs: list[Run]) -> str:
    """Every order, then a summary that adds up the accounts and gives each one's; its
    ``error`` (and each account's) is the line saying what stopped it, if something did."""
    orders = [record(check, account(run)) for run in runs for check in checks(run)]
    each = [{"account": account(run)} | summary_record(run) for run in runs]
    keys = ("orders", "checked", "ok", "short", "not_held", "failed")
    total: dict[str, Any] = {key: sum(s[key] for s in each) for key in keys}
    total |= {
        "interrupted": any(run.interrupted for run in runs),
        "elapsed_s": max((s["elapsed_s"] for s in each), default=0.0),
        "error": next((s["error"] for s in each if s["error"] is not None), None),
        "accounts": each,
    }
    return json_text({"orders": orders, "summary": total})


def summary_record(run: Run) -> dict[str, Any]:
    """A run's counts: orders, those checked, and each verdict's."""
    verdicts = Counter(check.verdict for check in checks(run))
    return {
        "orders": len(run.sells or ()),
        "checked": sum(verdicts.values()),
        "ok": verdicts["ok"],
        "short": verdicts["short"],
        "not_held": verdicts["not_held"],
        "failed": verdicts["error"],
        "tickers": len(run.asked),
        "interrupted": run.interrupted,
        "elapsed_s": round(run.elapsed, 3),
        "waited_s": round(run.waited, 3),
        "error": stopped(run),
    }


def csv_text(runs: list[Run], *, bom: bool = False) -> str:
    """One row per order: the account, the order, the verdict, KIS's numbers (blank when the
    check failed), then the error's reason, class and KIS code (see
    :func:`kis_async.render.csv_text` for the BOM and the cell rules)."""
    out = io.StringIO()
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for run in runs:
        where = account(run) or ""
        for check in checks(run):
            said = error_cells(check.error) if check.error is not None else ("", "", "")
            numbers = (check.ord_psbl_qty, check.cblc_qty, check.sll_qty, check.asked_before)
            writer.writerow(
                [
                    where,
                    csv_cell(check.pdno),
                    csv_cell(check.answer.prdt_name) if check.answer else "",
                    check.qty,
                    check.verdict,
                    "" if check.shortfall is None else check.shortfall,
                    *("" if n is None else n for n in numbers),
                    check.answered_at.isoformat() if check.answered_at else "",
                    *said,
                ]
            )
    return out.getvalue()


def summary(run: Run) -> str:
    """The run's one line for stderr: the orders judged, how long the tickers took, and how
    many orders fit, fall short, are not held or could not be checked."""
    counts = summary_record(run)
    if not counts["orders"] and not run.interrupted:
        return f"{headline(run)}no orders for this account"
    line = (
        f"{headline(run)}{counts['checked']} of {counts['orders']} orders judged, "
        f"{len(run.done)} of {len(run.asked)} tickers checked{timing(run)}: "
        f"{counts['ok']} fit, {counts['short']} short, {counts['not_held']} not held, "
        f"{counts['failed']} failed"
    )
    return line + learned(run.stats)


def all_fit(runs: list[Run]) -> bool:
    """Whether every order of every run was judged, and fits: exit status 0."""
    return all(
        run.sells is not None
        and len(verdicts := checks(run)) == len(run.sells)
        and all(check.ok for check in verdicts)
        for run in runs
    )
