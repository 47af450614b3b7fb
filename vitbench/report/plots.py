"""Plots for reports/plots/: accuracy vs speed, accuracy vs compute, ImageNet-val vs each shift set.

    draw_plots(store, plots_dir) -> ([{title, file}], [note for each plot skipped])

Every point is read from the record store and carries its checkpoint's name, the Pareto front is
highlighted where the plot has one, and the PNGs are deterministic (Agg backend, fixed size and dpi, no
'Software' metadata).
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import patheffects  # noqa: E402

from vitbench.data.specs import DATASETS, shift_datasets  # noqa: E402
from vitbench.records import BenchRecord, EvalRecord, RecordStore, atomic_write_bytes  # noqa: E402
from vitbench.report.analyses import Cloud, field_cloud  # noqa: E402

DPI = 100
FIGSIZE = (11, 7.5)
_HALO = [patheffects.withStroke(linewidth=2, foreground="white")]   # labels stay legible over timm's cloud
MAX_NAMED = 12          # more points than this: numbered markers and a key beside the axes
MAX_KEYED = 60          # more than this (the zoo: 179): only the Pareto front is named, a key would not fit
FIGSIZE_KEYED = (15, 8)


@dataclass(frozen=True)
class Point:
    label: str
    x: float
    y: float
    subset: bool = False     # measured on part of the dataset: drawn hollow, labelled "(subset, N of M)"


def pareto_front(points: list[Point], maximize_x: bool = True) -> set[str]:
    """Labels of the points no other point beats: higher y and (higher x, or lower x when not
    `maximize_x`), at least as good on both and better on one."""
    sign = 1.0 if maximize_x else -1.0
    front = set()
    for p in points:
        px = sign * p.x
        dominated = any(
            (sign * q.x >= px and q.y >= p.y) and (sign * q.x > px or q.y > p.y) for q in points if q is not p
        )
        if not dominated:
            front.add(p.label)
    return front


def _number(fig, ax, points: list[Point], total: int) -> None:
    """Many points: each of `points` gets a number (alphabetical by name) and a key lists number -> name,
    so every checkpoint can be found however dense the cluster. Points within a few pixels share one
    label ("21,22,23"). Fewer `points` than the plot's `total`: the key says which ones it numbers."""
    order = sorted(points, key=lambda p: p.label)
    number = {p.label: i for i, p in enumerate(order, 1)}
    fig.subplots_adjust(left=0.06, right=0.62, top=0.94, bottom=0.08)
    fig.canvas.draw()                             # final limits, so data -> pixel transforms hold
    groups: list[tuple[tuple[float, float], Point, list[int]]] = []
    for p in sorted(points, key=lambda p: number[p.label]):
        px = ax.transData.transform((p.x, p.y))
        near = next((g for g in groups if abs(g[0][0] - px[0]) < 8 and abs(g[0][1] - px[1]) < 8), None)
        if near is None:
            groups.append(((px[0], px[1]), p, [number[p.label]]))
        else:
            near[2].append(number[p.label])
    for _, p, numbers in groups:
        ax.annotate(",".join(map(str, numbers)), (p.x, p.y), textcoords="offset points", xytext=(4, 2),
                    fontsize=7, path_effects=_HALO)
    key = "\n".join(f"{i:>2}  {p.label}" for i, p in enumerate(order, 1))
    if len(points) < total:
        key = f"{total} checkpoints, too many to number: " + (
            "the Pareto front\n(comparison.md's tables list them all)\n\n" + key if points
            else "comparison.md's\ntables list them all")
    fig.text(0.64, 0.94, key, va="top", ha="left", family="monospace", fontsize=7.5)


def _label(ax, points: list[Point]) -> None:
    """Name every point; a label moves up or down (in fixed steps) until it clears the labels already
    placed nearby, and points in the right third get their label on their left, inside the axes."""
    ax.figure.canvas.draw()                       # fix the limits so data -> pixel transforms are final
    x0, x1 = ax.get_xlim()
    placed: list[tuple[float, float]] = []
    for p in points:
        px, py = ax.transData.transform((p.x, p.y))
        right = px > ax.transData.transform((x0, 0))[0] + 0.66 * (
            ax.transData.transform((x1, 0))[0] - ax.transData.transform((x0, 0))[0])
        for dy in (6, -12, 16, -22, 26, -32, 36, -42, 46):
            ly = py + dy * DPI / 72
            if all(abs(ly - qy) > 9 or abs(px - qx) > 220 for qx, qy in placed):
                break
        placed.append((px, ly))
        ax.annotate(p.label, (p.x, p.y), textcoords="offset points", xytext=(-4 if right else 4, dy),
                    ha="right" if right else "left", fontsize=6.5, path_effects=_HALO,
                    arrowprops={"arrowstyle": "-", "color": "#888888", "linewidth": 0.6} if abs(dy) > 12 else None)


