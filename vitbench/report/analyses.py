"""The analyses as report sections: agreement across precisions and backends, effective robustness
(measured and timm's published), calibration and per-class accuracy; the results CSVs' extra
columns; timm's whole published field behind the speed and compute plots; and what `vitbench
compare` and `vitbench robustness` print. The math is vitbench.analysis; this module picks the
records, reads their predictions and lays the answers out as report.tables.Table.

    Analyses(store, plots_dir)                   one per report: each predictions file read once
    agreement_view(cfg, an), agreement_table(an)           a card's table, the comparison's over all
    calibration_view(cfg, an), worst_classes_view(cfg, an) a card's ECE line, diagram, ten worst classes
    robustness_rows(store, names) -> [RobustnessRow]        measured (complete records) and published
    robustness_view(cfg, an), robustness_table(store, rows)
    draw_robustness_plot(store, rows, plots_dir) -> {title, file} | None
    Analyses.card(cfg) -> {agreement, calibration, worst, robustness}    a card's whole section
    results_frame(store, dataset)                the results CSV: + effective_robustness, ece, top1_1000way
    field_cloud(x, device) -> Cloud              timm's published models, grey behind the plots
    compare(store, a, b, dataset) -> Comparison  vitbench compare
"""
from __future__ import annotations

import functools
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import pandas as pd

from vitbench.analysis import compare_predictions, ece, reliability, reliability_diagram, worst_classes
from vitbench.analysis.agreement import Agreement
from vitbench.analysis.calibration import N_BINS, frame_confidence
from vitbench.analysis.robustness import ER_SETS, published_baseline
from vitbench.catalog import published_benchmarks
from vitbench.catalog.registry import CheckpointCfg, get_checkpoint, is_registered, list_models, safe_name
from vitbench.data.specs import DATASETS, published_cloud, published_top1
from vitbench.eval.precision import PRECISIONS
from vitbench.records import EvalRecord, RecordStore, setting_name
from vitbench.report.facts import checkpoint_row, family_title
from vitbench.report.fmt import ci_text, count_text, fmt, fmt_signed, num_cell
from vitbench.report.tables import NOT_MEASURED, Cell, Column, Row, Table, text_table

ER_PLOT = "effective_robustness.png"
WORST = 10                         # classes a card lists


# ---------------------------------------------------------------------------- which records

def _ok(store: RecordStore, checkpoint: str, dataset: str) -> list[EvalRecord]:
    """The checkpoint's 'ok' records on a dataset, preferred first (fp32, the plain setting)."""
    return [r for r in store.evals_of(checkpoint, dataset) if r.status == "ok"]


def imagenet_record(store: RecordStore, rec: EvalRecord) -> EvalRecord | None:
    """The complete ImageNet-val record a complete shift-set record is set against: the same setting
    when there is one, else the preferred; None when either is not of the whole dataset."""
    if not rec.comparable_to_published:
        return None
    full = [r for r in _ok(store, rec.checkpoint, "imagenet") if r.comparable_to_published]
    return next((r for r in full if r.setting == rec.setting), full[0] if full else None)


def _read(store: RecordStore, rec: EvalRecord, cache: dict) -> pd.DataFrame | None:
    """A record's predictions frame, read once into `cache` (None when the file is not there)."""
    path = store.predictions_path(rec)
    if path is None:
        return None
    if path not in cache:
        from vitbench.eval.predictions import read_predictions

        cache[path] = read_predictions(path)
    return cache[path]


# ---------------------------------------------------------------------------- per checkpoint

@dataclass(frozen=True)
class Pair:
    """One setting's record against the reference record of the same checkpoint and dataset."""
    reference: EvalRecord
    other: EvalRecord
    agreement: Agreement | None    # None: a predictions file is missing


@dataclass(frozen=True)
class Calibration:
    record: EvalRecord
    ece: float | None              # fraction; the record's, else computed from its predictions
    diagram: str | None            # the reliability diagram, relative to the reports folder
    worst: pd.DataFrame | None     # analysis.per_class.worst_classes rows


