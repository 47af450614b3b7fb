"""The comparison's sections (comparison.md and index.html), each one function from the record store
to a typed table (report.tables); both renderers lay out the same tables.

    comparison_view(store, names, plots, plot_notes) -> the view both comparison.md.j2 and index.html.j2 render
"""
from __future__ import annotations

import math
import os

from vitbench.catalog.registry import list_models
from vitbench.data.specs import DATASETS, published_top1, shift_datasets
from vitbench.records import EvalRecord, RecordStore
from vitbench.report import plots, user
from vitbench.report.analyses import Analyses, agreement_table, robustness_table
from vitbench.report.facts import by_family, checkpoint_row, facts, family_title
from vitbench.report.fmt import (
    ci_text,
    count_text,
    fmt,
    fmt_signed,
    num_cell,
    number,
    rank_text,
    rate_text,
    top1_cell,
    top1_text,
)
from vitbench.report.tables import (
    NOT_MEASURED,
    Cell,
    Column,
    Row,
    Table,
    published_verdict,
    text_table,
    verdict_cell,
)
from vitbench.significance import mcnemar

_MD = {"html": False}                   # a column only markdown shows
_HTML = {"md": False}                   # a column only the HTML report shows


def _dataset_rank(dataset: str) -> int:
    return list(DATASETS).index(dataset)


# ---------------------------------------------------------------------------- every checkpoint

def families_view(names: list[str], store: RecordStore) -> Table:
    """One row per catalog family: how many of its checkpoints are listed, how many have an ImageNet
    record, its best measured and its best published ImageNet-1k top-1."""
    rows = []
    for title, members in by_family(names):
        measured = [(r.top1, n, r) for n in members if (r := store.best(n, "imagenet")) is not None]
        published = [(p, n) for n in members if (p := published_top1("imagenet", n)) is not None]
        best_m = max(measured, key=lambda t: (t[0], t[1]), default=None)
        best_p = max(published, default=None)
        rows.append([title, str(len(members)), str(len(measured)),
                     f"{top1_text(best_m[2])} ({best_m[1]})" if best_m else NOT_MEASURED,
                     f"{fmt(best_p[0], 3)} ({best_p[1]})" if best_p else ""])
    return text_table(["family", "checkpoints", "measured on IN-1k", "best measured IN-1k top1",
                       "best timm published IN-1k top1"], rows)


def overview_table(store: RecordStore, names: list[str]) -> Table:
    """Every listed checkpoint: facts, size, compute, measured and published ImageNet top-1, measured
    throughput per precision and device. Ranked by measured top-1, then published."""
    groups = store.bench_groups()
    speed = {(b.checkpoint, b.precision, b.device): b.samples_per_sec for b in store.bench}
    rows = []
    for name in names:
        f, s, ok = facts(name), store.stats.get(name), store.best(name, "imagenet")
        pub = published_top1("imagenet", name)
        cells = [Cell(name), Cell(f.family), Cell(f.pretraining), Cell(f.img_size, number(f.img_size or None)),
                 num_cell(s.param_count / 1e6 if s else None, 2), num_cell(s.gmacs if s else None, 2),
                 top1_cell(ok), num_cell(pub, 3, absent="")]
        for precision, device in groups:
            v = speed.get((name, precision, device))
            cells.append(Cell(rate_text(v) if v is not None else NOT_MEASURED, v))
        key = (-(ok.top1 if ok else -1), -(pub if pub is not None else -1), name)
        rows.append((key, checkpoint_row(name, cells, store)))
    columns = (Column("model", model=True), Column("family"), Column("pretraining data"), Column("img size", True),
               Column("params (M)", True), Column("GMACs", True, "incl. attention matmuls (timm's benchmark convention)"),
               Column("IN-1k top-1 (measured)", True),
               Column("IN-1k top-1 (timm published)", True, "not a vitbench measurement"))
    columns += tuple(Column(f"images/s {device} {precision}", True, "measured by vitbench on this device")
                     for precision, device in groups)
    return Table(columns, tuple(row for _, row in sorted(rows, key=lambda kr: kr[0])))


def published_table_view(names: list[str]) -> dict:
    """timm's published top-1 of the listed checkpoints that have a published row: `groups`, one table
    per catalog family (catalog order) ranked by ImageNet-1k top-1 within it (comparison.md), and `all`,
    every row in one table ranked the same way with a family column (the HTML report sorts and filters it)."""
    sets = ("imagenet",) + shift_datasets()
    values = [Column(DATASETS[d].short + " top1", True) for d in sets]
    groups, everything = [], []
    for title, members in by_family(names):
        rows = []
        for name in sorted(members, key=lambda n: (-(published_top1("imagenet", n) or -1), n)):
            vals = [published_top1(ds, name) for ds in sets]
            if all(v is None for v in vals):
                continue
            cells = [num_cell(v, 3, absent="") for v in vals]
            rows.append(Row((Cell(name), *cells)))
            everything.append(((-(vals[0] or -1), name), Row((Cell(name), Cell(title), *cells), facts(name).search)))
        if rows:
            groups.append({"title": title, "table": Table((Column("model", model=True), *values), tuple(rows))})
    columns = (Column("model", model=True), Column("family"), *values)
    return {"groups": groups, "all": Table(columns, tuple(r for _, r in sorted(everything, key=lambda kr: kr[0])))}


