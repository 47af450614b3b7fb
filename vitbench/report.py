"""Model cards, the comparison tables and the plots, rendered from the records.

    render_reports(results_dir, out_dir) -> reports/cards/<checkpoint>.md   (every registered checkpoint)
                                            reports/comparison.md
                                            reports/plots/*.png

Every number is read from a record (or from timm's published CSVs, always labelled as such) and
formatted here, in Python, into a view model of strings; the Jinja templates (StrictUndefined) only
lay them out. Sorting is explicit everywhere, so the same records give byte-identical files.
"""
from __future__ import annotations

import functools
import math
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import jinja2

from vitbench import plots, report_html
from vitbench.catalog import published_benchmarks, published_top1
from vitbench.data.specs import DATASETS, shift_datasets
from vitbench.records import (
    BenchRecord,
    EvalRecord,
    StatsRecord,
    atomic_write_text,
    load_records,
    safe_name,
)
from vitbench.catalog.registry import CheckpointCfg, FamilyCfg, get_checkpoint, get_family, is_registered, list_models
from vitbench.results import results_frame
from vitbench.significance import mcnemar

NOT_MEASURED = "not measured"

HF_URL = "https://huggingface.co/{}"
PRECISION_PREFERENCE = ("fp32", "amp_bf16", "amp_fp16", "bf16")


# ---------------------------------------------------------------------------- formatting

def fmt(x, nd: int, missing: str = NOT_MEASURED) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return missing
    return f"{float(x):.{nd}f}"


