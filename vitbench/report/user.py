"""Your checkpoints in the reports: what a user checkpoint's card adds, its rows in comparison.md and
index.html, and the plot of a training run's checkpoints.

    card_view(cfg, store) -> {source, claimed, zoo, series} | None    (None: a zoo checkpoint)
    comparison_view(store, names) -> {table, n_outside, series} | None
    draw_series_plots(store, names, plots_dir) -> [{title, file}]

A user checkpoint (catalog.user: a `--catalog` entry, an `hf-hub:` or `local-dir:` name) is checked two
ways: the top-1 its author claims against vitbench's 95% interval (the one `tables.published_verdict`,
labelled 'claimed'), and beside the zoo checkpoints of its architecture measured on the same data, with
the paired McNemar test when both have predictions (`analysis.agreement.compare_predictions`). The
checkpoints of one glob entry (`extra['series']`) are a training run: their top-1 is plotted in
checkpoint order.
"""
from __future__ import annotations

import io
import re
from pathlib import Path

from vitbench.catalog.registry import CheckpointCfg, get_checkpoint, get_family, list_models, safe_name
from vitbench.data.specs import DATASETS
from vitbench.records import EvalRecord, RecordStore, atomic_write_bytes
from vitbench.report.facts import checkpoint_row, family_title
from vitbench.report.fmt import ci_text, count_text, fmt_signed, num_cell, number, top1_cell
from vitbench.report.tables import NOT_MEASURED, Cell, Column, Row, Table, published_verdict, verdict_cell

__all__ = ["is_user", "same_data", "card_view", "comparison_view", "draw_series_plots", "series_plot"]


def is_user(cfg: CheckpointCfg) -> bool:
    """A checkpoint the user brought (catalog.user), not one of the zoo's."""
    return cfg.lineage == "user"


def same_data(a: EvalRecord, b: EvalRecord) -> bool:
    """Whether two 'ok' records of one dataset were measured on the same images: both of the whole set,
    or the same data fingerprint (file list and labels) under the same --limit."""
    if a.dataset != b.dataset:
        return False
    if a.comparable_to_published and b.comparable_to_published:
        return True
    fa, fb = (r.provenance.data_fingerprint if r.provenance else None for r in (a, b))
    return (fa is not None and fb is not None and fa.sha256 == fb.sha256 and fa.n_images == fb.n_images
            and a.limit == b.limit and a.n_images == b.n_images)


# ---------------------------------------------------------------------------- claimed vs measured

_CLAIM_COLUMNS = ("measured top-1", "95% CI", "claimed top-1", "Δ (measured − claimed)", "claimed in CI?")


def _claim_cells(rec: EvalRecord | None, claimed: float | None) -> list[Cell]:
    """Measured top-1 and its interval beside the claimed figure, with the one verdict (label 'claimed')."""
    figure = num_cell(claimed, 3, absent="")
    if rec is None:
        return [Cell(NOT_MEASURED), Cell(""), figure, Cell(""), Cell(NOT_MEASURED if claimed is not None else "")]
    lo, hi = rec.top1_ci if rec.top1_ci else (None, None)
    verdict = published_verdict(rec, claimed, "claimed")
    return [top1_cell(rec), Cell(ci_text(lo, hi), number(lo)), figure,
            Cell(fmt_signed(verdict.delta, 3), verdict.delta), verdict_cell(verdict, rec)]


def _claim_datasets(cfg: CheckpointCfg, store: RecordStore) -> list[str]:
    """The datasets a user checkpoint's rows cover: those it claims or has a record of (ImageNet when
    neither), in the dataset table's order."""
    claimed = dict(cfg.claimed)
    wanted = [ds for ds in DATASETS if ds in claimed or store.best(cfg.name, ds) is not None]
    return wanted or ["imagenet"]


def claimed_table(cfg: CheckpointCfg, store: RecordStore) -> Table | None:
    """The card's "Claimed vs measured": one row per dataset the author claims a top-1 for."""
    if not cfg.claimed:
        return None
    rows = tuple(Row((Cell(DATASETS[ds].title), *_claim_cells(store.best(cfg.name, ds), figure)))
                 for ds, figure in cfg.claimed)
    return Table((Column("dataset"), *(Column(c, numeric=i != 4) for i, c in enumerate(_CLAIM_COLUMNS))), rows)


# ---------------------------------------------------------------------------- beside the zoo

def _differs(cfg: CheckpointCfg) -> dict:
    """How the checkpoint's model differs in structure from its registered architecture ({}: it is that
    architecture): a transformers config's dims, or a timm config.json's model_args."""
    from vitbench.models.transformers_format import STRUCTURE

    if cfg.extra.get("differs_from_architecture"):
        return dict(cfg.extra["differs_from_architecture"])
    return {k: v for k, v in (cfg.extra.get("model_args") or {}).items() if k in STRUCTURE}