# ---------------------------------------------------------------------------- leaderboards

def _leaderboard_columns(diffs: bool) -> tuple[Column, ...]:
    """timm's CSV columns, then vitbench's; the HTML leaves out what its model cell already says and
    adds compute and the published figure."""
    columns = [Column("#", True), Column("model", model=True, facts=True), Column("img_size", True, **_MD),
               Column("top1", True), Column("top1_err", True, **_MD), Column("top5", True),
               Column("top5_err", True, **_MD), Column("param_count", True, "parameters (M)"),
               Column("GMACs", True, "incl. attention matmuls", **_HTML), Column("crop_pct", True, **_MD),
               Column("interpolation", **_MD)]
    if diffs:
        columns += [Column("top1_diff", True, "against the baseline set"), Column("top5_diff", True, **_MD),
                    Column("rank_diff", True, "baseline rank minus this rank: positive climbs")]
    return tuple(columns + [
        Column("precision"), Column("n", True, "images scored"), Column("top1 95% CI", True), Column("family", **_MD),
        Column("timm published top-1", True, **_HTML),
        Column("Δ vs published", True, "none for a subset run: it is not comparable", **_HTML),
        Column("published in CI?", **_HTML)])


def _leaderboard_row(store: RecordStore, dataset: str, rank: int, r, diffs: bool) -> Row:
    """One row of the results frame (`r`) as leaderboard cells, with its record's published verdict."""
    rec = store.best(r.model, dataset, r.precision)
    s = store.stats.get(r.model)
    pub = published_top1(dataset, r.model)
    verdict = published_verdict(rec, pub)
    cells = [Cell(str(rank), rank), Cell(r.model, note=r.subset or None), Cell(str(r.img_size), number(r.img_size)),
             num_cell(r.top1, 3), num_cell(r.top1_err, 3), num_cell(r.top5, 3), num_cell(r.top5_err, 3),
             num_cell(r.param_count, 2), num_cell(s.gmacs if s else None, 2), num_cell(r.crop_pct, 2, absent=""),
             Cell(r.interpolation or "")]
    if diffs:
        cells += [Cell(fmt_signed(r.top1_diff, 3), number(r.top1_diff)),
                  Cell(fmt_signed(r.top5_diff, 3), number(r.top5_diff)),
                  Cell(rank_text(r.rank_diff), number(r.rank_diff))]
    cells += [Cell(r.precision), Cell(count_text(r.n), number(r.n)),
              Cell(ci_text(r.top1_ci_low, r.top1_ci_high), number(r.top1_ci_low)), Cell(family_title(r.model)),
              num_cell(pub, 3, absent=""), Cell(fmt_signed(verdict.delta, 3), verdict.delta), verdict_cell(verdict, rec)]
    return checkpoint_row(r.model, cells, store, cls="subset" if r.subset else "")


def leaderboard_view(store: RecordStore, dataset: str) -> dict | None:
    """The measured leaderboard of one dataset: the rows of its results CSV, ranked by top-1."""
    df = store.results_frame(dataset)
    if df.empty:
        return None
    baseline = DATASETS[dataset].baseline
    rows = tuple(_leaderboard_row(store, dataset, i, r, baseline is not None)
                 for i, r in enumerate(df.itertuples(index=False), start=1))
    return {"id": f"board-{dataset}", "title": DATASETS[dataset].title,
            "baseline": DATASETS[baseline].title if baseline else None,
            "table": Table(_leaderboard_columns(baseline is not None), rows)}


# ---------------------------------------------------------------------------- robustness, speed

def robustness_view(store: RecordStore) -> Table | None:
    """Top-1 on each set with the change from ImageNet-1k val, per checkpoint with any of them."""
    sets = ("imagenet",) + shift_datasets()
    names = sorted({r.checkpoint for r in store.ok() if r.dataset in sets})
    if not names:
        return None
    rows = []
    for name in names:
        base = store.best(name, "imagenet")
        cells = [Cell(name), Cell(family_title(name)), top1_cell(base)]
        for ds in sets[1:]:
            r = store.best(name, ds, base.precision if base else None)
            change = f" ({r.top1 - base.top1:+.2f})" if r and base else ""
            cells.append(Cell(fmt(r.top1, 3) + change, r.top1, note=r.subset_label) if r else Cell(NOT_MEASURED))
        rows.append(((-(base.top1 if base else -1), name), checkpoint_row(name, cells, store)))
    columns = (Column("model", model=True), Column("family"), *(Column(DATASETS[d].short, True) for d in sets))
    return Table(columns, tuple(row for _, row in sorted(rows, key=lambda kr: kr[0])))