def fmt_signed(x, nd: int, missing: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return missing
    return f"{float(x):+.{nd}f}"


def ci_text(lo, hi) -> str:
    return "" if lo is None or hi is None or math.isnan(lo) or math.isnan(hi) else f"{lo:.2f} – {hi:.2f}"


def cell(value) -> str:
    """A markdown table cell: one line, pipes escaped."""
    return str(value).replace("\r", " ").replace("\n", " ").replace("|", "\\|")


def table(header: list[str], rows: list[list]) -> dict:
    """A markdown table as the templates' `table` macro lays it out (every row as wide as the header)."""
    for r in rows:
        if len(r) != len(header):
            raise ValueError(f"table row has {len(r)} cells, header has {len(header)}: {r}")
    return {"header": [cell(h) for h in header], "rows": [[cell(c) for c in r] for r in rows]}


def link(name: str) -> str:
    cfg = get_checkpoint(name) if is_registered(name) else None
    return f"[{name}]({HF_URL.format(cfg.hf_hub_id)})" if cfg else name


def family_title(name: str) -> str:
    """The catalog family of a checkpoint, as tables name it ('' for a name the registry does not know)."""
    return get_family(get_checkpoint(name).family).title if is_registered(name) else ""


def top1_text(rec: EvalRecord, nd: int = 3) -> str:
    """A record's top-1, labelled "(subset, N of M)" when it is not of the whole dataset."""
    return fmt(rec.top1, nd) + (f" ({rec.subset_label})" if rec.subset_label else "")


def slug(dataset_title: str) -> str:
    return dataset_title.strip().lower().replace(" ", "-")


def ds_title(dataset: str) -> str:
    return DATASETS[dataset].title


def dataset_rank(dataset: str) -> int:
    """Position in the dataset table (report order); names not in it sort last."""
    return list(DATASETS).index(dataset) if dataset in DATASETS else len(DATASETS)


# ---------------------------------------------------------------------------- records, indexed

class Records:
    """The records under a results folder, indexed once: lookups by (checkpoint, dataset) and by
    checkpoint cost a dict access, so rendering every card stays linear in the records."""

    def __init__(self, evals: list[EvalRecord], stats: dict[str, StatsRecord], bench: list[BenchRecord]):
        self.evals, self.stats, self.bench = evals, stats, bench
        order = {p: i for i, p in enumerate(PRECISION_PREFERENCE)}
        self._evals: dict[tuple[str, str], list[EvalRecord]] = {}
        for r in sorted(evals, key=lambda r: (order.get(r.precision, 99), r.precision)):
            self._evals.setdefault((r.checkpoint, r.dataset), []).append(r)
        self._bench: dict[str, list[BenchRecord]] = {}
        for b in bench:
            self._bench.setdefault(b.checkpoint, []).append(b)

    @classmethod
    def load(cls, results_dir: Path) -> "Records":
        return cls(load_records(results_dir, "eval"),
                   {s.checkpoint: s for s in load_records(results_dir, "stats")},
                   load_records(results_dir, "bench"))

    @property
    def empty(self) -> bool:
        return not (self.evals or self.stats or self.bench)

    def evals_of(self, checkpoint: str, dataset: str) -> list[EvalRecord]:
        """The checkpoint's records on a dataset, preferred precision (fp32) first."""
        return self._evals.get((checkpoint, dataset), [])

    def bench_of(self, checkpoint: str) -> list[BenchRecord]:
        return self._bench.get(checkpoint, [])

    def best_ok(self, checkpoint: str, dataset: str, precision: str | None = None) -> EvalRecord | None:
        """The 'ok' record of a checkpoint on a dataset: `precision` if given and present, else fp32 first."""
        ok = [r for r in self.evals_of(checkpoint, dataset) if r.status == "ok"]
        same = [r for r in ok if r.precision == precision]
        return (same or ok or [None])[0]


# ---------------------------------------------------------------------------- architecture facts

@dataclass(frozen=True)
class Shapes:
    width: int
    patch: int
    grid: int
    prefix: int

    @property
    def tokens(self) -> int:
        return self.prefix + self.grid * self.grid


@functools.cache
def _shapes_of(name: str) -> Shapes:
    import torch

    from vitbench.models import create_model

    # shapes only: the meta device (no memory, no compute) and one block (the token and feature
    # shapes do not depend on depth; building every block of 179 models took seconds per report)
    with torch.device("meta"):
        m = create_model(name, depth=1)
    return Shapes(m.embed_dim, m.patch_size, m.img_size // m.patch_size, m.num_prefix_tokens)


def arch_shapes(cfg: CheckpointCfg) -> Shapes:
    """Token and feature-map shapes of the checkpoint's model (built on the meta device)."""
    return _shapes_of(cfg.name)


@functools.cache
def _size_of(architecture: str) -> str:
    import vitbench.models  # noqa: F401 (registers the architectures)
    from vitbench.models._builder import arch_spec

    return arch_spec(architecture).size


def size_word(cfg: CheckpointCfg) -> str:
    """The size word of the checkpoint's architecture (tiny, betwixt, ...), from the models' ArchSpec."""
    return _size_of(cfg.architecture)


def size_table_view(family: FamilyCfg) -> dict | None:
    """The family's size table (timm's SBB table): its rows from the catalog, widths, mlp widths, heads
    and depths from the models' size table."""
    if not family.size_table:
        return None
    from vitbench.models._builder import SIZES

    rows = []
    for row in family.size_table:
        width, depth, heads, mlp_ratio = SIZES[row.size]
        depth_text = f"{depth} ({row.depth_note})" if row.depth_note else str(depth)
        rows.append([row.size, str(width), f"{round(width * mlp_ratio)} ({mlp_ratio:g})", str(heads),
                     depth_text, "y" if row.timm_orig else "n"])
    return {"intro": family.size_table_intro or "",
            "table": table(["variant", "width", "mlp width (mult)", "heads", "depth", "timm orig"], rows)}


@functools.cache
def _catalog_groups() -> tuple[dict[str, int], dict[str, set[str]], dict[str, set[str]]]:
    """Catalog position of each checkpoint, and the checkpoints of each family and of each size word."""
    position, by_family, by_size = {}, {}, {}
    for i, name in enumerate(list_models()):
        cfg = get_checkpoint(name)
        position[name] = i
        by_family.setdefault(cfg.family, set()).add(name)
        by_size.setdefault(size_word(cfg), set()).add(name)
    return position, by_family, by_size


def related(cfg: CheckpointCfg) -> list[str]:
    """Checkpoints for a card's comparison table: same catalog family, or same size word; catalog order."""
    position, by_family, by_size = _catalog_groups()
    return sorted(by_family[cfg.family] | by_size[size_word(cfg)], key=position.__getitem__)


def card_text_view(cfg: CheckpointCfg, family: FamilyCfg) -> dict | None:
    text = family.card_text
    if text is None:
        return None
    return {"heading": text.heading.format(size=size_word(cfg)), "short_name": text.short_name,
            "about": text.about.strip()}


# ---------------------------------------------------------------------------- card view model

def stats_view(stats: StatsRecord | None, cfg: CheckpointCfg) -> dict:
    """Model Stats as timm's cards print them: 1 decimal, GMACs and activations without the attention
    matmuls (the cards' convention), then both with them (timm's benchmark-CSV convention)."""
    if stats is None:
        return {"measured": False, "note": f"{NOT_MEASURED} (no stats record; `vitbench stats {cfg.name}` counts them)",
                "image_size": f"{cfg.img_size} x {cfg.img_size}"}
    return {
        "measured": True,
        "params": fmt(stats.param_count / 1e6, 1),
        "gmacs": fmt(stats.gmacs_no_attn, 1),
        "gmacs_attn": fmt(stats.gmacs, 1),
        "macts": fmt(stats.macts_no_attn if stats.macts_no_attn is not None else stats.macts, 1),
        "macts_attn": fmt(stats.macts, 1),
        "image_size": f"{stats.img_size} x {stats.img_size}",
    }


def usage_view(cfg: CheckpointCfg) -> dict:
    shapes = arch_shapes(cfg)
    if shapes is None:
        return {"shapes": False}
    g, c = shapes.grid, shapes.width
    return {
        "shapes": True,
        "tokens": f"(1, {shapes.tokens}, {c})",
        "feature_maps": [f"torch.Size([1, {c}, {g}, {g}])"] * 3,
        "num_features": str(c),
        "patch": str(shapes.patch),
    }


def comparison_view(cfg: CheckpointCfg, recs: Records) -> dict:
    """The card's Model Comparison: the related checkpoints vitbench has measured on ImageNet-val, best
    first; the related ones it has not are only counted (at 179 checkpoints a size class has dozens,
    and a row of "not measured" per checkpoint says nothing the leaderboard does not)."""
    measured, unmeasured = [], 0
    for name in related(cfg):
        r = recs.best_ok(name, "imagenet")
        if r is None:
            unmeasured += 1
            continue
        s = recs.stats.get(name)
        params = fmt(s.param_count / 1e6, 2) if s else NOT_MEASURED
        size = str(s.img_size if s else get_checkpoint(name).img_size)
        measured.append((-r.top1, name, [link(name), top1_text(r), fmt(r.top5, 3), params, size, r.precision]))
    rows = [row for *_, row in sorted(measured)]
    return {
        "any_measured": bool(measured),
        "unmeasured": unmeasured,
        "table": table(["model", "top1", "top5", "param_count", "img_size", "precision"], rows),
    }


def reason_groups(records: list[EvalRecord]) -> list[dict]:
    """Why jobs were not measured, each distinct reason once with the datasets it covers. A record's
    reason holds independent reasons a blank line apart (no weights / no dataset)."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in records:
        for text in (r.reason or "no reason recorded").split("\n\n"):
            key = (r.status.replace("_", " "), text.strip())
            groups.setdefault(key, []).append(f"{ds_title(r.dataset)} ({r.precision})")
    return [{"status": status, "datasets": ", ".join(ds), "text": text}
            for (status, text), ds in groups.items()]


def evaluation_view(cfg: CheckpointCfg, recs: Records) -> dict:
    rows, unmeasured, provenance = [], [], set()
    for ds in DATASETS:
        pub = published_top1(ds, cfg.name)
        pub_s = fmt(pub, 3, missing="")
        records = recs.evals_of(cfg.name, ds)
        for r in records:
            if r.status == "ok":
                ci = ci_text(*r.top1_ci) if r.top1_ci else ""
                n = r.n_scored if r.n_scored is not None else r.n_images
                delta = fmt_signed(r.top1 - pub, 3) if pub is not None and r.comparable_to_published else ""
                complete = r.subset_label or "yes"
                rows.append([ds_title(ds), fmt(r.top1, 3), fmt(r.top5, 3), ci, f"{n:,}", complete,
                             r.precision, pub_s, delta])
                if r.provenance:
                    p = r.provenance
                    provenance.add(f"vitbench {p.vitbench_version} ({p.git_sha or 'no git'}), torch "
                                   f"{p.torch_version}, {p.device_name}, written {p.created_at}")
            else:
                rows.append([ds_title(ds), NOT_MEASURED, NOT_MEASURED, "", "", "", r.precision, pub_s, ""])
                unmeasured.append(r)
        if not records:
            rows.append([ds_title(ds), NOT_MEASURED, NOT_MEASURED, "", "", "", "", pub_s, ""])
    header = ["dataset", "top-1", "top-5", "top-1 95% CI", "images", "complete", "precision",
              "timm published top-1", "Δ vs published"]
    measured = any(r[1] != NOT_MEASURED for r in rows)
    return {"measured": measured, "table": table(header, rows), "notes": reason_groups(unmeasured),
            "provenance": sorted(provenance)}


def throughput_view(cfg: CheckpointCfg, recs: Records) -> dict:
    mine = sorted(recs.bench_of(cfg.name), key=lambda b: (b.device, b.precision))
    rows = [[b.device, b.provenance.device_name if b.provenance else "", b.precision, str(b.batch_size),
             fmt(b.samples_per_sec, 2), fmt(b.latency_ms_bs1, 3, missing=""), fmt(b.peak_memory_mb, 1, missing=""),
             "yes" if b.compile else "no"] for b in mine]
    published = []
    for stem, df in published_benchmarks().items():
        if cfg.architecture in df.index:
            p = df.loc[cfg.architecture]
            published.append([stem, str(int(p.infer_batch_size)), fmt(p.infer_samples_per_sec, 2),
                              fmt(p.infer_gmacs, 2)])
    return {
        "measured": bool(rows),
        "table": table(["device", "device name", "precision", "batch size", "images/s", "batch-1 latency (ms)",
                        "peak memory (MB)", "compiled"], rows),
        "published": table(["timm benchmark file", "batch size", "images/s", "GMACs"], published) if published else None,
    }


def card_view(cfg: CheckpointCfg, recs: Records) -> dict:
    named = [cfg.dataset] + ([cfg.pretrain_dataset] if cfg.pretrain_dataset else []) + list(cfg.fine_tune_datasets)
    datasets = list(dict.fromkeys(slug(d) for d in named))
    family = get_family(cfg.family)
    return {
        "name": cfg.name,
        "library_name": cfg.library_name,
        "license": cfg.license,
        "tags": ["image-classification", cfg.library_name],
        "datasets": datasets,
        "description": cfg.description.strip(),
        "size_table": size_table_view(family),
        "card_text": card_text_view(cfg, family),
        "model_type": cfg.model_type,
        "stats": stats_view(recs.stats.get(cfg.name), cfg),
        "papers": [{"title": p.title, "url": p.url} for p in cfg.papers],
        "dataset": cfg.dataset,
        "pretrain_dataset": cfg.pretrain_dataset,
        "fine_tune_datasets": list(cfg.fine_tune_datasets),
        "original": cfg.original,
        "hf_hub_id": cfg.hf_hub_id,
        "architecture": cfg.architecture,
        "img_size": str(cfg.img_size),
        "usage": usage_view(cfg),
        "comparison": comparison_view(cfg, recs),
        "evaluation": evaluation_view(cfg, recs),
        "throughput": throughput_view(cfg, recs),
        "citations": [p.bibtex.strip() for p in cfg.citations],
    }


# ---------------------------------------------------------------------------- comparison view model

def leaderboard_view(results_dir: Path, dataset: str) -> dict | None:
    df = results_frame(results_dir, dataset)
    if df.empty:
        return None
    baseline = DATASETS[dataset].baseline
    diffs = baseline is not None
    header = ["#", "model", "img_size", "top1", "top1_err", "top5", "top5_err", "param_count", "crop_pct",
              "interpolation"] + (["top1_diff", "top5_diff", "rank_diff"] if diffs else []) + \
             ["precision", "n", "top1 95% CI", "family"]
    rows = []
    for i, r in enumerate(df.itertuples(index=False), start=1):
        row = [str(i), r.model + (f" ({r.subset})" if r.subset else ""), str(r.img_size), fmt(r.top1, 3), fmt(r.top1_err, 3), fmt(r.top5, 3),
               fmt(r.top5_err, 3), fmt(r.param_count, 2), fmt(r.crop_pct, 2, missing=""), r.interpolation or ""]
        if diffs:
            rank = "" if r.rank_diff is None or str(r.rank_diff) == "<NA>" else f"{int(r.rank_diff):+d}" if int(r.rank_diff) else "0"
            row += [fmt_signed(r.top1_diff, 3), fmt_signed(r.top5_diff, 3), rank]
        n = "" if r.n is None or (isinstance(r.n, float) and math.isnan(r.n)) else f"{int(r.n):,}"
        row += [r.precision, n, ci_text(r.top1_ci_low, r.top1_ci_high), family_title(r.model)]
        rows.append(row)
    base = f" (diffs against {ds_title(baseline)})" if diffs else ""
    return {"title": ds_title(dataset) + base, "table": table(header, rows)}


def robustness_view(recs: Records) -> dict | None:
    sets = ("imagenet",) + shift_datasets()
    names = sorted({r.checkpoint for r in recs.evals if r.status == "ok" and r.dataset in sets})
    if not names:
        return None
    rows = []
    for name in names:
        base = recs.best_ok(name, "imagenet")
        row = [name, family_title(name), top1_text(base) if base else NOT_MEASURED]
        for ds in sets[1:]:
            r = recs.best_ok(name, ds, base.precision if base else None)
            if r is None:
                row.append(NOT_MEASURED)
            else:
                text = fmt(r.top1, 3) + (f" ({r.top1 - base.top1:+.2f})" if base else "")
                row.append(text + (f" ({r.subset_label})" if r.subset_label else ""))
        rows.append((-(base.top1 if base else -1), name, row))
    return {"table": table(["model", "family"] + [DATASETS[d].short for d in sets], [r for *_, r in sorted(rows)])}


def speed_points(recs: Records, precision: str, device: str) -> list[tuple[BenchRecord, EvalRecord | None]]:
    out = []
    for b in sorted(recs.bench, key=lambda b: b.checkpoint):
        if b.precision == precision and b.device == device:
            out.append((b, recs.best_ok(b.checkpoint, "imagenet", precision)))
    return out


def speed_view(recs: Records) -> list[dict]:
    groups = sorted({(b.precision, b.device) for b in recs.bench})
    views = []
    for precision, device in groups:
        pts = speed_points(recs, precision, device)
        points = [plots.Point(b.checkpoint, b.samples_per_sec, e.top1) for b, e in pts if e is not None]
        front = plots.pareto_front(points)
        rows = []
        for b, e in sorted(pts, key=lambda be: (-be[0].samples_per_sec, be[0].checkpoint)):
            s = recs.stats.get(b.checkpoint)
            rows.append([b.checkpoint, top1_text(e) if e else NOT_MEASURED, e.precision if e else "",
                         fmt(b.samples_per_sec, 2), str(b.batch_size), fmt(s.gmacs, 2) if s else NOT_MEASURED,
                         "yes" if b.checkpoint in front else ""])
        name = next((b.provenance.device_name for b, _ in pts if b.provenance), device)
        views.append({"title": f"{device} ({name}), {precision}", "table": table(
            ["model", "IN-1k top1", "top1 precision", "images/s", "batch size", "GMACs", "Pareto front"], rows)})
    return views


def published_check_view(recs: Records) -> dict | None:
    rows = []
    for r in sorted(recs.evals, key=lambda r: (dataset_rank(r.dataset), r.checkpoint, r.precision)):
        pub = published_top1(r.dataset, r.checkpoint) if r.status == "ok" else None
        if pub is None:
            continue
        lo, hi = r.top1_ci if r.top1_ci else (math.nan, math.nan)
        delta = fmt_signed(r.top1 - pub, 3)
        if not r.comparable_to_published:      # a subset is not compared with a full-set figure
            flag, delta = f"not compared: {r.subset_label}", ""
        elif math.isnan(lo):
            flag = "no interval recorded"
        else:
            flag = "**outside 95% CI**" if not (lo <= pub <= hi) else "within"
        rows.append([r.checkpoint, DATASETS[r.dataset].short, r.precision, fmt(r.top1, 3),
                     ci_text(lo, hi), fmt(pub, 3), delta, flag])
    if not rows:
        return None
    return {"table": table(["model", "dataset", "precision", "measured top1", "95% CI", "timm published top1",
                            "Δ", "published in CI?"], rows),
            "n_outside": sum(r[-1] == "**outside 95% CI**" for r in rows)}


def _generic_reason(checkpoint: str, text: str) -> str:
    """A not-run reason with its checkpoint's name taken out, so the same cause reads the same for
    every checkpoint (`No weights found for 'NAME' ... timm/NAME`)."""
    return text.strip().replace(checkpoint, "NAME") or "no reason recorded"


def unmeasured_groups(recs: Records) -> list[dict]:
    """Jobs with a record that is not 'ok', one group per distinct (status, reason): how many jobs,
    which checkpoints and which datasets. A record's reason holds independent reasons a blank line
    apart (no weights / no dataset); each counts in its own group. Largest group first."""
    groups: dict[tuple[str, str], dict] = {}
    for r in recs.evals:
        if r.status == "ok":
            continue
        for text in (r.reason or "no reason recorded").split("\n\n"):
            key = (r.status.replace("_", " "), _generic_reason(r.checkpoint, text))
            g = groups.setdefault(key, {"jobs": 0, "checkpoints": set(), "datasets": set()})
            g["jobs"] += 1
            g["checkpoints"].add(r.checkpoint)
            g["datasets"].add((dataset_rank(r.dataset), r.dataset, r.precision))
    out = []
    for (status, text), g in sorted(groups.items(), key=lambda kv: (-kv[1]["jobs"], kv[0])):
        out.append({"status": status, "first_line": text.splitlines()[0], "text": text, "jobs": g["jobs"],
                    "checkpoints": sorted(g["checkpoints"]),
                    "datasets": [f"{d} ({p})" for _, d, p in sorted(g["datasets"])]})
    return out


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


def unmeasured_view(recs: Records) -> dict | None:
    """One row per distinct reason a job was not measured, with its count and the checkpoints and
    datasets it affects; the checkpoint's card holds the full reason and how to fix it."""
    groups = unmeasured_groups(recs)
    rows = [[g["status"], g["first_line"], str(g["jobs"]), checkpoints_text(g["checkpoints"]),
             ", ".join(g["datasets"])] for g in groups]
    return {"table": table(["status", "why (first line; NAME = the checkpoint; its card has the rest)", "jobs",
                            "checkpoints", "datasets"], rows), "groups": groups} if rows else None


def _by_family(names: list[str]) -> list[tuple[FamilyCfg, list[str]]]:
    """The checkpoints grouped by catalog family, families in catalog order, names in the given order."""
    from vitbench.catalog.registry import list_families

    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(get_checkpoint(name).family, []).append(name)
    return [(get_family(f), groups[f]) for f in list_families() if f in groups]


def families_view(names: list[str], recs: Records) -> dict:
    """One row per catalog family: how many of its checkpoints are listed, how many have an ImageNet
    record, its best measured and its best published ImageNet-1k top-1."""
    rows = []
    for family, members in _by_family(names):
        measured = [(r.top1, n, r) for n in members if (r := recs.best_ok(n, "imagenet")) is not None]
        published = [(p, n) for n in members if (p := published_top1("imagenet", n)) is not None]
        best_m = max(measured, key=lambda t: (t[0], t[1]), default=None)
        best_p = max(published, default=None)
        rows.append([family.title, str(len(members)), str(len(measured)),
                     f"{top1_text(best_m[2])} ({best_m[1]})" if best_m else NOT_MEASURED,
                     f"{fmt(best_p[0], 3)} ({best_p[1]})" if best_p else ""])
    return table(["family", "checkpoints", "measured on IN-1k", "best measured IN-1k top1",
                  "best timm published IN-1k top1"], rows)


def published_table_view(names: list[str]) -> dict:
    """timm's published top-1 of the listed checkpoints that have a published row: `groups`, one table
    per catalog family (catalog order) ranked by ImageNet-1k top-1 within it (comparison.md), and `all`,
    every row in one table ranked the same way with a family column (the HTML report sorts and filters it)."""
    sets = ("imagenet",) + shift_datasets()
    header = [DATASETS[d].short + " top1" for d in sets]
    groups, everything = [], []
    for family, members in _by_family(names):
        rows = []
        for name in sorted(members, key=lambda n: (-(published_top1("imagenet", n) or -1), n)):
            vals = [published_top1(ds, name) for ds in sets]
            if all(v is None for v in vals):
                continue
            rows.append([name] + [fmt(v, 3, missing="") for v in vals])
            everything.append(((-(vals[0] or -1), name), [name, family.title] + rows[-1][1:]))
        if rows:
            groups.append({"title": family.title, "table": table(["model"] + header, rows)})
    return {"groups": groups, "all": table(["model", "family"] + header, [r for _, r in sorted(everything)])}


def _correct_by_image(results_dir: Path, rec: EvalRecord) -> dict | None:
    """image -> top-1 correct, from a record's predictions parquet (None when it is not there). An
    image is its file name (ImageNet-val names are unique), so two runs pair up whatever their data
    root, layout or order; a dataset without file names falls back to the item index."""
    path = Path(results_dir) / "records" / rec.dataset / (rec.predictions_file or "")
    if not rec.predictions_file or not path.is_file():
        return None
    from vitbench.evaluate import read_predictions

    df = read_predictions(path)
    if "file" in df and df["file"].notna().all():
        keys = [os.path.basename(f) for f in df["file"]]
    else:
        keys = [int(i) for i in df["index"]]
    return {k: int(t5[0]) == int(t) for k, t, t5 in zip(keys, df["target"], df["top5_idx"])}


def paired_view(results_dir: Path, recs: Records, dataset: str = "imagenet") -> dict | None:
    """McNemar tests between checkpoints adjacent on the leaderboard, from the per-sample predictions."""
    ranked = sorted((r for r in recs.evals if r.status == "ok" and r.dataset == dataset),
                    key=lambda r: (-r.top1, r.checkpoint, r.precision))
    loaded = [(r, c) for r in ranked if (c := _correct_by_image(results_dir, r)) is not None]
    rows = []
    for (ra, ca), (rb, cb) in zip(loaded, loaded[1:]):
        common = sorted(set(ca) & set(cb))
        if not common:
            continue
        b, c, p = mcnemar([ca[i] for i in common], [cb[i] for i in common])
        rows.append([f"{ra.checkpoint} ({ra.precision})", f"{rb.checkpoint} ({rb.precision})", f"{len(common):,}",
                     str(b), str(c), f"{p:.3g}", "yes" if p < 0.05 else "no"])
    if not rows:
        return None
    return {"title": ds_title(dataset), "table": table(
        ["model A", "model B", "paired images", "only A right", "only B right", "McNemar p", "differ at 5%?"], rows)}


# ---------------------------------------------------------------------------- plots

def _point(name: str, x: float, y: float, *evals: EvalRecord) -> plots.Point:
    """A plot point, named "<checkpoint> (subset, N of M)" and drawn hollow when a number it plots
    is not of the whole dataset."""
    labels = [e.subset_label for e in evals if e.subset_label]
    return plots.Point(name + "".join(f" ({x})" for x in dict.fromkeys(labels)), x, y, subset=bool(labels))


def draw_plots(recs: Records, plots_dir: Path) -> tuple[list[dict], list[str]]:
    """The plots that have data; notes for those skipped. Returns ([{title, file}], [note])."""
    drawn, notes = [], []
    for precision, device in sorted({(b.precision, b.device) for b in recs.bench}):
        pts = [_point(b.checkpoint, b.samples_per_sec, e.top1, e)
               for b, e in speed_points(recs, precision, device) if e is not None]
        title = f"ImageNet top-1 vs throughput ({device}, {precision})"
        if not pts:
            notes.append(f"{title}: skipped, no benchmarked checkpoint has an ImageNet record.")
            continue
        path = plots.scatter(plots_dir / f"top1_vs_throughput_{device}_{precision}.png", pts, title=title,
                             xlabel="images / s (log scale)", ylabel="ImageNet-1k top-1 (%)",
                             front=plots.pareto_front(pts), logx=True)
        drawn.append({"title": title, "file": f"plots/{path.name}"})
    if not recs.bench:
        notes.append("top-1 vs throughput: skipped, no benchmark records.")
    drawn += _throughput_vs_gmacs(recs, plots_dir)
    pts = [_point(n, s.gmacs, e.top1, e) for n, s in sorted(recs.stats.items())
           if (e := recs.best_ok(n, "imagenet")) is not None]
    if pts:
        path = plots.scatter(plots_dir / "top1_vs_gmacs.png", pts, title="ImageNet top-1 vs GMACs",
                             xlabel="GMACs (incl. attention matmuls, log scale)", ylabel="ImageNet-1k top-1 (%)",
                             front=plots.pareto_front(pts, maximize_x=False), logx=True)
        drawn.append({"title": "ImageNet top-1 vs GMACs", "file": f"plots/{path.name}"})
        pts = [_point(n, s.param_count / 1e6, e.top1, e) for n, s in sorted(recs.stats.items())
               if (e := recs.best_ok(n, "imagenet")) is not None]
        path = plots.scatter(plots_dir / "top1_vs_params.png", pts, title="ImageNet top-1 vs parameters",
                             xlabel="parameters (M, log scale)", ylabel="ImageNet-1k top-1 (%)",
                             front=plots.pareto_front(pts, maximize_x=False), logx=True)
        drawn.append({"title": "ImageNet top-1 vs parameters", "file": f"plots/{path.name}"})
    else:
        notes.append("top-1 vs GMACs and vs parameters: skipped, no checkpoint has both a stats record and an ImageNet record.")
    for ds in shift_datasets():
        pts = []
        for name in sorted({r.checkpoint for r in recs.evals}):
            base = recs.best_ok(name, "imagenet")
            r = recs.best_ok(name, ds, base.precision if base else None)
            if base and r:
                pts.append(_point(name, base.top1, r.top1, base, r))
        title = f"ImageNet-1k val vs {ds_title(ds)} top-1"
        if not pts:
            notes.append(f"{title}: skipped, no checkpoint has both records.")
            continue
        fname = f"imagenet_vs_{ds}.png"
        plots.scatter(plots_dir / fname, pts, title=title, xlabel="ImageNet-1k val top-1 (%)",
                      ylabel=f"{ds_title(ds)} top-1 (%)")
        drawn.append({"title": title, "file": f"plots/{fname}"})
    return drawn, notes


def _throughput_vs_gmacs(recs: Records, plots_dir: Path) -> list[dict]:
    """Measured images/s against GMACs per device and precision: how well each architecture turns
    compute into speed. Needs only stats and bench records, so a bare machine draws it too."""
    drawn = []
    for precision, device in sorted({(b.precision, b.device) for b in recs.bench}):
        pts = [plots.Point(b.checkpoint, recs.stats[b.checkpoint].gmacs, b.samples_per_sec)
               for b in sorted(recs.bench, key=lambda b: b.checkpoint)
               if (b.precision, b.device) == (precision, device) and b.checkpoint in recs.stats]
        if not pts:
            continue
        title = f"Throughput vs GMACs ({device}, {precision})"
        path = plots.scatter(plots_dir / f"throughput_vs_gmacs_{device}_{precision}.png", pts, title=title,
                             xlabel="GMACs (incl. attention matmuls, log scale)",
                             ylabel="images / s (log scale)", logx=True, logy=True)
        drawn.append({"title": title, "file": f"plots/{path.name}"})
    return drawn


def comparison_view_model(results_dir: Path, recs: Records, plot_list: list[dict], plot_notes: list[str],
                          names: list[str] | None = None) -> dict:
    """comparison.md's view; `names` are the checkpoints its registry-wide tables cover (the family
    overview and timm's published figures), all registered ones by default."""
    names = list_models() if names is None else names
    ok = [r for r in recs.evals if r.status == "ok"]
    boards = [v for ds in DATASETS if (v := leaderboard_view(results_dir, ds)) is not None]
    return {
        "records_dir": f"{Path(results_dir) / 'records'}/",     # as given: comparison.md names where it came from
        "measured": bool(ok or recs.bench or recs.stats),
        "counts": {"ok": str(len(ok)), "not_ok": str(len(recs.evals) - len(ok)), "stats": str(len(recs.stats)),
                   "bench": str(len(recs.bench)), "checkpoints": str(len(names))},
        "families": families_view(names, recs),
        "leaderboards": boards,
        "robustness": robustness_view(recs),
        "speed": speed_view(recs),
        "published_check": published_check_view(recs),
        "paired": paired_view(results_dir, recs),
        "unmeasured": unmeasured_view(recs),
        "plots": plot_list,
        "plot_notes": plot_notes,
        "published": published_table_view(names),
    }


# ---------------------------------------------------------------------------- rendering

def environment(templates_dir: Path | None = None) -> jinja2.Environment:
    """Markdown templates render as written; `*.html.j2` templates escape what they insert. A
    `templates_dir` overrides the packaged templates it holds; the others still come from the package."""
    loader = jinja2.FunctionLoader(_packaged_template)
    if templates_dir is not None:
        loader = jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(templates_dir)), loader])
    autoescape = jinja2.select_autoescape(enabled_extensions=("html.j2",), default_for_string=False, default=False)
    return jinja2.Environment(loader=loader, undefined=jinja2.StrictUndefined, autoescape=autoescape,
                              keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True)


