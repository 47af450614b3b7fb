"""Reports from the records: model cards, comparison.md, the HTML report, the plots and the CSVs.

    render_reports(store_or_results_dir, out_dir) -> reports/cards/<checkpoint>.md and .html (every registered checkpoint)
                                                     reports/comparison.md, reports/index.html
                                                     reports/plots/*.png
    write_csvs(store) -> results/results-*.csv, results/benchmark-infer-*.csv

Each section is one function from the record store to a typed table (tables: Cell, Column, Row,
Table); card and comparison build them, markdown and html render the same tables (the Jinja
templates in the top-level templates/ only lay them out), fmt rounds every number, plots draws
the PNGs, csv writes the CSVs. The records are read once per report: every section asks one
RecordStore. Same records, same bytes.
"""
from __future__ import annotations

from pathlib import Path

from vitbench.catalog.registry import get_checkpoint, list_models, safe_name
from vitbench.records import RecordStore, atomic_write_text
from vitbench.report import user
from vitbench.report.analyses import Analyses
from vitbench.report.comparison import comparison_view
from vitbench.report.csv import write_benchmark_csvs, write_csvs, write_results_csvs
from vitbench.report.html import write_html
from vitbench.report.jinja import environment
from vitbench.report.markdown import render_card, render_comparison
from vitbench.report.plots import draw_plots


def render_reports(store_or_results_dir: RecordStore | Path | str, out_dir: Path,
                   templates_dir: Path | None = None, checkpoints: list[str] | None = None) -> list[Path]:
    """Cards for every registered checkpoint (or for `checkpoints`, registered names: what a test pins
    so that its snapshot does not change with every checkpoint registered), comparison.md, the plots
    and the HTML report (index.html and a page per card).

    Args:
        store_or_results_dir: the RecordStore a run already holds, or a results folder to load one from.
        out_dir: where the reports go (cards/, plots/, comparison.md, index.html).
        templates_dir: templates that override the packaged ones of the same name.
        checkpoints: the checkpoints to report on; all registered ones by default.

    Returns:
        The files written, sorted.
    """
    store = store_or_results_dir if isinstance(store_or_results_dir, RecordStore) \
        else RecordStore.load(Path(store_or_results_dir))
    out_dir = Path(out_dir)
    names = list_models() if checkpoints is None else [get_checkpoint(n).name for n in checkpoints]
    env = environment(templates_dir)
    written, cards = [], {}
    analyses = Analyses(store, out_dir / "plots", names)      # shared by the cards and the comparison
    er_plot = analyses.draw_robustness_plot()                  # before the cards, which show it
    for name in names:
        path = out_dir / "cards" / f"{safe_name(name)}.md"
        cards[name] = render_card(get_checkpoint(name), store, env, analyses)
        atomic_write_text(path, cards[name])
        written.append(path)
    plot_list, plot_notes = draw_plots(store, out_dir / "plots")
    plot_list += user.draw_series_plots(store, names, out_dir / "plots")      # your training runs
    plot_list += [er_plot] if er_plot else []
    written += [out_dir / p["file"] for p in plot_list] + analyses.diagrams
    view = comparison_view(store, names, plot_list, plot_notes, analyses)
    atomic_write_text(out_dir / "comparison.md", render_comparison(view, env))
    written.append(out_dir / "comparison.md")
    written += write_html(out_dir, env, view, cards)
    return sorted(written)


__all__ = ["render_reports", "write_csvs", "write_results_csvs", "write_benchmark_csvs", "environment"]