def _paired_cells(store: RecordStore, zoo: EvalRecord, mine: EvalRecord) -> list[Cell]:
    """Paired images, the top-1 difference on them with its 95% interval, McNemar's p and its verdict,
    from both records' predictions; '' cells when either has none."""
    paths = [store.predictions_path(r) for r in (zoo, mine)]
    if None in paths:
        return [Cell("no predictions"), Cell(""), Cell(""), Cell(""), Cell("")]
    from vitbench.analysis.agreement import compare_predictions
    from vitbench.eval.predictions import read_predictions

    try:
        a = compare_predictions(*(read_predictions(p) for p in paths))     # A: the zoo's, B: this one
    except ValueError as e:             # no image in common, or other targets: not the same images after all
        return [Cell("not paired", detail=str(e)), Cell(""), Cell(""), Cell(""), Cell("")]
    return [Cell(count_text(a.n), a.n), Cell(fmt_signed(a.diff, 3), a.diff), Cell(ci_text(a.diff_lo, a.diff_hi)),
            Cell(f"{a.mcnemar_p:.3g}", a.mcnemar_p), Cell("yes" if a.mcnemar_p < 0.05 else "no")]


def zoo_view(cfg: CheckpointCfg, store: RecordStore) -> dict:
    """The card's "Beside the zoo": per dataset the checkpoint has a record of, every zoo checkpoint of
    the same architecture with a record on the same data, best first, with the paired test."""
    zoo = [n for n in list_models() if (c := get_checkpoint(n)).architecture == cfg.architecture and not is_user(c)]
    differs = _differs(cfg)
    if differs:
        return {"differs": ", ".join(f"{k} {v}" for k, v in differs.items()), "table": None, "n_zoo": str(len(zoo))}
    rows = []
    for ds in DATASETS:
        mine = store.best(cfg.name, ds)
        if mine is None:
            continue
        theirs = [(z.top1, n, z) for n in zoo for z in store.evals_of(n, ds) if z.status == "ok" and same_data(z, mine)]
        for _, name, z in sorted(theirs, key=lambda t: (-t[0], t[1], t[2].precision)):
            rows.append(Row((Cell(DATASETS[ds].title), Cell(name, note=z.precision), top1_cell(z), top1_cell(mine),
                             *_paired_cells(store, z, mine))))
    columns = (Column("dataset"), Column("zoo checkpoint", model=True), Column("zoo top-1", True),
               Column("this top-1", True), Column("paired images", True), Column("Δ top-1 (this − zoo)", True),
               Column("95% CI of Δ"), Column("McNemar p", True), Column("differ at 5%?"))
    return {"differs": None, "table": Table(columns, tuple(rows)) if rows else None, "n_zoo": str(len(zoo))}


# ---------------------------------------------------------------------------- a training run (a glob entry)

def series_members(names: list[str] | None = None) -> dict[str, list[str]]:
    """The checkpoints of each glob entry (its `series`), in file order (the catalog registers them so)."""
    out: dict[str, list[str]] = {}
    for name in list_models() if names is None else names:
        series = get_checkpoint(name).extra.get("series")
        if series:
            out.setdefault(series, []).append(name)
    return out


def _series_lines(store: RecordStore, members: list[str]) -> list[tuple[str, list[tuple[int, EvalRecord]]]]:
    """Per dataset with any record among `members`: (position in the run, its best record)."""
    lines = []
    for ds in DATASETS:
        points = [(i, r) for i, n in enumerate(members) if (r := store.best(n, ds)) is not None]
        if points:
            lines.append((ds, points))
    return lines


def series_plot(series: str) -> dict:
    """The {title, file} of a training run's plot (file relative to the reports folder)."""
    return {"title": f"Top-1 over the checkpoints of {series}", "file": f"plots/series_{_file_stem(series)}.png"}