class Analyses:
    """The analyses of one report, each checkpoint's computed once (the cards and the comparison
    share them); a checkpoint's predictions files are read once and let go when it is done."""

    def __init__(self, store: RecordStore, plots_dir: Path | None = None, names: list[str] | None = None):
        self.store = store
        self.plots_dir = Path(plots_dir) if plots_dir is not None else None   # None: no diagrams drawn
        self.names = list_models() if names is None else list(names)          # whose published rows count
        self._pairs: dict[str, list[Pair]] = {}
        self._calibration: dict[str, Calibration | None] = {}
        self._rows: list[RobustnessRow] | None = None
        self.diagrams: list[Path] = []             # reliability diagrams written
        self.er_plot: dict | None = None           # {title, file} once draw_robustness_plot drew it

    def robustness(self) -> list[RobustnessRow]:
        """robustness_rows of the store and the report's checkpoints, computed once."""
        if self._rows is None:
            self._rows = robustness_rows(self.store, self.names)
        return self._rows

    def draw_robustness_plot(self) -> dict | None:
        """The shared effective-robustness plot (when the store has an 'ok' record and there is a
        plots folder), which the comparison lists and every card shows."""
        if self.plots_dir is not None:
            self.er_plot = draw_robustness_plot(self.store, self.robustness(), self.plots_dir)
        return self.er_plot

    def pairs(self, checkpoint: str, cache: dict | None = None) -> list[Pair]:
        """Each non-reference setting against the reference (fp32 first) on every dataset the
        checkpoint has several 'ok' records of (ReaL is left out: its labels are sets)."""
        if checkpoint not in self._pairs:
            cache = {} if cache is None else cache
            out = []
            for ds, spec in DATASETS.items():
                recs = _ok(self.store, checkpoint, ds) if spec.labels == "single" else []
                for other in recs[1:]:
                    a, b = _read(self.store, recs[0], cache), _read(self.store, other, cache)
                    out.append(Pair(recs[0], other, compare_predictions(a, b) if a is not None and b is not None
                                    else None))
            self._pairs[checkpoint] = out
        return self._pairs[checkpoint]

    def calibration(self, checkpoint: str, cache: dict | None = None) -> Calibration | None:
        """ECE, reliability diagram and worst classes of the preferred ImageNet-val record."""
        if checkpoint not in self._calibration:
            recs = _ok(self.store, checkpoint, "imagenet")
            self._calibration[checkpoint] = self._calibrate(recs[0], {} if cache is None else cache) if recs else None
        return self._calibration[checkpoint]

    def _calibrate(self, rec: EvalRecord, cache: dict) -> Calibration:
        frame = _read(self.store, rec, cache)
        if frame is None:
            return Calibration(rec, rec.ece, None, None)
        value, diagram = rec.ece, None
        if "top5_prob" in frame:
            prob, right = frame_confidence(frame)
            value = ece(prob, right) if value is None else value
            if self.plots_dir is not None:
                path = self.plots_dir / "reliability" / f"{safe_name(rec.checkpoint)}.png"
                title = f"{rec.checkpoint}\n{DATASETS[rec.dataset].title}, {rec.setting}"
                self.diagrams.append(reliability_diagram(reliability(prob, right), path, title=title))
                diagram = f"plots/reliability/{path.name}"
        return Calibration(rec, value, diagram, worst_classes(frame, WORST))

    def card(self, cfg: CheckpointCfg) -> dict:
        """Everything a card's Analyses section lays out (its predictions files read once between them)."""
        cache: dict = {}
        self.pairs(cfg.name, cache)
        self.calibration(cfg.name, cache)
        return {"agreement": agreement_view(cfg, self), "calibration": calibration_view(cfg, self),
                "worst": worst_classes_view(cfg, self), "robustness": robustness_view(cfg, self)}


# ---------------------------------------------------------------------------- agreement