def speed_view(store: RecordStore) -> list[dict]:
    """Per precision and device: measured throughput beside ImageNet top-1, the Pareto front marked."""
    views = []
    for precision, device in store.bench_groups():
        pts = plots.speed_points(store, precision, device)
        front = plots.pareto_front([plots.Point(b.checkpoint, b.samples_per_sec, e.top1) for b, e in pts if e])
        rows = []
        for b, e in sorted(pts, key=lambda be: (-be[0].samples_per_sec, be[0].checkpoint)):
            s = store.stats.get(b.checkpoint)
            cells = (Cell(b.checkpoint), top1_cell(e), Cell(e.precision if e else ""),
                     num_cell(b.samples_per_sec, 2), Cell(str(b.batch_size), b.batch_size),
                     num_cell(s.gmacs if s else None, 2), Cell("yes" if b.checkpoint in front else ""))
            rows.append(checkpoint_row(b.checkpoint, cells, store, cls="front" if b.checkpoint in front else ""))
        name = next((b.provenance.device_name for b, _ in pts if b.provenance), device)
        columns = (Column("model", model=True), Column("IN-1k top1", True), Column("top1 precision"),
                   Column("images/s", True), Column("batch size", True), Column("GMACs", True), Column("Pareto front"))
        views.append({"title": f"{device} ({name}), {precision}", "table": Table(columns, tuple(rows))})
    return views


# ---------------------------------------------------------------------------- measured vs published

def published_check_view(store: RecordStore) -> dict | None:
    """Every 'ok' record with a published figure: measured top-1 and its 95% interval against timm's
    top-1, flagged when the published figure lies outside the interval. A subset run is labelled
    and gets neither a difference nor a flag: it is not comparable."""
    rows = []
    for r in sorted(store.ok(), key=lambda r: (_dataset_rank(r.dataset), r.checkpoint, r.precision)):
        pub = published_top1(r.dataset, r.checkpoint)
        if pub is None:
            continue
        verdict = published_verdict(r, pub)
        lo, hi = r.top1_ci if r.top1_ci else (math.nan, math.nan)
        cells = (Cell(r.checkpoint), Cell(DATASETS[r.dataset].short), Cell(r.precision), num_cell(r.top1, 3),
                 Cell(ci_text(lo, hi), number(lo)), num_cell(pub, 3), Cell(fmt_signed(verdict.delta, 3), verdict.delta),
                 verdict_cell(verdict, r))
        rows.append(checkpoint_row(r.checkpoint, cells, store, cls="" if r.comparable_to_published else "subset",
                                   search=r.dataset))
    if not rows:
        return None
    columns = (Column("model", model=True, facts=True), Column("dataset"), Column("precision"),
               Column("measured top1", True), Column("95% CI", True), Column("timm published top1", True),
               Column("Δ", True), Column("published in CI?"))
    table = Table(columns, tuple(rows))
    return {"table": table, "n_outside": table.count("outside")}


# ---------------------------------------------------------------------------- paired tests

def _correct_by_image(store: RecordStore, rec: EvalRecord) -> dict | None:
    """image -> top-1 correct, from a record's predictions parquet (None when it is not there). An
    image is its file name (ImageNet-val names are unique), so two runs pair up whatever their data
    root, layout or order; a dataset without file names falls back to the item index."""
    path = store.predictions_path(rec)
    if path is None:
        return None
    from vitbench.eval.predictions import read_predictions

    df = read_predictions(path)
    if "file" in df and df["file"].notna().all():
        keys = [os.path.basename(f) for f in df["file"]]
    else:
        keys = [int(i) for i in df["index"]]
    return {k: int(t5[0]) == int(t) for k, t, t5 in zip(keys, df["target"], df["top5_idx"], strict=True)}


