"""A model card's sections, each one function from the record store (and the catalog) to its view:

    card_view(cfg, store) -> {"stats", "usage", "comparison", "evaluation", "throughput", ...}

The tables are report.tables.Table; numbers are formatted here (report.fmt), the templates
(model_card.md.j2, model_card_hf.md.j2) only lay them out.
"""
from __future__ import annotations

import functools

from vitbench.catalog import published_benchmarks
from vitbench.catalog.registry import CheckpointCfg, FamilyCfg, get_checkpoint, get_family, list_models
from vitbench.data.specs import DATASETS, published_top1, selectable_datasets
from vitbench.records import EvalRecord, RecordStore, StatsRecord
from vitbench.report import user
from vitbench.report.analyses import Analyses
from vitbench.report.facts import hub_url
from vitbench.report.fmt import ci_text, count_text, fmt, fmt_signed, top1_cell
from vitbench.report.tables import NOT_MEASURED, Cell, Row, Table, published_verdict, text_columns, text_table

# ---------------------------------------------------------------------------- architecture facts

def size_word(cfg: CheckpointCfg) -> str:
    """The size word of the checkpoint's architecture (tiny, betwixt, ...), from the models' table."""
    from vitbench.models import architecture_size

    return architecture_size(cfg.architecture)


def size_table_view(family: FamilyCfg) -> dict | None:
    """The family's size table (timm's SBB table): its rows from the catalog, widths, mlp widths, heads
    and depths from the models' size table."""
    if not family.size_table:
        return None
    from vitbench.models import SIZES

    rows = []
    for row in family.size_table:
        width, depth, heads, mlp_ratio = SIZES[row.size]
        depth_text = f"{depth} ({row.depth_note})" if row.depth_note else str(depth)
        rows.append([row.size, str(width), f"{round(width * mlp_ratio)} ({mlp_ratio:g})", str(heads),
                     depth_text, "y" if row.timm_orig else "n"])
    return {"intro": family.size_table_intro or "",
            "table": text_table(["variant", "width", "mlp width (mult)", "heads", "depth", "timm orig"], rows)}


@functools.cache
def _catalog_groups(names: tuple[tuple[str, str], ...]) -> tuple[dict[str, int], dict[str, set[str]], dict[str, set[str]]]:
    """Catalog position of each checkpoint, and the checkpoints of each family and of each size word
    (keyed on the registered (name, family) pairs: user checkpoints register at run time)."""
    position, by_family, by_size = {}, {}, {}
    for i, (name, family) in enumerate(names):
        cfg = get_checkpoint(name)
        position[name] = i
        by_family.setdefault(family, set()).add(name)
        by_size.setdefault(size_word(cfg), set()).add(name)
    return position, by_family, by_size


def related(cfg: CheckpointCfg) -> list[str]:
    """Checkpoints for a card's comparison table: same catalog family, or same size word; catalog order."""
    position, by_family, by_size = _catalog_groups(tuple((n, get_checkpoint(n).family) for n in list_models()))
    return sorted(by_family[cfg.family] | by_size[size_word(cfg)], key=position.__getitem__)


def card_text_view(cfg: CheckpointCfg, family: FamilyCfg) -> dict | None:
    text = family.card_text
    if text is None:
        return None
    return {"heading": text.heading.format(size=size_word(cfg)), "short_name": text.short_name,
            "about": text.about.strip()}


# ---------------------------------------------------------------------------- sections

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
    """The shapes the usage code's comments state (a meta-device build of the model)."""
    from vitbench.models import token_shapes

    shapes = token_shapes(cfg.name)
    g, c = shapes.grid, shapes.width
    return {
        "shapes": True,
        "tokens": f"(1, {shapes.tokens}, {c})",
        "feature_maps": [f"torch.Size([1, {c}, {g}, {g}])"] * 3,
        "num_features": str(c),
        "patch": str(shapes.patch),
    }


def comparison_view(cfg: CheckpointCfg, store: RecordStore) -> dict:
    """The card's Model Comparison: the related checkpoints vitbench has measured on ImageNet-val, best
    first; the related ones it has not are only counted (a size class holds dozens of checkpoints, and
    a row of "not measured" per checkpoint says nothing the leaderboard does not)."""
    measured, unmeasured = [], 0
    for name in related(cfg):
        r = store.best(name, "imagenet")
        if r is None:
            unmeasured += 1
            continue
        s = store.stats.get(name)
        cells = (Cell(name, href=hub_url(name)), top1_cell(r), Cell(fmt(r.top5, 3)),
                 Cell(fmt(s.param_count / 1e6, 2) if s else NOT_MEASURED),
                 Cell(str(s.img_size if s else get_checkpoint(name).img_size)), Cell(r.precision))
        measured.append((-r.top1, name, Row(cells)))
    columns = text_columns(["model", "top1", "top5", "param_count", "img_size", "precision"])
    return {"any_measured": bool(measured), "unmeasured": unmeasured,
            "table": Table(columns, tuple(row for *_, row in sorted(measured)))}


def reason_groups(records: list[EvalRecord]) -> list[dict]:
    """Why jobs failed, each distinct reason once with the datasets it covers."""
    groups: dict[tuple[str, str], list[str]] = {}
    for r in records:
        for text in [reason.text for reason in r.reasons] or ["no reason recorded"]:
            groups.setdefault((r.status, text.strip()), []).append(f"{DATASETS[r.dataset].title} ({r.precision})")
    return [{"status": status, "datasets": ", ".join(ds), "text": text} for (status, text), ds in groups.items()]