def _agreement_cells(pair: Pair) -> list[Cell]:
    g = pair.agreement
    if g is None:
        return [Cell("no predictions file")] + [Cell("")] * 6
    return [Cell(count_text(g.n), g.n), Cell(fmt_signed(g.diff, 3), g.diff), Cell(ci_text(g.diff_lo, g.diff_hi),
            g.diff_lo), Cell(count_text(g.flips), g.flips), num_cell(g.flip_rate, 3), Cell(f"{g.mcnemar_p:.3g}",
            g.mcnemar_p), num_cell(g.top5_overlap, 4)]


_AGREEMENT_COLUMNS = (Column("images", True, "images both records scored"),
                      Column("Δ top-1", True, "setting minus reference, points"),
                      Column("95% CI", True, "Newcombe's paired interval of the difference"),
                      Column("flips", True, "images whose top-1 class differs"),
                      Column("flip rate (%)", True), Column("McNemar p", True, "exact, two-sided"),
                      Column("top-5 overlap", True, "mean shared share of the two top-5 lists"))


def agreement_view(cfg: CheckpointCfg, an: Analyses) -> dict:
    """The card's "Agreement across precisions": each setting against the reference record."""
    pairs = an.pairs(cfg.name)
    rows = [Row((Cell(DATASETS[p.other.dataset].title), Cell(p.reference.setting), Cell(p.other.setting),
                 *_agreement_cells(p))) for p in pairs]
    settings = sorted({r.setting for ds in DATASETS for r in _ok(an.store, cfg.name, ds)})
    columns = (Column("dataset"), Column("reference"), Column("setting")) + _AGREEMENT_COLUMNS
    run = f"`vitbench run {cfg.name}"
    note = f"every record is at {settings[0]}; {run} --precision amp_bf16` (or `--compile`) adds a setting" \
        if settings else f"no records; {run}` and {run} --precision amp_bf16` give two settings"
    return {"table": Table(columns, tuple(rows)) if rows else None, "note": f"{NOT_MEASURED}: {note} to compare"}


def agreement_table(an: Analyses) -> Table | None:
    """Every checkpoint's settings against its reference, the largest flip rate first."""
    names = sorted({r.checkpoint for r in an.store.ok()})
    pairs = [p for n in names for p in an.pairs(n)]
    if not pairs:
        return None
    pairs.sort(key=lambda p: (p.agreement is None, -(p.agreement.flip_rate if p.agreement else 0),
                              p.other.checkpoint, list(DATASETS).index(p.other.dataset), p.other.setting))
    rows = tuple(checkpoint_row(p.other.checkpoint, [Cell(p.other.checkpoint), Cell(DATASETS[p.other.dataset].short),
                                                     Cell(p.reference.setting), Cell(p.other.setting),
                                                     *_agreement_cells(p)], an.store) for p in pairs)
    columns = (Column("model", model=True), Column("dataset"), Column("reference"), Column("setting"))
    return Table(columns + _AGREEMENT_COLUMNS, rows)


# ---------------------------------------------------------------------------- calibration, per class

def calibration_view(cfg: CheckpointCfg, an: Analyses) -> dict:
    """The card's ECE line and reliability diagram (preferred ImageNet-val record)."""
    cal = an.calibration(cfg.name)
    if cal is None:
        return {"ece": f"{NOT_MEASURED} (no ImageNet-1k val record; `vitbench run {cfg.name} --datasets imagenet` "
                       "measures it)", "diagram": None}
    if cal.ece is None:
        return {"ece": f"{NOT_MEASURED} (the {cal.record.setting} ImageNet-1k val record has neither an ECE nor "
                       f"probabilities beside it; `vitbench run {cfg.name} --datasets imagenet --force` remeasures it)",
                "diagram": None}
    where = ", ".join(filter(None, [DATASETS["imagenet"].title, cal.record.setting, cal.record.subset_label]))
    return {"ece": f"{100 * cal.ece:.2f}% ({where}; {N_BINS} equal-width bins of the top-1 confidence, L1)",
            "diagram": cal.diagram}