def _file_stem(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", safe_name(name))


def _stem(series: str, name: str) -> str:
    return name[len(series) + 1:] if name.startswith(series + "-") else name


def draw_series_plots(store: RecordStore, names: list[str], plots_dir: Path) -> list[dict]:
    """One plot per training run (glob entry) with a record: top-1 per dataset over its checkpoints, in
    file order, 95% intervals as bars; a subset record hollow. Deterministic PNGs (report.plots')."""
    drawn = []
    for series, members in series_members(names).items():
        lines = _series_lines(store, members)
        if lines:
            plot = series_plot(series)
            _draw_series(Path(plots_dir).parent / plot["file"], series, members, lines, plot["title"])
            drawn.append(plot)
    return drawn


def _draw_series(path: Path, series: str, members: list[str], lines, title: str) -> None:
    from vitbench.report import plots

    plt = plots.plt
    fig, ax = plt.subplots(figsize=plots.FIGSIZE, dpi=plots.DPI)
    for k, (ds, points) in enumerate(lines):
        colour = f"C{k}"
        xs, ys = [i for i, _ in points], [r.top1 for _, r in points]
        lo = [r.top1 - (r.top1_ci[0] if r.top1_ci else r.top1) for _, r in points]
        hi = [(r.top1_ci[1] if r.top1_ci else r.top1) - r.top1 for _, r in points]
        ax.errorbar(xs, ys, yerr=[lo, hi], color=colour, linewidth=1.2, capsize=3, label=DATASETS[ds].title)
        for x, (_, r) in zip(xs, points, strict=True):
            ax.scatter([x], [r.top1], s=36, zorder=3, color=colour if r.comparable_to_published else "white",
                       edgecolors=colour)
    ax.set_xticks(range(len(members)), [_stem(series, n) for n in members], rotation=30, ha="right", fontsize=8)
    ax.set_title(title)
    subset = any(not r.comparable_to_published for _, points in lines for _, r in points)
    ax.set_xlabel("checkpoint (file order)" + ("; hollow: measured on a subset of the dataset" if subset else ""))
    ax.set_ylabel("top-1 (%)")
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=plots.DPI, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def series_view(cfg: CheckpointCfg, store: RecordStore) -> dict | None:
    """A glob entry's checkpoint: its run's plot (when any of them has a record) and its siblings."""
    series = cfg.extra.get("series")
    if not series:
        return None
    members = series_members().get(series, [])
    plot = series_plot(series) if _series_lines(store, members) else None
    return {"name": series, "members": members, "n": str(len(members)),
            "plot": {"title": plot["title"], "file": f"../{plot['file']}"} if plot else None}


# ---------------------------------------------------------------------------- the card, the comparison

def _source(cfg: CheckpointCfg, store: RecordStore) -> list[str]:
    """Where the weights came from, as the records say it (the configured source when none does)."""
    rec = next((r for ds in DATASETS if (r := store.best(cfg.name, ds)) is not None and r.weights), None)
    w = rec.weights if rec else None
    lines = [f"**Weights:** `{w.path if w and w.path else cfg.weights or cfg.hf_hub_id}`"
             + (f" (entry `{w.entry}`)" if w and w.entry else " (EMA weights)" if cfg.ema and not w else "")
             + (f", sha256 `{w.sha256}`" if w and w.sha256 else "")]
    if w and w.repo:
        lines.append(f"**Hub repo:** {w.repo} at revision `{w.revision}`")
    if w and w.files:
        lines.append("**Config files:** " + ", ".join(f"{f} sha256 `{h}`" for f, h in sorted(w.files.items())))
    if cfg.weights_format == "transformers":
        lines.append(f"**Format:** transformers (`{cfg.extra.get('transformers_class', '?')}`), built from its own "
                     f"config.json, preprocessed as its preprocessor_config.json says")
    if not rec:
        lines.append("**Measured:** not yet; the weights' sha256 is recorded when it is")
    return lines


def card_view(cfg: CheckpointCfg, store: RecordStore) -> dict | None:
    """What a user checkpoint's card adds (None for a zoo checkpoint): its source, the claimed figures
    checked, the zoo beside it, its training run."""
    if not is_user(cfg):
        return None
    catalog = cfg.extra.get("catalog")
    return {"family": get_family(cfg.family).title, "original": cfg.original, "source": _source(cfg, store),
            "register": f"vitbench.models.register_catalog({catalog!r})" if catalog else None,
            "claimed": claimed_table(cfg, store), "zoo": zoo_view(cfg, store), "architecture": cfg.architecture,
            "series": series_view(cfg, store)}


def comparison_view(store: RecordStore, names: list[str], plot_list: list[dict] = ()) -> dict | None:
    """comparison.md's and index.html's "Your checkpoints": each user checkpoint with its family, its
    measured top-1 beside the top-1 it claims (flagged outside the 95% interval), and the training-run
    plots. None when no listed checkpoint is a user's."""
    mine = [n for n in names if is_user(get_checkpoint(n))]
    if not mine:
        return None
    rows = []
    for name in mine:
        claimed = dict(get_checkpoint(name).claimed)
        for ds in _claim_datasets(get_checkpoint(name), store):
            rec = store.best(name, ds)
            cells = (Cell(name), Cell(family_title(name)), Cell(DATASETS[ds].short), *_claim_cells(rec, claimed.get(ds)))
            rows.append(checkpoint_row(name, cells, store, cls="subset" if rec and rec.subset_label else "",
                                       search=ds))
    columns = (Column("model", model=True, facts=True), Column("family"), Column("dataset"),
               *(Column(c, numeric=i != 4) for i, c in enumerate(_CLAIM_COLUMNS)))
    table = Table(columns, tuple(rows))
    files = {series_plot(s)["file"] for s in series_members(mine)}
    return {"table": table, "n_outside": table.count("outside"), "n": str(len(mine)),
            "series": [p for p in plot_list if p["file"] in files]}

