"""The effective-robustness plot: one panel per shift set, timm's whole published cloud behind the
checkpoints asked for.

    published_points(checkpoints, shifts) -> list[RobustnessPoint]     # timm's rows of those checkpoints
    robustness_plot(path, points, ...) -> Path                           # deterministic PNG
    save_png(fig, path) -> Path                                          # the one PNG writer of the analyses

Axes are logit-scaled (the space the baseline is a straight line in) and labelled in percent; the
cloud is grey (the ImageNet-1k-only rows the baseline is fitted on darker), the baseline and y = x
are lines, and each checkpoint is a number coloured by its family: filled where vitbench measured
it, hollow where the number is timm's published one.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib import patheffects  # noqa: E402
from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator  # noqa: E402

from vitbench.analysis.robustness import ER_SETS, Baseline, matched_rows, published_baseline  # noqa: E402

DPI = 100
PERCENT_TICKS = (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 30, 40, 50, 60, 70, 80, 85, 90, 95, 98, 99, 99.5, 99.8)
FAMILY_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf",
                  "#bcbd22", "#393b79", "#637939", "#843c39")
CLOUD_OTHER, CLOUD_FIT, DIAGONAL = "#d9d9d9", "#9a9a9a", "#1f77b4"
MARKERS = ("o", "s", "^", "D")       # a family's shape: a second one once FAMILY_COLOURS run out
MAX_NUMBERED = 30                    # more checkpoints than this: only the measured ones are numbered
SHIFT_TITLES = {"v2": "ImageNetV2 matched-frequency", "sketch": "ImageNet-Sketch", "r": "ImageNet-R",
                "a": "ImageNet-A"}


@dataclass(frozen=True)
class RobustnessPoint:
    checkpoint: str
    family: str            # colours the point
    shift: str             # v2 | sketch | r | a: the panel
    imagenet_top1: float   # percent
    shift_top1: float      # percent
    measured: bool         # True: vitbench measured it (filled); False: timm's published number (hollow)


def save_png(fig, path: Path) -> Path:
    """Write `fig` to `path` as a deterministic PNG (fixed dpi, no 'Software' metadata) and close it;
    a file already holding the same bytes is left alone."""
    from vitbench.records import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    atomic_write_bytes(Path(path), buf.getvalue())
    return Path(path)


def published_points(checkpoints: Mapping[str, str], shifts: Sequence[str] = ER_SETS,
                     img_size: Mapping[str, int] | None = None) -> list[RobustnessPoint]:
    """timm's published (ImageNet, shift) top-1 of each checkpoint (name -> family) on each shift set,
    from the packaged cloud; a checkpoint timm publishes at several test sizes takes the size in
    `img_size`, else timm's first row (its best). A checkpoint timm does not publish is left out."""
    from vitbench.data.specs import published_cloud

    out = []
    for shift in shifts:
        rows = matched_rows(published_cloud("imagenet"), published_cloud(shift))
        for name, family in checkpoints.items():
            mine = rows[rows["model"] == name]
            if img_size and name in img_size:
                mine = mine[mine["img_size"] == img_size[name]]
            if len(mine):
                r = mine.iloc[0]
                out.append(RobustnessPoint(name, family, shift, float(r["top1_imagenet"]), float(r["top1_shift"]),
                                           measured=False))
    return out


def _percent_axis(axis, lo: float, hi: float) -> None:
    """Ticks at round percentages inside [lo, hi] (fractions), labelled '70%'; at most 9 of them."""
    ticks = [t for t in PERCENT_TICKS if lo <= t / 100 <= hi]
    while len(ticks) > 9:
        ticks = ticks[::2] if len(ticks) % 2 else ticks[::2] + [ticks[-1]]
    axis.set_major_locator(FixedLocator([t / 100 for t in ticks]))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{100 * v:g}%"))
    axis.set_minor_locator(NullLocator())


def _limits(values: np.ndarray) -> tuple[float, float]:
    """Data limits padded by 7% of their span in logit space, as fractions."""
    z = np.log(values / (1 - values))
    pad = 0.07 * (z.max() - z.min() or 1.0)
    lo, hi = z.min() - pad, z.max() + pad
    return float(1 / (1 + np.exp(-lo))), float(1 / (1 + np.exp(-hi)))


def _numbers(ax, xy: list[tuple[float, float, str]]) -> None:
    """Each point's number beside it; points within 9 pixels share one label ('3,7')."""
    ax.figure.canvas.draw()
    groups: list[tuple[np.ndarray, float, float, list[str]]] = []
    for x, y, label in xy:
        px = ax.transData.transform((x, y))
        near = next((g for g in groups if np.hypot(*(g[0] - px)) < 9), None)
        if near is None:
            groups.append((px, x, y, [label]))
        else:
            near[3].append(label)
    for _, x, y, labels in groups:
        ax.annotate(",".join(dict.fromkeys(labels)), (x, y), textcoords="offset points", xytext=(6, 4), fontsize=8,
                    fontweight="bold", color="#111111", zorder=6,
                    path_effects=[patheffects.withStroke(linewidth=2.5, foreground="white")])