def worst_classes_view(cfg: CheckpointCfg, an: Analyses) -> dict:
    """The card's ten worst ImageNet-val classes by top-1."""
    cal = an.calibration(cfg.name)
    if cal is None or cal.worst is None:
        why = "no ImageNet-1k val record" if cal is None else "no predictions file beside the record"
        return {"table": None, "note": f"{NOT_MEASURED} ({why})", "record": ""}
    rows = [[r.name.split(", ")[0], r.wnid, fmt(r.top1, 1), f"{r.correct:,} of {r.images:,}"]
            for r in cal.worst.itertuples(index=False)]
    record = ", ".join(filter(None, [cal.record.setting, cal.record.subset_label]))
    return {"table": text_table(["class", "wnid", "top-1 (%)", "right of images"], rows), "note": "",
            "record": record}


# ---------------------------------------------------------------------------- effective robustness

@dataclass(frozen=True)
class RobustnessRow:
    checkpoint: str
    dataset: str                   # v2 | sketch | r | a
    source: str                    # 'measured' (complete vitbench records) | 'published' (timm's CSVs)
    imagenet_top1: float           # percent
    top1: float                    # percent, on the shift set (A and R: timm's 200-class number)
    baseline_top1: float           # what the baseline expects at imagenet_top1
    effective_robustness: float    # top1 - baseline_top1, points
    setting: str | None = None     # measured: the shift record's setting

    def to_dict(self) -> dict:
        return asdict(self)


def _row(checkpoint: str, ds: str, source: str, imagenet: float, top1: float, setting: str | None = None):
    expected = float(published_baseline(ds).predict(imagenet))
    return RobustnessRow(checkpoint, ds, source, float(imagenet), float(top1), expected, float(top1) - expected,
                         setting)


def measured_row(store: RecordStore, rec: EvalRecord) -> RobustnessRow | None:
    """A complete shift-set record against its complete ImageNet-val record (None without one)."""
    base = imagenet_record(store, rec)
    return _row(rec.checkpoint, rec.dataset, "measured", base.top1, rec.top1, rec.setting) if base else None


def robustness_rows(store: RecordStore, names: list[str] | None = None) -> list[RobustnessRow]:
    """Per checkpoint and shift set (v2, sketch, r, a): the measured row (its preferred complete
    record with a complete ImageNet-val record; never a subset) and timm's published row (for the
    registered `names`, all by default). Checkpoints in name order, sets in ER_SETS order."""
    names = set(list_models() if names is None else names)
    rows = []
    for name in sorted(names | {r.checkpoint for r in store.ok()}):
        for ds in ER_SETS:
            full = [r for r in _ok(store, name, ds) if r.comparable_to_published]
            measured = next(filter(None, (measured_row(store, r) for r in full)), None)
            rows += [measured] if measured else []
            pub = (published_top1("imagenet", name), published_top1(ds, name)) if name in names else (None, None)
            rows += [_row(name, ds, "published", *pub)] if None not in pub else []
    return rows


def robustness_view(cfg: CheckpointCfg, an: Analyses) -> dict:
    """The card's effective robustness: its measured and published rows, and the shared plot."""
    mine = [r for r in an.robustness() if r.checkpoint == cfg.name]
    table = [[DATASETS[r.dataset].title, r.source, r.setting or "", fmt(r.imagenet_top1, 3), fmt(r.top1, 3),
              fmt(r.baseline_top1, 2), fmt_signed(r.effective_robustness, 2)] for r in mine]
    measured = any(r.source == "measured" for r in mine)
    how = f"{NOT_MEASURED} (complete ImageNet-1k val and shift-set records; `vitbench run {cfg.name}` measures them)"
    note = "" if measured else f"Measured: {how}." if table else \
        f"Effective robustness: {how}; timm publishes no shift-set figures for this checkpoint."
    return {"table": text_table(["set", "source", "setting", "IN-1k top-1", "top-1", "baseline expects",
                                 "effective robustness"], table) if table else None,
            "measured": measured, "plot": an.er_plot["file"] if an.er_plot and table else None, "note": note}