def paired_view(store: RecordStore, dataset: str = "imagenet") -> dict | None:
    """McNemar tests between checkpoints adjacent on the leaderboard, from the per-sample predictions
    (each predictions file read once)."""
    ranked = sorted(store.ok(dataset), key=lambda r: (-r.top1, r.checkpoint, r.precision))
    loaded = [(r, c) for r in ranked if (c := _correct_by_image(store, r)) is not None]
    rows = []
    for (ra, ca), (rb, cb) in zip(loaded, loaded[1:], strict=False):   # adjacent pairs
        common = sorted(set(ca) & set(cb))
        if not common:
            continue
        b, c, p = mcnemar([ca[i] for i in common], [cb[i] for i in common])
        rows.append(Row((Cell(ra.checkpoint, note=ra.precision), Cell(rb.checkpoint, note=rb.precision),
                         Cell(count_text(len(common)), len(common)), Cell(str(b), b), Cell(str(c), c),
                         Cell(f"{p:.3g}", p), Cell("yes" if p < 0.05 else "no"))))
    if not rows:
        return None
    columns = (Column("model A", model=True), Column("model B", model=True), Column("paired images", True),
               Column("only A right", True), Column("only B right", True), Column("McNemar p", True),
               Column("differ at 5%?"))
    return {"title": DATASETS[dataset].title, "table": Table(columns, tuple(rows))}


# ---------------------------------------------------------------------------- not measured

def checkpoints_text(names: list[str], most: int = 8) -> str:
    """A list of checkpoints short enough for one table cell."""
    registered = list_models()
    if len(names) == len(registered) and set(names) == set(registered):
        return f"all {len(names)} registered checkpoints"
    missing = [n for n in registered if n not in set(names)]
    if len(names) > most and len(missing) <= 3 and set(names) <= set(registered):
        return f"all {len(registered)} registered checkpoints but {', '.join(missing)}"
    if len(names) <= most:
        return ", ".join(names)
    return ", ".join(names[:most]) + f", and {len(names) - most} more (their cards say which)"


def failed_table(store: RecordStore) -> Table | None:
    """The failed jobs, one row per distinct reason (largest first): how many jobs, which checkpoints and
    datasets; the checkpoint's card has the whole reason."""
    groups: dict[str, dict] = {}
    for r in store.evals:
        if r.status == "ok":
            continue
        for text in [reason.text.strip() for reason in r.reasons] or ["no reason recorded"]:
            g = groups.setdefault(text, {"jobs": 0, "checkpoints": set(), "datasets": set()})
            g["jobs"] += 1
            g["checkpoints"].add(r.checkpoint)
            g["datasets"].add((_dataset_rank(r.dataset), r.dataset, r.precision))
    rows = tuple(Row((Cell(text.splitlines()[0], detail=text), Cell(str(g["jobs"]), g["jobs"]),
                      Cell(checkpoints_text(sorted(g["checkpoints"]))),
                      Cell(", ".join(f"{d} ({p})" for _, d, p in sorted(g["datasets"])))))
                 for text, g in sorted(groups.items(), key=lambda kv: (-kv[1]["jobs"], kv[0])))
    columns = (Column("why (first line; its card has the rest)"), Column("jobs", True), Column("checkpoints"),
               Column("datasets"))
    return Table(columns, rows) if rows else None


def not_measured_view(store: RecordStore, names: list[str]) -> dict | None:
    """How many of the listed checkpoints' evaluation jobs have no 'ok' record, and the failed ones
    with their reasons. The same on every machine: what could not run here is no record."""
    jobs = sum(store.best(name, ds) is None for name in names for ds in DATASETS)
    if not jobs:
        return None
    return {"jobs": str(jobs), "total": str(len(names) * len(DATASETS)), "checkpoints": str(len(names)),
            "datasets": str(len(DATASETS)), "failed": failed_table(store)}


# ---------------------------------------------------------------------------- the whole view

def comparison_view(store: RecordStore, names: list[str] | None = None, plot_list: list[dict] = (),
                    plot_notes: list[str] = (), analyses: Analyses | None = None) -> dict:
    """comparison.md's and index.html's view; `names` are the checkpoints its registry-wide tables
    cover (the family overview, the checkpoint overview, what is not measured and timm's published
    figures), all registered ones by default."""
    names = list_models() if names is None else names
    ok = store.ok()
    analyses = analyses or Analyses(store, names=names)
    return {
        "records_dir": f"{store.results_dir / 'records'}/",    # as given: comparison.md names where it came from
        "measured": bool(ok or store.stats or store.bench),
        "counts": {"ok": str(len(ok)), "failed": str(len(store.evals) - len(ok)), "stats": str(len(store.stats)),
                   "bench": str(len(store.bench)), "checkpoints": str(len(names))},
        "families": families_view(names, store),
        "overview": overview_table(store, names),
        "leaderboards": [v for ds in DATASETS if (v := leaderboard_view(store, ds)) is not None],
        "robustness": robustness_view(store),
        "speed": speed_view(store),
        "published_check": published_check_view(store),
        "paired": paired_view(store),
        "agreement": agreement_table(analyses),
        "effective_robustness": robustness_table(store, analyses.robustness()),
        "unmeasured": not_measured_view(store, names),
        "plots": list(plot_list),
        "plot_notes": list(plot_notes),
        "published": published_table_view(names),
        "user": user.comparison_view(store, names, plot_list),     # your checkpoints, claims checked
    }
