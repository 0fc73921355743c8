"""How the command line shows a run: a table, JSON or CSV on stdout; progress on a terminal.

Text that came from the server (names, messages) is shown with its control characters replaced,
so an answer cannot move the cursor, retitle the terminal or hide a line. JSON escapes them by
itself.
"""

from __future__ import annotations

import csv
import io
import sys
import time
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, TextIO

import msgspec

from .batch import Batch
from .client import ClientStats
from .errors import APIError, KISError
from .models import SellableQuantity

_COLUMNS = ("ticker", "name", "held", "sold today", "sellable", "avg price", "now", "P/L %")
_CSV_FIELDS = (*SellableQuantity.__struct_fields__, "error")


@dataclass(slots=True)
class Run:
    """What a check produced so far: the tickers asked, in order, and the batch filling up."""

    asked: list[str]
    batch: Batch[SellableQuantity]
    elapsed: float = 0.0
    interrupted: bool = False
    stats: ClientStats | None = None
    """The client's pace and refusals at the end, when a client ran."""

    @property
    def done(self) -> list[str]:
        """The tickers that have an outcome, in the order they were asked."""
        batch = self.batch
        return [p for p in self.asked if p in batch.results or p in batch.errors]


def table(run: Run) -> str:
    """Aligned columns (Hangul counts two cells wide), then the failures with their reasons."""
    rows = [list(_COLUMNS)]
    for pdno in run.done:
        q = run.batch.results.get(pdno)
        if q is not None:
            rows.append(
                [
                    q.pdno,
                    printable(q.prdt_name),
                    f"{q.cblc_qty:,}",
                    f"{q.sll_qty:,}",
                    f"{q.ord_psbl_qty:,}",
                    _money(q.pchs_avg_pric),
                    _money(q.now_pric),
                    f"{q.evlu_pfls_rt:+.2f}",
                ]
            )
    widths = [max(_width(row[i]) for row in rows) for i in range(len(_COLUMNS))]
    out = io.StringIO()
    for n, row in enumerate(rows):
        cells = [_pad(cell, widths[i], left=i < 2) for i, cell in enumerate(row)]
        out.write("  ".join(cells).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")
    errors = run.batch.errors
    if errors:
        out.write(f"\nfailed ({len(errors)}):\n")
        for pdno in run.done:
            error = errors.get(pdno)
            if error is not None:
                out.write(f"  {pdno:<12}  {type(error).__name__}: {printable(error.reason)}\n")
    return out.getvalue()


def json_document(run: Run) -> str:
    """One JSON document: results (exact decimals as strings), errors, and a summary."""
    done = run.done
    batch = run.batch
    document: dict[str, Any] = {
        "results": [batch.results[p] for p in done if p in batch.results],
        "errors": [_error_record(p, batch.errors[p]) for p in done if p in batch.errors],
        "summary": {
            "asked": len(run.asked),
            "checked": len(done),
            "ok": len(batch.results),
            "failed": len(batch.errors),
            "interrupted": run.interrupted,
            "elapsed_s": round(run.elapsed, 3),
        },
    }
    return msgspec.json.encode(document).decode()


def csv_text(run: Run) -> str:
    """One row per ticker under the KIS field names, with an ``error`` column last."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(_CSV_FIELDS)
    for pdno in run.done:
        q = run.batch.results.get(pdno)
        if q is not None:
            values = msgspec.structs.astuple(q)
            writer.writerow([*(printable(v) if isinstance(v, str) else v for v in values), ""])
        else:
            error = run.batch.errors[pdno]
            writer.writerow([pdno, *[""] * (len(_CSV_FIELDS) - 2), printable(error.reason)])
    return out.getvalue()


def summary(run: Run) -> str:
    """The one-line account of the run for stderr."""
    checked = len(run.done)
    rate = checked / run.elapsed if run.elapsed else 0.0
    head = "interrupted: " if run.interrupted else ""
    line = (
        f"{head}{checked} of {len(run.asked)} tickers checked in {run.elapsed:.1f} s "
        f"({rate:.1f}/s): {len(run.batch.results)} ok, {len(run.batch.errors)} failed"
    )
    stats = run.stats
    if stats is not None and stats.learned:
        line += (
            f"; KIS refused {stats.refusals} call(s) for the rate, so the pace settled at "
            f"{stats.pace:.1f} calls/s (configured {stats.rate_limit:g}/s)"
        )
    return line


class Progress:
    """A one-line progress bar on a terminal's stderr: done/total, rate, ETA."""

    def __init__(self, total: int, stream: TextIO = sys.stderr) -> None:
        self.total = total
        self.done = 0
        self.start = time.perf_counter()
        self.stream = stream

    def step(self) -> None:
        self.done += 1
        elapsed = time.perf_counter() - self.start
        rate = self.done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.done) / rate if rate else 0.0
        filled = int(30 * self.done / self.total) if self.total else 30
        bar = "#" * filled + "." * (30 - filled)
        self.stream.write(f"\r[{bar}] {self.done}/{self.total}  {rate:5.1f}/s  ETA {eta:4.0f} s")
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\r" + " " * 70 + "\r")
        self.stream.flush()


def printable(text: str) -> str:
    """``text`` with every control or format character (ESC, CR, BiDi overrides...) as ``?``."""
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() or ch == " " else "?" for ch in text)


def _error_record(pdno: str, error: KISError) -> dict[str, Any]:
    record: dict[str, Any] = {"pdno": pdno, "error": type(error).__name__, "message": error.reason}
    if isinstance(error, APIError):
        record |= {"rt_cd": error.rt_cd, "msg_cd": error.msg_cd, "status": error.status}
    return record


def _money(value: Decimal) -> str:
    return f"{value:,.0f}" if value == value.to_integral_value() else f"{value:,.2f}"


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _pad(text: str, width: int, *, left: bool) -> str:
    fill = " " * (width - _width(text))
    return text + fill if left else fill + text
