"""Number formatting for every report: each number is rounded here, once, never in a template."""
from __future__ import annotations

import math

from vitbench.records import EvalRecord
from vitbench.report.tables import NOT_MEASURED, Cell


def missing(x) -> bool:
    """None, NaN or pandas' NA: no number."""
    return x is None or str(x) == "<NA>" or (isinstance(x, float) and math.isnan(x))


def fmt(x, nd: int, absent: str = NOT_MEASURED) -> str:
    return absent if missing(x) else f"{float(x):.{nd}f}"


def fmt_signed(x, nd: int, absent: str = "") -> str:
    return absent if missing(x) else f"{float(x):+.{nd}f}"


def count_text(n) -> str:
    """An image count with thousands separators ('' when missing)."""
    return "" if missing(n) else f"{int(n):,}"


def rank_text(d) -> str:
    """A rank difference: '+2', '-1', '0' ('' when missing)."""
    return "" if missing(d) else f"{int(d):+d}" if int(d) else "0"


def ci_text(lo, hi) -> str:
    return "" if missing(lo) or missing(hi) else f"{lo:.2f} – {hi:.2f}"


def rate_text(v: float) -> str:
    """images/s with one decimal, or two significant digits below 1 (a giant on a CPU: 0.033, not 0.0)."""
    return f"{v:.1f}" if v >= 1 else f"{v:.2g}"


def number(x) -> float | None:
    """A table cell's sort value: the number, None when missing."""
    return None if missing(x) else float(x)


def num_cell(x, nd: int, absent: str = NOT_MEASURED) -> Cell:
    """A number with `nd` decimals, sorted on its value."""
    return Cell(fmt(x, nd, absent), number(x))


def top1_cell(rec: EvalRecord | None, nd: int = 3) -> Cell:
    """A record's top-1, noted "(subset, N of M)" when it is not of the whole dataset."""
    if rec is None:
        return Cell(NOT_MEASURED)
    return Cell(fmt(rec.top1, nd), rec.top1, flag="subset" if rec.subset_label else None, note=rec.subset_label)


def top1_text(rec: EvalRecord, nd: int = 3) -> str:
    """top1_cell as one text: '83.918' or '83.918 (subset, 3 of 50,000)'."""
    return fmt(rec.top1, nd) + (f" ({rec.subset_label})" if rec.subset_label else "")