def robustness_table(store: RecordStore, rows: list[RobustnessRow]) -> Table | None:
    """One row per checkpoint and source: ImageNet top-1 and the effective robustness on each set."""
    by: dict[tuple[str, str], dict[str, RobustnessRow]] = {}
    for r in rows:
        by.setdefault((r.checkpoint, r.source), {})[r.dataset] = r
    if not by:
        return None
    out = []
    for (name, source), sets in by.items():
        first = next(iter(sets.values()))
        cells = [Cell(name), Cell(family_title(name)), Cell(source), num_cell(first.imagenet_top1, 3)]
        cells += [Cell(fmt_signed(sets[d].effective_robustness, 2), sets[d].effective_robustness) if d in sets
                  else Cell("") for d in ER_SETS]
        out.append(((source != "measured", -first.imagenet_top1, name), checkpoint_row(name, cells, store)))
    columns = (Column("model", model=True), Column("family"), Column("source"), Column("IN-1k top-1", True),
               *(Column(f"ER {DATASETS[d].short}", True, "points above the baseline") for d in ER_SETS))
    return Table(columns, tuple(r for _, r in sorted(out, key=lambda kr: kr[0])))


def draw_robustness_plot(store: RecordStore, rows: list[RobustnessRow], plots_dir: Path) -> dict | None:
    """The effective-robustness plot of `rows` (one panel per set, timm's cloud behind), drawn when
    the store has any 'ok' record (a report of nothing measured has no plots)."""
    if not rows or not store.ok():
        return None
    from vitbench.analysis.plots import RobustnessPoint, robustness_plot

    points = [RobustnessPoint(r.checkpoint, family_title(r.checkpoint) or "not registered", r.dataset,
                              r.imagenet_top1, r.top1, r.source == "measured") for r in rows]
    robustness_plot(Path(plots_dir) / ER_PLOT, points)
    return {"title": "Effective robustness (measured and timm's published) against timm's cloud",
            "file": f"plots/{ER_PLOT}"}


# ---------------------------------------------------------------------------- the results CSVs

def _nan(x, nd: int) -> float:
    return float("nan") if x is None else round(float(x), nd)


def results_frame(store: RecordStore, dataset: str) -> pd.DataFrame:
    """The store's results frame with `effective_robustness` after timm's columns (v2, sketch, r, a;
    empty for a subset or without a complete ImageNet-val record), then `ece` (fraction) and, for A
    and R, `top1_1000way` (percent) after vitbench's."""
    df = store.results_frame(dataset).copy()
    recs = {(r.checkpoint, r.setting): r for r in store.ok(dataset)}          # the frame's `precision` is the setting
    rows = [recs.get(k) for k in zip(df["model"], df["precision"], strict=True)]
    if dataset in ER_SETS and "effective_robustness" not in df:
        er = [m.effective_robustness if r and (m := measured_row(store, r)) else None for r in rows]
        df.insert(df.columns.get_loc("rank_diff") + 1, "effective_robustness", [_nan(v, 3) for v in er])
    if "ece" not in df:
        df["ece"] = [_nan(r.ece if r else None, 4) for r in rows]
    if DATASETS[dataset].subset and "top1_1000way" not in df:
        df["top1_1000way"] = [_nan(r.top1_1000way if r else None, 3) for r in rows]
    return df


# ---------------------------------------------------------------------------- timm's field, in grey

@dataclass(frozen=True)
class Cloud:
    """timm's published models as grey points behind a plot."""
    x: tuple[float, ...]
    y: tuple[float, ...]
    label: str                     # the legend's words; the count in view is added when drawn

    def draw(self, ax, xy: list[tuple[float, float]], logx: bool = False) -> None:
        """The cloud behind the plot's points `xy`, the view fitted to the points (padded: 0.3 decades
        on a log x axis, 10% of the span otherwise), so the field is context and never squeezes the
        checkpoints into a corner; the legend counts the models in view."""
        import numpy as np

        x, y = np.asarray(self.x, dtype=float), np.asarray(self.y, dtype=float)
        xy = [(px, py) for px, py in xy if px > 0 or not logx]      # a log axis shows no x <= 0
        if xy:
            px, py = np.array([p[0] for p in xy]), np.array([p[1] for p in xy])
            if logx:
                lo, hi = np.log10(px.min()) - 0.3, np.log10(px.max()) + 0.3
                xlim = (10 ** lo, 10 ** hi)
            else:
                pad = 0.1 * (px.max() - px.min() or abs(px.max()) or 1.0)
                xlim = (px.min() - pad, px.max() + pad)
            pad = max(0.1 * (py.max() - py.min()), 2.0)
            ylim = (py.min() - pad, py.max() + pad)
            ax.set_xlim(*xlim)
            ax.set_ylim(*ylim)
            view = (x >= xlim[0]) & (x <= xlim[1]) & (y >= ylim[0]) & (y <= ylim[1])
            x, y = x[view], y[view]
        ax.scatter(x, y, s=9, color="#d0d0d0", linewidths=0, zorder=0, label=self.label.format(n=f"{len(x):,}"))