@dataclass(frozen=True)
class _Style:
    """How the plot draws one family's points, and which checkpoints it numbers."""
    colour: dict[str, str]         # family -> colour
    marker: dict[str, str]         # family -> marker (a second shape once the colours run out)
    number: dict[str, int]         # checkpoint -> its number in the key (only the numbered ones)
    size: float                    # marker area (smaller when there are many points)
    measured_only: bool            # many checkpoints: only the measured points carry their number


def _style(points: Sequence[RobustnessPoint]) -> _Style:
    """Colour and shape per family; numbers for every checkpoint when there are at most MAX_NUMBERED,
    else for the measured ones when they are that few, else for none (the report's table lists them)."""
    families = sorted({p.family for p in points})
    names = sorted({p.checkpoint for p in points})
    measured = sorted({p.checkpoint for p in points if p.measured})
    numbered = names if len(names) <= MAX_NUMBERED else measured if len(measured) <= MAX_NUMBERED else []
    n_col = len(FAMILY_COLOURS)
    return _Style(colour={f: FAMILY_COLOURS[i % n_col] for i, f in enumerate(families)},
                  marker={f: MARKERS[(i // n_col) % len(MARKERS)] for i, f in enumerate(families)},
                  number={n: i for i, n in enumerate(numbered, 1)},
                  size=54 if len(names) <= MAX_NUMBERED else 30, measured_only=len(names) > MAX_NUMBERED)


def _panel(ax, shift: str, cloud, baseline: Baseline, points: list[RobustnessPoint], style: _Style) -> None:
    """One shift set: cloud, baseline, y = x and the checkpoints, one scatter per family and source
    (published hollow first, measured filled on top); the shared key is drawn once, beside the panels."""
    clip = lambda v: np.clip(np.asarray(v, dtype=np.float64) / 100, 1e-4, 1 - 1e-4)   # noqa: E731
    cx, cy = clip(cloud["top1_imagenet"]), clip(cloud["top1_shift"])
    fit_rows = cloud["in1k_only"].to_numpy(dtype=bool)
    px, py = clip([p.imagenet_top1 for p in points]), clip([p.shift_top1 for p in points])
    xlo, xhi = _limits(np.concatenate([cx, px]))
    ylo, yhi = _limits(np.concatenate([cy, py]))
    ax.set_xscale("logit")
    ax.set_yscale("logit")
    ax.scatter(cx[~fit_rows], cy[~fit_rows], s=7, color=CLOUD_OTHER, linewidths=0, zorder=1)
    ax.scatter(cx[fit_rows], cy[fit_rows], s=7, color=CLOUD_FIT, linewidths=0, zorder=1)
    xs = 1 / (1 + np.exp(-np.linspace(np.log(xlo / (1 - xlo)), np.log(xhi / (1 - xhi)), 200)))
    ax.plot(xs, np.asarray(baseline.predict(100 * xs)) / 100, color="#000000", linewidth=1.3, zorder=2)
    lo, hi = max(xlo, ylo), min(xhi, yhi)
    if lo < hi:
        ax.plot([lo, hi], [lo, hi], linestyle=":", color=DIAGONAL, linewidth=1.2, zorder=2)
    for measured in (False, True):
        for family in sorted({p.family for p in points}):
            idx = [i for i, p in enumerate(points) if p.family == family and p.measured == measured]
            if not idx:
                continue
            c = style.colour[family]
            ring = 0.8 if style.measured_only else 1.8          # a thin ring when many: the colour shows
            ax.scatter(px[idx], py[idx], s=style.size * (1.4 if measured else 1), marker=style.marker[family],
                       zorder=5 if measured else 4, linewidths=ring if measured else 1.2,
                       edgecolors="#000000" if measured else c, facecolors=c if measured else "white")
    _percent_axis(ax.xaxis, xlo, xhi)
    _percent_axis(ax.yaxis, ylo, yhi)
    ax.set_xlim(xlo, xhi)
    ax.set_ylim(ylo, yhi)
    ax.grid(True, linewidth=0.4, alpha=0.5)
    title = SHIFT_TITLES.get(shift, shift)
    ax.set_title(title, fontsize=11)
    ax.set_xlabel("ImageNet-1k val top-1 (logit scale)", fontsize=9)
    ax.set_ylabel(f"{title} top-1 (logit scale)", fontsize=9)
    sign = "+" if baseline.b >= 0 else "\u2212"
    ax.text(0.98, 0.03, f"baseline: logit y = {baseline.a:.3f} logit x {sign} {abs(baseline.b):.3f}\n"
            f"fitted on {baseline.n_rows:,} ImageNet-1k-only rows", transform=ax.transAxes, ha="right",
            va="bottom", fontsize=8, bbox={"facecolor": "white", "edgecolor": "#cccccc", "alpha": 0.9})
    _numbers(ax, [(x, y, str(style.number[p.checkpoint])) for p, x, y in zip(points, px, py, strict=True)
                  if p.checkpoint in style.number and (p.measured or not style.measured_only)])


def _key(key, points: Sequence[RobustnessPoint], style: _Style) -> None:
    """The shared key: the numbered checkpoints in their family's colour and shape, the families (with
    how many checkpoints each), and what each mark and line means; the lines shrink to fit."""
    key.axis("off")
    family_of = {p.checkpoint: p.family for p in points}
    counts = {f: sum(1 for v in family_of.values() if v == f) for f in style.colour}
    n_lines = len(style.number) + len(counts) + 12
    step, y = min(0.026, 0.86 / n_lines), 1.0
    font = 8.5 if step >= 0.02 else 7.5

    def mark(text: str, mono: bool = False, **kw) -> None:
        nonlocal y
        if "line" in kw:
            key.plot([0.005, 0.04], [y - 0.4 * step] * 2, transform=key.transAxes, clip_on=False, **kw["line"])
        else:
            key.scatter([0.02], [y - 0.4 * step], transform=key.transAxes, clip_on=False, **kw)
        key.text(0.06, y, text, fontsize=min(font, 7.5) if mono else font, va="top", transform=key.transAxes,
                 family="monospace" if mono else None)
        y -= step

    def heading(text: str) -> None:
        nonlocal y
        y -= 0.01
        key.text(0.0, y, text, fontsize=10, fontweight="bold", va="top", transform=key.transAxes)
        y -= 0.03

    if style.number:
        heading("checkpoints" if len(style.number) == len(family_of) else "measured checkpoints")
        for n, i in style.number.items():
            f = family_of[n]
            mark(f"{i:>2}  {n}", mono=True, s=36, color=style.colour[f], marker=style.marker[f])
    heading(f"families ({len(family_of)} checkpoints)")
    for f, count in counts.items():
        mark(f"{f} ({count})", s=36, color=style.colour[f], marker=style.marker[f])
    heading("marks")
    mark("measured by vitbench", s=40, color="#777777", edgecolors="#000000", linewidths=1.3)
    mark("timm's published number", s=40, facecolors="white", edgecolors="#777777", linewidths=1.3)
    mark("timm's ImageNet-1k-only models (the fit)", s=14, color=CLOUD_FIT)
    mark("timm's other models", s=14, color=CLOUD_OTHER)
    mark("baseline (least squares in logit space)", line={"color": "#000000", "linewidth": 1.3})
    mark("y = x", line={"color": DIAGONAL, "linestyle": ":", "linewidth": 1.2})
    y -= 0.01
    if not style.number:
        key.text(0.0, y, f"{len(family_of)} checkpoints, too many to number: the report's\neffective-robustness "
                 "table names each.", fontsize=8, va="top", transform=key.transAxes)
        y -= 0.05
    key.text(0.0, y, "Effective robustness = shift top-1 minus the baseline's\nprediction at the same "
             "ImageNet top-1 (points above the line).\nCloud and published numbers: timm's results CSVs\n"
             "(huggingface/pytorch-image-models, Apache-2.0).", fontsize=8, va="top", color="#444444",
             transform=key.transAxes)


def robustness_plot(path: Path, points: Sequence[RobustnessPoint], *, shifts: Sequence[str] = ER_SETS,
                    clouds: Mapping[str, "object"] | None = None, baselines: Mapping[str, Baseline] | None = None,
                    title: str = "Effective robustness (Taori et al. 2020)") -> Path:
    """Draw one panel per shift set (2 per row) and a key (families by colour and shape, the numbered
    checkpoints) at the right, write the PNG to `path`. Up to MAX_NUMBERED checkpoints each get a
    number; with more, only the measured ones do (if that few), and the families tell the rest apart.
    `clouds[shift]` is a `robustness_table` frame (top1_imagenet, top1_shift, in1k_only) and
    `baselines[shift]` its fitted line; both default to timm's packaged cloud and `published_baseline`."""
    from vitbench.analysis.robustness import robustness_table
    from vitbench.data.specs import published_cloud

    baselines = dict(baselines or {})
    clouds = dict(clouds or {})
    for s in shifts:
        baselines.setdefault(s, published_baseline(s))
        if s not in clouds:
            clouds[s] = robustness_table(published_cloud("imagenet"), published_cloud(s), baselines[s])
    style = _style(points)
    rows = (len(shifts) + 1) // 2
    fig = plt.figure(figsize=(17, 6.2 * rows), dpi=DPI)
    grid = fig.add_gridspec(rows, 3, width_ratios=[1, 1, 0.72], left=0.05, right=0.99, top=0.93,
                            bottom=0.05 if rows > 1 else 0.1, wspace=0.22, hspace=0.25)
    for i, shift in enumerate(shifts):
        ax = fig.add_subplot(grid[i // 2, i % 2])
        _panel(ax, shift, clouds[shift], baselines[shift], [p for p in points if p.shift == shift], style)
    _key(fig.add_subplot(grid[:, 2]), points, style)
    fig.suptitle(title, fontsize=13)
    return save_png(fig, path)


__all__ = ["RobustnessPoint", "save_png", "published_points", "robustness_plot", "MAX_NUMBERED"]
