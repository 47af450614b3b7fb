"""The HTML report: reports/index.html and reports/cards/<checkpoint>.html.

    write_html(out_dir, env, view, cards) -> [paths written]

index.html is one self-contained page (inline CSS and JS, no network; the plots are the PNGs beside
it under plots/) that lays out the same view and the same Tables as comparison.md, plus the overview
of every checkpoint: each table sortable by clicking a column header (a numeric column sorts on the
`value` its cells carry) and filtered by text (name, family, pretraining data, image size) and by a
GMACs ceiling. The card pages are the markdown cards turned into HTML by markdown-it-py (CommonMark +
tables).
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import quote

from markdown_it import MarkdownIt
from markupsafe import Markup

from vitbench.catalog.registry import is_registered, safe_name
from vitbench.records import atomic_write_text
from vitbench.report.facts import facts
from vitbench.report.markdown import md_text
from vitbench.report.tables import NOT_MEASURED, Cell, Column, Table

_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)


def md_inline(text: str) -> Markup:
    """Inline markdown (links, bold, code) as HTML; markdown-it escapes the rest."""
    return Markup(_MD.renderInline(str(text)))


def card_href(name: str, prefix: str = "cards/") -> str:
    return prefix + quote(f"{safe_name(name)}.html")


def _sort_key(value: float | None) -> str:
    """The data-sort attribute: the number as text, '' when missing (sorts last)."""
    return "" if value is None else repr(float(value))


def _cell_html(column: Column, cell: Cell) -> Markup:
    if column.model and is_registered(cell.text):
        html = Markup('<a href="{}">{}</a>').format(card_href(cell.text), cell.text)
    else:
        html = md_inline(md_text(Cell(cell.text, href=cell.href)))
    if cell.note:
        html += Markup(' <span class="tag">{}</span>').format(cell.note)
    if column.facts and is_registered(cell.text):
        f = facts(cell.text)
        html += Markup('<div class="facts">{} · {} · {} px</div>').format(f.family, f.pretraining, f.img_size)
    if cell.detail and cell.detail != cell.text:
        html = Markup("<details><summary>{}</summary><pre>{}</pre></details>").format(html, cell.detail)
    return html


def _cell(column: Column, cell: Cell) -> dict:
    classes = ["num" if column.numeric else "", "na" if cell.text == NOT_MEASURED else "",
               f"flag-{cell.flag}" if cell.flag else ""]
    return {"html": _cell_html(column, cell), "sort": _sort_key(cell.value) if column.numeric else None,
            "cls": " ".join(c for c in classes if c)}


def html_rows(table: Table) -> dict:
    """A Table's HTML columns as the `board` macro lays them out: header [{label, num, title}], rows
    [{cells [{html, sort, cls}], search, gmacs, cls}]."""
    shown = [i for i, c in enumerate(table.columns) if c.html]
    header = [{"label": table.columns[i].label, "num": table.columns[i].numeric, "title": table.columns[i].tooltip}
              for i in shown]
    rows = [{"cells": [_cell(table.columns[i], r.cells[i]) for i in shown], "search": r.search,
             "gmacs": _sort_key(r.gmacs), "cls": r.cls} for r in table.rows]
    return {"header": header, "rows": rows}


def card_page(name: str, markdown_text: str) -> dict:
    body = _MD.render(_FRONT_MATTER.sub("", markdown_text, count=1))
    return {"name": name, "body": Markup(body), "md_file": quote(f"{safe_name(name)}.md")}


def write_html(out_dir: Path, env, view: dict, cards: dict[str, str]) -> list[Path]:
    """index.html from the comparison view and one page per markdown card; returns the paths written."""
    out_dir = Path(out_dir)
    written = []
    for name, text in cards.items():
        path = out_dir / "cards" / f"{safe_name(name)}.html"
        atomic_write_text(path, env.get_template("card.html.j2").render(card=card_page(name, text)))
        written.append(path)
    path = out_dir / "index.html"
    atomic_write_text(path, env.get_template("index.html.j2").render(page=view))
    written.append(path)
    return written