@functools.cache
def _benchmarks() -> dict[str, pd.DataFrame]:
    """timm's published benchmark CSVs by stem: the complete ones (published_all/), then the packaged
    rows of the registered architectures for files only those hold (the CPU one)."""
    out = {}
    root = resources.files("vitbench.catalog").joinpath("published_all")
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("benchmark-") and entry.name.endswith(".csv"):
            with entry.open() as f:
                out[entry.name[:-4]] = pd.read_csv(f)
    for stem, df in published_benchmarks().items():
        out.setdefault(stem, df.reset_index())
    return out


@functools.cache
def _field(stem: str) -> pd.DataFrame:
    """timm's ImageNet results rows that have a row of benchmark `stem` (architecture and image size)."""
    bench = _benchmarks()[stem].drop_duplicates(["model", "infer_img_size"])
    cloud = published_cloud("imagenet")
    cloud = cloud.assign(arch=cloud["model"].str.partition(".")[0])
    return cloud.merge(bench.drop(columns="param_count"), left_on=["arch", "img_size"],
                       right_on=["model", "infer_img_size"], suffixes=("", "_bench"))


def field_cloud(x: str, device: str | None = None) -> Cloud | None:
    """timm's published models for a plot of ImageNet top-1 against `x`: 'params' (every row of its
    results CSV), 'gmacs' (those with a row in its complete benchmark) or 'throughput' on `device`
    (those with a row in its benchmark of that kind of device, named: other hardware)."""
    if x == "params":
        df = published_cloud("imagenet")
        params = pd.to_numeric(df["param_count"].astype(str).str.replace(",", ""), errors="coerce")   # '1,014.45'
        keep = params.notna() & (params > 0)
        return Cloud(tuple(params[keep]), tuple(df["top1"][keep]), "timm's published models ({n} in view)")
    stems = [s for s in _benchmarks() if ("cpu" in s) == (device == "cpu")] if x == "throughput" \
        else list(_benchmarks())[:1]
    if not stems:
        return None
    df = _field(stems[0])
    col = "infer_samples_per_sec" if x == "throughput" else "infer_gmacs"
    df = df[df[col] > 0]
    label = "timm's published models ({n} in view)" + (f"\nimages/s: timm's {stems[0]}.csv (other hardware)"
                                                       if x == "throughput" else "")
    return Cloud(tuple(df[col]), tuple(df["top1"]), label)


# ---------------------------------------------------------------------------- vitbench compare

class CompareError(LookupError):
    """A record or predictions file `vitbench compare` needs is not there (one line, naming it)."""


def parse_spec(text: str) -> tuple[str, str | None]:
    """'checkpoint@setting' -> (checkpoint, setting); a suffix that is not a setting (an hf-hub
    revision) stays part of the name: (checkpoint, None)."""
    name, at, tail = text.rpartition("@")
    parts = tail.split("+")
    if at and parts[0] in PRECISIONS and set(parts[1:]) <= {"compile", "channels_last"}:
        return name, setting_name(parts[0], "compile" in parts, "channels_last" in parts)
    return text, None