# A source checkout's own templates/ (beside the vitbench package) wins over an installed copy, so a
# checkout run with PYTHONPATH renders with its templates, not those of whichever tree was installed.
_CHECKOUT_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _packaged_template(name: str) -> str | None:
    local = _CHECKOUT_TEMPLATES / name
    if (_CHECKOUT_TEMPLATES / "comparison.md.j2").is_file() and local.is_file():
        return local.read_text(encoding="utf-8")
    entry = resources.files("vitbench.templates").joinpath(name)
    return entry.read_text(encoding="utf-8") if entry.is_file() else None


def _tidy(text: str) -> str:
    """At most one blank line in a row, one trailing newline (templates stay readable)."""
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.strip("\n") + "\n"


def render_card(cfg: CheckpointCfg, recs: Records, env: jinja2.Environment) -> str:
    template = "model_card_hf.md.j2" if cfg.library_name == "transformers" else "model_card.md.j2"
    if template == "model_card_hf.md.j2" and get_family(cfg.family).card_text is None:
        raise ValueError(f"catalog: family {cfg.family!r} has no `card_text`, which the transformers-style "
                         f"card of {cfg.name!r} needs (heading, short_name, about)")
    return _tidy(env.get_template(template).render(card=card_view(cfg, recs)))


def render_reports(results_dir: Path, out_dir: Path, templates_dir: Path | None = None,
                   checkpoints: list[str] | None = None) -> list[Path]:
    """Cards for every registered checkpoint (or for `checkpoints`, registered names: what a test pins
    so that its snapshot does not change with every checkpoint registered), comparison.md, the plots
    and the HTML report (index.html and a page per card), from the records under `results_dir`;
    returns the files written (sorted)."""
    results_dir, out_dir = Path(results_dir), Path(out_dir)
    names = list_models() if checkpoints is None else [get_checkpoint(n).name for n in checkpoints]
    env = environment(templates_dir)
    recs = Records.load(results_dir)
    written, cards = [], {}
    for name in names:
        path = out_dir / "cards" / f"{safe_name(name)}.md"
        cards[name] = render_card(get_checkpoint(name), recs, env)
        atomic_write_text(path, cards[name])
        written.append(path)
    plot_list, plot_notes = draw_plots(recs, out_dir / "plots")
    written += [out_dir / p["file"] for p in plot_list]
    view = comparison_view_model(results_dir, recs, plot_list, plot_notes, names)
    path = out_dir / "comparison.md"
    atomic_write_text(path, _tidy(env.get_template("comparison.md.j2").render(cmp=view)))
    written.append(path)
    index = report_html.index_view(results_dir, recs, view, results_frame, names)
    written += report_html.write_html(out_dir, env, index, cards)
    return sorted(written)


__all__ = ["render_reports", "render_card", "card_view", "environment", "Records", "arch_shapes", "table"]