def scatter(path: Path, points: list[Point], *, title: str, xlabel: str, ylabel: str,
            front: set[str] | None = None, logx: bool = False, logy: bool = False,
            diagonal: bool = False, cloud: Cloud | None = None) -> Path:
    """One labelled scatter plot written to `path` (PNG); `front` labels are drawn as the Pareto front,
    `cloud` (timm's published models) in grey behind everything."""
    points = sorted(points, key=lambda p: (p.x, p.y, p.label))
    named = [p for p in points if p.label in (front or set())] if len(points) > MAX_KEYED else points
    keyed = len(named) > MAX_NAMED
    fig, ax = plt.subplots(figsize=FIGSIZE_KEYED if keyed else FIGSIZE, dpi=DPI)
    if cloud is not None:
        cloud.draw(ax, [(p.x, p.y) for p in points], logx=logx)
    front = front or set()
    on = [p for p in points if p.label in front]
    off = [p for p in points if p.label not in front and not p.subset]
    part = [p for p in points if p.label not in front and p.subset]
    if off:
        ax.scatter([p.x for p in off], [p.y for p in off], s=28, color="#7f7f7f", zorder=2, label="checkpoint")
    if part:
        ax.scatter([p.x for p in part], [p.y for p in part], s=28, facecolors="none", edgecolors="#7f7f7f",
                   zorder=2, label="subset of the dataset (not comparable)")
    if on:
        ax.scatter([p.x for p in on], [p.y for p in on], s=46, color="#d62728", zorder=3, label="Pareto front")
        ax.plot([p.x for p in on], [p.y for p in on], color="#d62728", linewidth=1, zorder=1)
    if diagonal and points:
        lo = min(min(p.x, p.y) for p in points)
        hi = max(max(p.x, p.y) for p in points)
        ax.plot([lo, hi], [lo, hi], linestyle=":", color="#1f77b4", linewidth=1, label="y = x")
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.margins(x=0.08, y=0.08)
    if not keyed:
        _label(ax, named)
    if len(named) < len(points) and not keyed:
        ax.text(0.01, 0.01, f"{len(points)} checkpoints: " + ("the Pareto front named" if named else "too many to name")
                + "; comparison.md's tables list them all", transform=ax.transAxes, fontsize=8, color="#444444")
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    ax.legend(loc="best", fontsize=8)
    if keyed:
        _number(fig, ax, named, len(points))
    else:
        fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())   # same bytes as on disk: the file is left alone
    return Path(path)


# ---------------------------------------------------------------------------- the report's plots

def speed_points(store: RecordStore, precision: str, device: str) -> list[tuple[BenchRecord, EvalRecord | None]]:
    """The throughput records of one precision and device (by checkpoint), each with its checkpoint's
    ImageNet record of that precision (or the preferred one; None when there is none)."""
    return [(b, store.best(b.checkpoint, "imagenet", precision))
            for b in sorted(store.bench, key=lambda b: b.checkpoint) if (b.precision, b.device) == (precision, device)]


def _point(name: str, x: float, y: float, *evals: EvalRecord) -> Point:
    """A plot point, named "<checkpoint> (subset, N of M)" and drawn hollow when a number it plots
    is not of the whole dataset."""
    labels = [e.subset_label for e in evals if e.subset_label]
    return Point(name + "".join(f" ({label})" for label in dict.fromkeys(labels)), x, y, subset=bool(labels))


def _draw(plots_dir: Path, fname: str, points: list[Point], title: str, **kw) -> dict:
    scatter(plots_dir / fname, points, title=title, **kw)
    return {"title": title, "file": f"plots/{fname}"}


_IMAGENET_TOP1 = "ImageNet-1k top-1 (%)"
_GMACS = "GMACs (incl. attention matmuls, log scale)"