def _find(store: RecordStore, spec: str, dataset: str) -> tuple[EvalRecord, pd.DataFrame]:
    name, setting = parse_spec(spec)
    if not _ok(store, name, dataset) and is_registered(name):
        name = get_checkpoint(name).name
    recs = _ok(store, name, dataset)
    where = store.results_dir / "records" / dataset
    if not recs:
        raise CompareError(f"no 'ok' record of {name} on {dataset} under {where}/")
    rec = recs[0] if setting is None else next((r for r in recs if r.setting == setting), None)
    if rec is None:
        raise CompareError(f"no 'ok' record of {name}@{setting} on {dataset} under {where}/ "
                           f"(it has {', '.join(r.setting for r in recs)})")
    frame = _read(store, rec, {})
    if frame is None:
        missing = where / (rec.predictions_file or f"{safe_name(name)}__{rec.setting}.parquet")
        raise CompareError(f"{name}@{rec.setting} on {dataset}: no predictions file {missing}")
    return rec, frame


@dataclass(frozen=True)
class Comparison:
    dataset: str
    a: EvalRecord
    b: EvalRecord
    agreement: Agreement

    def to_dict(self) -> dict:
        return {"a": f"{self.a.checkpoint}@{self.a.setting}", "b": f"{self.b.checkpoint}@{self.b.setting}",
                "dataset": self.dataset, **self.agreement.to_dict()}

    def text(self) -> str:
        g = self.agreement
        lines = [("A", f"{self.a.checkpoint}@{self.a.setting}"), ("B", f"{self.b.checkpoint}@{self.b.setting}"),
                 ("dataset", DATASETS[self.dataset].title), ("images", f"{g.n:,} (both scored)"),
                 ("top-1 A", f"{g.top1_a:.3f}%"), ("top-1 B", f"{g.top1_b:.3f}%"),
                 ("Δ top-1 (B - A)", f"{g.diff:+.3f} points (95% CI {g.diff_lo:+.3f} to {g.diff_hi:+.3f})"),
                 ("flips", f"{g.flips:,} ({g.flip_rate:.3f}% of images)"), ("McNemar p (exact)", f"{g.mcnemar_p:.3g}"),
                 ("top-5 overlap", f"{g.top5_overlap:.4f}")]
        lines += [(f"note {k}", f"record of {label}") for k, r in (("A", self.a), ("B", self.b))
                  if (label := r.subset_label)]
        return "\n".join(f"{k:<18} {v}" for k, v in lines)


def compare(store: RecordStore, a: str, b: str, dataset: str = "imagenet") -> Comparison:
    """The agreement of records `a` and `b` ('checkpoint@setting', or a checkpoint: its preferred
    record) on `dataset`, over the images both scored."""
    if dataset not in DATASETS or DATASETS[dataset].labels != "single":
        raise CompareError(f"--dataset {dataset!r}: expected one of "
                           f"{', '.join(d for d, s in DATASETS.items() if s.labels == 'single')}")
    (ra, fa), (rb, fb) = _find(store, a, dataset), _find(store, b, dataset)
    return Comparison(dataset, ra, rb, compare_predictions(fa, fb))


def robustness_text(rows: list[RobustnessRow]) -> str:
    """`vitbench robustness` as an aligned table."""
    head = ("checkpoint", "set", "source", "setting", "IN-1k top-1", "top-1", "baseline", "eff. robustness")
    body = [(r.checkpoint, r.dataset, r.source, r.setting or "", f"{r.imagenet_top1:.3f}", f"{r.top1:.3f}",
             f"{r.baseline_top1:.3f}", f"{r.effective_robustness:+.3f}") for r in rows]
    width = [max(len(t[i]) for t in [head, *body]) for i in range(len(head))]
    return "\n".join("  ".join(t[i].ljust(width[i]) if i < 4 else t[i].rjust(width[i]) for i in range(len(head)))
                     for t in [head, *body])


__all__ = ["Analyses", "Pair", "Calibration", "agreement_view", "agreement_table", "calibration_view",
           "worst_classes_view", "RobustnessRow", "robustness_rows", "measured_row", "robustness_view",
           "robustness_table", "draw_robustness_plot", "results_frame", "Cloud", "field_cloud", "CompareError",
           "parse_spec", "Comparison", "compare", "robustness_text", "imagenet_record", "ER_PLOT"]
