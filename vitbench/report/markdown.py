"""The markdown renderer: model cards and comparison.md from their views, through the Jinja templates
(templates/*.md.j2); a Table becomes the rows the `md_table` macro lays out (`md_rows`)."""
from __future__ import annotations

import re

import jinja2

from vitbench.catalog.registry import CheckpointCfg, get_family
from vitbench.records import RecordStore
from vitbench.report.card import card_view
from vitbench.report.tables import Cell, Table


def tidy(text: str) -> str:
    """At most one blank line in a row, one trailing newline (templates stay readable)."""
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def _escape(text: str) -> str:
    """One markdown table cell: one line, pipes escaped."""
    return str(text).replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def md_text(cell: Cell) -> str:
    """What markdown shows for a cell: its text (a link when it has one), then its note in parentheses."""
    text = f"[{cell.text}]({cell.href})" if cell.href else cell.text
    return text + (f" ({cell.note})" if cell.note else "")


def md_rows(table: Table) -> dict:
    """A Table's markdown columns as the `md_table` macro lays them out: {header: [label], rows: [[text]]}."""
    shown = [i for i, c in enumerate(table.columns) if c.md]
    return {"header": [_escape(table.columns[i].label) for i in shown],
            "rows": [[_escape(md_text(r.cells[i])) for i in shown] for r in table.rows]}


def render_card(cfg: CheckpointCfg, store: RecordStore, env: jinja2.Environment, analyses=None) -> str:
    """A checkpoint's model card (timm's layout; a transformers-format checkpoint gets the HF one)."""
    # a user's transformers folder has no family card text: timm's layout, which says what it is
    hf = cfg.library_name == "transformers" and cfg.lineage != "user"
    template = "model_card_hf.md.j2" if hf else "model_card.md.j2"
    if template == "model_card_hf.md.j2" and get_family(cfg.family).card_text is None:
        raise ValueError(f"catalog: family {cfg.family!r} has no `card_text`, which the transformers-style "
                         f"card of {cfg.name!r} needs (heading, short_name, about)")
    return tidy(env.get_template(template).render(card=card_view(cfg, store, analyses)))


def render_comparison(view: dict, env: jinja2.Environment) -> str:
    """comparison.md from report.comparison.comparison_view."""
    return tidy(env.get_template("comparison.md.j2").render(cmp=view))