def measure_command(name: str, datasets: list[str]) -> str | None:
    """The command that measures `datasets` of checkpoint `name` (a baseline-only set is run by the
    set it is the baseline of); None when there is nothing to measure."""
    wanted = []
    for ds in datasets:
        spec = DATASETS[ds]
        run_by = next((s for s in DATASETS.values() if s.baseline == ds), spec) if spec.baseline_only else spec
        wanted.append(run_by.name)
    wanted = [d for d in selectable_datasets() if d in wanted]
    if not wanted:
        return None
    return f"vitbench run {name}" + ("" if wanted == list(selectable_datasets()) else f" --datasets {','.join(wanted)}")


_EVAL_COLUMNS = ["dataset", "top-1", "top-5", "top-1 95% CI", "images", "complete", "precision",
                 "timm published top-1", "Δ vs published"]


def _evaluation_row(title: str, rec: EvalRecord | None, published: float | None) -> list[str]:
    pub = fmt(published, 3, absent="")
    if rec is None or rec.status != "ok":
        return [title, NOT_MEASURED, NOT_MEASURED, "", "", "", rec.precision if rec else "", pub, ""]
    ci = ci_text(*rec.top1_ci) if rec.top1_ci else ""
    n = rec.n_scored if rec.n_scored is not None else rec.n_images
    delta = fmt_signed(published_verdict(rec, published).delta, 3)
    return [title, fmt(rec.top1, 3), fmt(rec.top5, 3), ci, count_text(n), rec.subset_label or "yes",
            rec.precision, pub, delta]


def _provenance_line(rec: EvalRecord) -> str:
    p = rec.provenance
    return (f"vitbench {p.vitbench_version} ({p.git_sha or 'no git'}), torch {p.torch_version}, {p.device_name}, "
            f"written {p.created_at}")


def evaluation_view(cfg: CheckpointCfg, store: RecordStore) -> dict:
    """Every dataset's records of the checkpoint (or one "not measured" row), timm's published top-1
    beside; why a job failed; which runs wrote the records; the command that measures what is not."""
    rows, failed, provenance, unmeasured = [], [], set(), []
    for ds, spec in DATASETS.items():
        pub = published_top1(ds, cfg.name)
        records = store.evals_of(cfg.name, ds)
        rows += [_evaluation_row(spec.title, r, pub) for r in records or [None]]
        failed += [r for r in records if r.status != "ok"]
        provenance |= {_provenance_line(r) for r in records if r.status == "ok" and r.provenance}
        if store.best(cfg.name, ds) is None:
            unmeasured.append(ds)
    return {"measured": len(unmeasured) < len(DATASETS), "table": text_table(_EVAL_COLUMNS, rows),
            "notes": reason_groups(failed), "provenance": sorted(provenance),
            "measure": measure_command(cfg.name, unmeasured)}


def throughput_view(cfg: CheckpointCfg, store: RecordStore) -> dict:
    mine = sorted(store.bench_of(cfg.name), key=lambda b: (b.device, b.precision))
    rows = [[b.device, b.provenance.device_name if b.provenance else "", b.precision, str(b.batch_size),
             fmt(b.samples_per_sec, 2), fmt(b.latency_ms_bs1, 3, absent=""), fmt(b.peak_memory_mb, 1, absent=""),
             "yes" if b.compile else "no"] for b in mine]
    published = []
    for stem, df in published_benchmarks().items():
        if cfg.architecture in df.index:
            p = df.loc[cfg.architecture]
            published.append([stem, str(int(p.infer_batch_size)), fmt(p.infer_samples_per_sec, 2),
                              fmt(p.infer_gmacs, 2)])
    return {
        "measured": bool(rows),
        "table": text_table(["device", "device name", "precision", "batch size", "images/s", "batch-1 latency (ms)",
                             "peak memory (MB)", "compiled"], rows),
        "published": text_table(["timm benchmark file", "batch size", "images/s", "GMACs"], published)
        if published else None,
    }


def _slug(dataset_title: str) -> str:
    return dataset_title.strip().lower().replace(" ", "-")


def card_view(cfg: CheckpointCfg, store: RecordStore, analyses: Analyses | None = None) -> dict:
    """Everything a card template lays out (`analyses`: the report's, shared by its cards)."""
    named = [cfg.dataset] + ([cfg.pretrain_dataset] if cfg.pretrain_dataset else []) + list(cfg.fine_tune_datasets)
    family = get_family(cfg.family)
    return {
        "name": cfg.name,
        "library_name": cfg.library_name,
        "license": cfg.license,
        "tags": ["image-classification", cfg.library_name],
        "datasets": list(dict.fromkeys(_slug(d) for d in named)),
        "description": cfg.description.strip(),
        "size_table": size_table_view(family),
        "card_text": card_text_view(cfg, family),
        "model_type": cfg.model_type,
        "stats": stats_view(store.stats.get(cfg.name), cfg),
        "papers": [{"title": p.title, "url": p.url} for p in cfg.papers],
        "dataset": cfg.dataset,
        "pretrain_dataset": cfg.pretrain_dataset,
        "fine_tune_datasets": list(cfg.fine_tune_datasets),
        "original": cfg.original,
        "hf_hub_id": cfg.hf_hub_id,
        "architecture": cfg.architecture,
        "img_size": str(cfg.img_size),
        "usage": usage_view(cfg),
        "comparison": comparison_view(cfg, store),
        "evaluation": evaluation_view(cfg, store),
        "throughput": throughput_view(cfg, store),
        "analyses": (analyses or Analyses(store)).card(cfg),      # report.analyses' sections
        "citations": [p.bibtex.strip() for p in cfg.citations],
        "user": user.card_view(cfg, store),          # a checkpoint the user brought: report.user's sections
    }