def _speed_plots(store: RecordStore, plots_dir: Path) -> tuple[list[dict], list[str]]:
    """ImageNet top-1 against images/s, then images/s against GMACs (stats and throughput records alone
    draw it: a bare machine has it too), per precision and device."""
    drawn, notes = [], []
    for precision, device in store.bench_groups():
        pts = [_point(b.checkpoint, b.samples_per_sec, e.top1, e)
               for b, e in speed_points(store, precision, device) if e is not None]
        title = f"ImageNet top-1 vs throughput ({device}, {precision})"
        if pts:
            drawn.append(_draw(plots_dir, f"top1_vs_throughput_{device}_{precision}.png", pts, title,
                               xlabel="images / s (log scale)", ylabel=_IMAGENET_TOP1, front=pareto_front(pts),
                               logx=True, cloud=field_cloud("throughput", device)))
        else:
            notes.append(f"{title}: skipped, no benchmarked checkpoint has an ImageNet record.")
    if not store.bench:
        notes.append("top-1 vs throughput: skipped, no benchmark records.")
    for precision, device in store.bench_groups():
        pts = [Point(b.checkpoint, store.stats[b.checkpoint].gmacs, b.samples_per_sec)
               for b, _ in speed_points(store, precision, device) if b.checkpoint in store.stats]
        if pts:
            drawn.append(_draw(plots_dir, f"throughput_vs_gmacs_{device}_{precision}.png", pts,
                               f"Throughput vs GMACs ({device}, {precision})", xlabel=_GMACS,
                               ylabel="images / s (log scale)", logx=True, logy=True))
    return drawn, notes


def _compute_plots(store: RecordStore, plots_dir: Path) -> tuple[list[dict], list[str]]:
    """ImageNet top-1 against GMACs and against parameters, with the Pareto front (fewer is better)."""
    measured = [(n, s, e) for n, s in sorted(store.stats.items()) if (e := store.best(n, "imagenet")) is not None]
    if not measured:
        return [], ["top-1 vs GMACs and vs parameters: skipped, no checkpoint has both a stats record and an "
                    "ImageNet record."]
    drawn = []
    for fname, title, xlabel, x, field in (
            ("top1_vs_gmacs.png", "ImageNet top-1 vs GMACs", _GMACS, lambda s: s.gmacs, "gmacs"),
            ("top1_vs_params.png", "ImageNet top-1 vs parameters", "parameters (M, log scale)",
             lambda s: s.param_count / 1e6, "params")):
        pts = [_point(n, x(s), e.top1, e) for n, s, e in measured]
        drawn.append(_draw(plots_dir, fname, pts, title, xlabel=xlabel, ylabel=_IMAGENET_TOP1,
                           front=pareto_front(pts, maximize_x=False), logx=True, cloud=field_cloud(field)))
    return drawn, []


def _shift_plots(store: RecordStore, plots_dir: Path) -> tuple[list[dict], list[str]]:
    """ImageNet-1k val top-1 against each shift set's (same precision where there is one)."""
    drawn, notes = [], []
    for ds in shift_datasets():
        pts = []
        for name in sorted({r.checkpoint for r in store.evals}):
            base = store.best(name, "imagenet")
            r = store.best(name, ds, base.precision if base else None)
            if base and r:
                pts.append(_point(name, base.top1, r.top1, base, r))
        title = f"ImageNet-1k val vs {DATASETS[ds].title} top-1"
        if pts:
            drawn.append(_draw(plots_dir, f"imagenet_vs_{ds}.png", pts, title, xlabel="ImageNet-1k val top-1 (%)",
                               ylabel=f"{DATASETS[ds].title} top-1 (%)"))
        else:
            notes.append(f"{title}: skipped, no checkpoint has both records.")
    return drawn, notes


def draw_plots(store: RecordStore, plots_dir: Path) -> tuple[list[dict], list[str]]:
    """The plots that have data; notes for those skipped. Returns ([{title, file}], [note])."""
    drawn, notes = [], []
    for plots in (_speed_plots, _compute_plots, _shift_plots):
        d, n = plots(store, Path(plots_dir))
        drawn += d
        notes += n
    return drawn, notes


__all__ = ["Point", "pareto_front", "scatter", "draw_plots", "speed_points"]
