"""Typed tables: what every report section hands to the renderers.

    Table(columns=(Column("model", model=True), Column("top1", numeric=True)),
          rows=(Row((Cell("deit_tiny_patch16_224.fb_in1k"), Cell("72.190", 72.19))),))

A cell keeps its number (`value`, what the HTML sorts on), the text markdown shows and a `flag` (what
the cell says, counted and styled by the renderers) apart, so a number is decided once, here in
Python, and neither renderer parses text back. The markdown renderer (report.markdown) and the HTML
renderer (report.html) lay out the same Table.

One function decides whether a figure (timm's published top-1, or the top-1 a user checkpoint's
author claims) lies within the 95% interval of a measurement (`published_verdict`); both renderers
show its answer through `verdict_cell`.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from vitbench.records import EvalRecord

NOT_MEASURED = "not measured"


@dataclass(frozen=True)
class Cell:
    text: str = ""                 # what markdown shows (inline markdown; the renderer escapes pipes)
    value: float | None = None     # the number a numeric column sorts on; None: none (sorts last)
    flag: str | None = None        # what the cell says: 'outside' (published figure outside the 95% interval), 'subset'
    href: str | None = None        # a link: markdown shows [text](href)
    note: str | None = None        # a label after the text ('subset, 500 of 30,000', 'fp32'): "text (note)"
    detail: str | None = None      # the whole text when `text` is its first line (the HTML folds it)


@dataclass(frozen=True)
class Column:
    label: str
    numeric: bool = False          # sorted on the cells' `value`
    tooltip: str = ""
    model: bool = False            # its cells name checkpoints: the HTML links each to its card page
    facts: bool = False            # ... and adds the checkpoint's family, pretraining data and image size
    md: bool = True                # shown in markdown
    html: bool = True              # shown in the HTML report


@dataclass(frozen=True)
class Row:
    cells: tuple[Cell, ...]
    search: str = ""               # what the HTML filter matches (lower case)
    gmacs: float | None = None     # the checkpoint's GMACs, for the HTML's GMACs ceiling
    cls: str = ""                  # HTML row class: 'front' (Pareto front), 'subset'


@dataclass(frozen=True)
class Table:
    columns: tuple[Column, ...]
    rows: tuple[Row, ...] = ()

    def __post_init__(self):
        for r in self.rows:
            if len(r.cells) != len(self.columns):
                raise ValueError(f"table row has {len(r.cells)} cells, header has {len(self.columns)}: "
                                 f"{[c.text for c in r.cells]}")

    def count(self, flag: str) -> int:
        """How many cells carry `flag`."""
        return sum(c.flag == flag for r in self.rows for c in r.cells)


def text_columns(labels: Sequence[str]) -> tuple[Column, ...]:
    return tuple(Column(label) for label in labels)


def text_table(labels: Sequence[str], rows: Sequence[Sequence[str]]) -> Table:
    """A table of text cells under text columns (the cards' tables, which only markdown lays out)."""
    return Table(text_columns(labels), tuple(Row(tuple(Cell(str(t)) for t in r)) for r in rows))


# ---------------------------------------------------------------------------- a figure within the interval?

@dataclass(frozen=True)
class Verdict:
    """Whether a reference top-1 (timm's published figure, or the figure a user checkpoint's author
    claims) lies within the 95% interval of a measurement."""
    kind: str                      # 'within' | 'outside' | 'subset' | 'no interval' | 'no published' (no figure)
    delta: float | None = None     # measured minus the figure; None when not compared
    label: str = "published"       # what the figure is, as the verdict's text names it: 'published', 'claimed'


def published_verdict(rec: EvalRecord, figure: float | None, label: str = "published") -> Verdict:
    """The one answer to "is the figure within the measurement's 95% interval?", for timm's published
    top-1 and for the top-1 an author claims (`label` 'claimed'). A record of part of a dataset
    ('subset') is not compared with a full-set figure: no delta, no flag."""
    if figure is None:
        return Verdict("no published", label=label)
    if not rec.comparable_to_published:
        return Verdict("subset", label=label)
    delta = rec.top1 - figure
    lo, hi = rec.top1_ci if rec.top1_ci else (math.nan, math.nan)
    if math.isnan(lo) or math.isnan(hi):
        return Verdict("no interval", delta, label)
    return Verdict("within" if lo <= figure <= hi else "outside", delta, label)


_VERDICT_TEXT = {"within": "within", "outside": "**outside 95% CI**", "no interval": "no interval recorded",
                 "no published": "no {label} figure"}


def verdict_cell(verdict: Verdict, rec: EvalRecord) -> Cell:
    if verdict.kind == "subset":
        return Cell(f"not compared: {rec.subset_label}", flag="subset")
    return Cell(_VERDICT_TEXT[verdict.kind].format(label=verdict.label),
                flag="outside" if verdict.kind == "outside" else None)
