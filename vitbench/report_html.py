"""The HTML report: reports/index.html and reports/cards/<checkpoint>.html.

    write_html(out_dir, env, recs, results_dir, cmp, cards) -> [paths written]

index.html is one self-contained page (inline CSS and JS, no network; the plots are the PNGs beside
it under plots/) built from the same view model as comparison.md plus a few structured tables: every
checkpoint at a glance, and a leaderboard per dataset, each sortable by clicking a column header and
filtered by text (name, family, pretraining data, image size) and by a GMACs ceiling. The card pages
are the markdown cards turned into HTML by markdown-it-py (CommonMark + tables).

As for the markdown, numbers are formatted here in Python; the templates only lay them out. A table
is {"header": [{"label", "num", "title"}], "rows": [{"cells": [{"html", "sort"}], "search", "gmacs",
"cls"}]}: `sort` is the value a numeric column sorts by ("" = not measured, always last), `search`
the text the filter matches.
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from urllib.parse import quote

from markdown_it import MarkdownIt
from markupsafe import Markup, escape

from vitbench.catalog import published_top1
from vitbench.data.specs import DATASETS
from vitbench.records import atomic_write_text, safe_name
from vitbench.catalog.registry import CheckpointCfg, get_checkpoint, get_family, is_registered, list_models

NOT_MEASURED = "not measured"
_MD = MarkdownIt("commonmark", {"html": False, "linkify": False}).enable("table")
_FRONT_MATTER = re.compile(r"\A---\n.*?\n---\n", re.S)
_NUMBER = re.compile(r"^[+-]?\d[\d,]*(\.\d+)?")

# The model family that builds an architecture (vitbench.models) -> the name shown and filtered on.
_FAMILY_LABEL = {
    "vision_transformer": "ViT",
    "deit": "DeiT",
    "beit": "BEiT",
    "eva": "EVA / RoPE ViT",
    "vision_transformer_relpos": "ViT (relative position)",
    "vision_transformer_hybrid": "ViT hybrid (ResNetV2 backbone)",
}


# ---------------------------------------------------------------------------- cells and tables


def rate_text(v: float) -> str:
    """images/s with one decimal, or two significant digits below 1 (a giant on a CPU: 0.033, not 0.0)."""
    return f"{v:.1f}" if v >= 1 else f"{v:.2g}"

def md_inline(text: str) -> Markup:
    """One markdown table cell (links, bold, code; `\\|` escapes) as HTML."""
    return Markup(_MD.renderInline(str(text)))


def card_href(name: str, prefix: str = "cards/") -> str:
    return prefix + quote(f"{safe_name(name)}.html")


def _num(x) -> str:
    """A sort key: the number as text, '' when missing."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return repr(float(x))


def cell(text, sort=None, html: Markup | None = None) -> dict:
    """A cell showing `text` (escaped) or `html`; `sort` given: the key of a numeric column."""
    cls = " ".join(c for c in ("num" if sort is not None else "", "na" if text == NOT_MEASURED else "") if c)
    return {"html": html if html is not None else escape(str(text)), "sort": None if sort is None else _num(sort),
            "cls": cls}


def model_cell(name: str, prefix: str = "cards/") -> dict:
    if not is_registered(name):
        return cell(name)
    return cell("", html=Markup('<a href="{}">{}</a>').format(card_href(name, prefix), name))


def model_cell_with_facts(name: str) -> dict:
    """The model's link with its family, pretraining data and image size on a second, smaller line."""
    c, f = model_cell(name), facts(name)
    if f["family"]:
        c["html"] += Markup('<div class="facts">{} · {} · {} px</div>').format(f["family"], f["pretraining"], f["img_size"])
    return c


def family(cfg: CheckpointCfg) -> str:
    import vitbench.models  # noqa: F401 - the families register on import
    from vitbench.models._builder import family_of

    name = family_of(cfg.architecture).name
    return _FAMILY_LABEL.get(name, name)


def pretraining(cfg: CheckpointCfg) -> str:
    chain = ([cfg.pretrain_dataset] if cfg.pretrain_dataset else []) + list(cfg.fine_tune_datasets)
    return " → ".join(chain) if chain else cfg.dataset


def facts(name: str) -> dict:
    """What the filter matches for a checkpoint: its name, catalog family and model family (the file that
    builds it), lineage, pretraining data, image size."""
    cfg = get_checkpoint(name) if is_registered(name) else None
    if cfg is None:
        return {"family": "", "pretraining": "", "img_size": "", "search": name.lower()}
    fam, pre = get_family(cfg.family).title, pretraining(cfg)      # the catalog family, as comparison.md names it
    return {"family": fam, "pretraining": pre, "img_size": str(cfg.img_size),
            "search": " ".join([name, fam, family(cfg), cfg.lineage, pre, f"{cfg.img_size} {cfg.img_size}px"]).lower()}


def header(*cols) -> list[dict]:
    """cols: (label, numeric[, tooltip])."""
    return [{"label": c[0], "num": c[1], "title": c[2] if len(c) > 2 else ""} for c in cols]


def from_md_table(t: dict, gmacs: dict[str, float], model_col: str | None = "model", mark: str | None = None) -> dict:
    """An HTML table from a markdown view table (report.table): cells rendered as inline markdown,
    numeric columns detected from their cells; `model_col` cells link to the card pages (and the row
    gets the checkpoint's GMACs from `gmacs` for the GMACs ceiling); a row whose `mark` column says
    "yes" is highlighted."""
    labels = t["header"]
    rows = t["rows"]

    def numeric(j: int) -> bool:
        vals = [r[j] for r in rows if r[j] not in ("", "not measured")]
        return bool(vals) and all(_NUMBER.match(v.replace("*", "")) for v in vals)

    nums = [numeric(j) for j in range(len(labels))]
    out_rows = []
    for r in rows:
        cells, search, row_gmacs = [], [], None
        for j, (label, v) in enumerate(zip(labels, r)):
            name = v.split(" (")[0] if label == model_col else None
            if name and is_registered(name):
                c = model_cell(name)
                if v != name:
                    c["html"] += Markup(" ") + escape(v[len(name):].strip())
                search.append(facts(name)["search"])
                row_gmacs = gmacs.get(name)
            else:
                m = _NUMBER.match(v.replace("*", ""))
                c = cell(v, sort=float(m.group(0).replace(",", "")) if nums[j] and m else
                         (math.nan if nums[j] else None), html=md_inline(v))
                search.append(v.lower())
            cells.append(c)
        flagged = mark is not None and mark in labels and r[labels.index(mark)] == "yes"
        out_rows.append({"cells": cells, "search": " ".join(search), "gmacs": _num(row_gmacs),
                         "cls": "front" if flagged else ""})
    return {"header": header(*[(lab, n) for lab, n in zip(labels, nums)]), "rows": out_rows}


# ---------------------------------------------------------------------------- structured tables

def _bench_groups(recs) -> list[tuple[str, str]]:
    return sorted({(b.device, b.precision) for b in recs.bench})


def overview_table(recs, names: list[str] | None = None) -> dict:
    """Every registered checkpoint (or `names`): facts, size, compute, measured and published ImageNet top-1,
    measured throughput per device and precision. Ranked by measured top-1, then published."""
    groups = _bench_groups(recs)
    speed = {(b.checkpoint, b.device, b.precision): b.samples_per_sec for b in recs.bench}
    rows = []
    for name in list_models() if names is None else names:
        f, s = facts(name), recs.stats.get(name)
        ok = recs.best_ok(name, "imagenet")
        pub = published_top1("imagenet", name)
        gmacs = s.gmacs if s else None
        top1 = ok.top1 if ok else None
        measured = cell("not measured", sort=math.nan) if ok is None else (
            cell(f"{ok.top1:.3f}", sort=ok.top1) if ok.comparable_to_published else
            cell("", sort=ok.top1, html=Markup('{} <span class="tag">{}</span>').format(f"{ok.top1:.3f}", ok.subset_label)))
        cells = [model_cell(name), cell(f["family"]), cell(f["pretraining"]), cell(f["img_size"], sort=int(f["img_size"] or 0)),
                 cell(f"{s.param_count / 1e6:.2f}" if s else "not measured", sort=s.param_count / 1e6 if s else math.nan),
                 cell(f"{gmacs:.2f}" if s else "not measured", sort=gmacs if s else math.nan),
                 measured,
                 cell(f"{pub:.3f}" if pub is not None else "", sort=pub if pub is not None else math.nan)]
        for dev, prec in groups:
            v = speed.get((name, dev, prec))
            cells.append(cell(rate_text(v) if v is not None else "not measured", sort=v if v is not None else math.nan))
        key = (-(top1 if top1 is not None else -1), -(pub if pub is not None else -1), name)
        rows.append((key, {"cells": cells, "search": f["search"], "gmacs": _num(gmacs), "cls": ""}))
    head = header(("model", False), ("family", False), ("pretraining data", False), ("img size", True),
                  ("params (M)", True), ("GMACs", True, "incl. attention matmuls (timm's benchmark convention)"),
                  ("IN-1k top-1 (measured)", True), ("IN-1k top-1 (timm published)", True, "not a vitbench measurement"))
    head += header(*[(f"images/s {dev} {prec}", True, "measured by vitbench on this device") for dev, prec in groups])
    return {"header": head, "rows": [r for _, r in sorted(rows, key=lambda kr: kr[0])]}


def leaderboard_table(results_dir: Path, recs, dataset: str, results_frame) -> dict | None:
    """The measured leaderboard of one dataset (same rows as its results CSV), with the facts the
    filter needs, GMACs, the published top-1 and whether it lies outside the 95% interval. A subset
    run (--limit, missing images) says so and gets no difference against the published figure."""
    df = results_frame(results_dir, dataset)
    if df.empty:
        return None
    diffs = "top1_diff" in df.columns
    rows = []
    for i, r in enumerate(df.itertuples(index=False), start=1):
        f, s = facts(r.model), recs.stats.get(r.model)
        rec = next((e for e in recs.evals_of(r.model, dataset) if e.status == "ok" and e.precision == r.precision), None)
        subset = rec is not None and not rec.comparable_to_published
        pub = r.published_top1
        has_pub = pub is not None and not math.isnan(pub)
        lo, hi = r.top1_ci_low, r.top1_ci_high
        if subset:
            status = cell("", html=Markup('<span class="tag">{}</span>').format(rec.subset_label))
        elif not has_pub:
            status = cell("no published figure")
        elif math.isnan(lo) or math.isnan(hi):
            status = cell("no interval recorded")
        elif lo <= pub <= hi:
            status = cell("within")
        else:
            status = cell("", html=Markup('<span class="flag">outside 95% CI</span>'))
        cells = [cell(str(i), sort=i), model_cell_with_facts(r.model),
                 cell(f"{r.top1:.3f}", sort=r.top1),
                 cell(f"{lo:.2f} – {hi:.2f}" if not math.isnan(lo) else "", sort=lo),
                 cell(f"{r.top5:.3f}", sort=r.top5),
                 cell(f"{r.param_count:.2f}" if not math.isnan(r.param_count) else "not measured", sort=r.param_count),
                 cell(f"{s.gmacs:.2f}" if s else "not measured", sort=s.gmacs if s else math.nan)]
        if diffs:
            cells += [cell(f"{r.top1_diff:+.3f}" if not math.isnan(r.top1_diff) else "", sort=r.top1_diff),
                      cell(f"{int(r.rank_diff):+d}" if str(r.rank_diff) != "<NA>" else "",
                           sort=float(r.rank_diff) if str(r.rank_diff) != "<NA>" else math.nan)]
        delta = r.published_delta if has_pub and not subset else math.nan
        cells += [cell(r.precision), cell(f"{int(r.n):,}", sort=r.n),
                  cell(f"{pub:.3f}" if has_pub else "", sort=pub if has_pub else math.nan),
                  cell(f"{delta:+.3f}" if not math.isnan(delta) else "", sort=delta), status]
        rows.append({"cells": cells, "search": f["search"], "gmacs": _num(s.gmacs if s else None),
                     "cls": "subset" if subset else ""})
    head = header(("#", True), ("model · family · pretraining data · image size", False), ("top-1", True), ("top-1 95% CI", True), ("top-5", True), ("params (M)", True),
                  ("GMACs", True, "incl. attention matmuls"))
    if diffs:
        head += header(("top-1 diff", True, "against the baseline set"),
                       ("rank diff", True, "baseline rank minus this rank: positive climbs"))
    head += header(("precision", False), ("images", True), ("timm published top-1", True),
                   ("Δ vs published", True, "none for a subset run: it is not comparable"),
                   ("published in CI?", False))
    return {"header": head, "rows": rows}


def published_check_table(recs) -> dict | None:
    """Every 'ok' record with a published figure: measured top-1 and its 95% interval against timm's
    top-1, flagged when the published figure lies outside the interval. A subset run is labelled
    "subset, N of M" and gets neither a difference nor a flag: it is not comparable."""
    rows = []
    order = {d: i for i, d in enumerate(DATASETS)}
    for r in sorted(recs.evals, key=lambda r: (order.get(r.dataset, 99), r.checkpoint, r.precision)):
        pub = published_top1(r.dataset, r.checkpoint) if r.status == "ok" and r.dataset in order else None
        if pub is None:
            continue
        lo, hi = r.top1_ci if r.top1_ci else (math.nan, math.nan)
        subset = not r.comparable_to_published
        if subset:
            verdict, delta = cell("", html=Markup('<span class="tag">{}</span>').format(r.subset_label)), math.nan
        elif math.isnan(lo):
            verdict, delta = cell("no interval recorded"), r.top1 - pub
        elif lo <= pub <= hi:
            verdict, delta = cell("within"), r.top1 - pub
        else:
            verdict, delta = cell("", html=Markup('<span class="flag">outside 95% CI</span>')), r.top1 - pub
        s = recs.stats.get(r.checkpoint)
        cells = [model_cell_with_facts(r.checkpoint), cell(DATASETS[r.dataset].short if r.dataset in DATASETS else r.dataset), cell(r.precision),
                 cell(f"{r.top1:.3f}", sort=r.top1), cell(f"{lo:.2f} – {hi:.2f}" if not math.isnan(lo) else "", sort=lo),
                 cell(f"{pub:.3f}", sort=pub), cell(f"{delta:+.3f}" if not math.isnan(delta) else "", sort=delta),
                 verdict]
        rows.append({"cells": cells, "search": facts(r.checkpoint)["search"] + " " + r.dataset,
                     "gmacs": _num(s.gmacs if s else None), "cls": "subset" if subset else ""})
    if not rows:
        return None
    n_outside = sum('class="flag"' in str(r["cells"][-1]["html"]) for r in rows)
    return {"header": header(("model", False), ("dataset", False), ("precision", False), ("measured top-1", True),
                             ("95% CI", True), ("timm published top-1", True), ("Δ", True),
                             ("published in CI?", False)), "rows": rows, "n_outside": n_outside}


# ---------------------------------------------------------------------------- pages

def index_view(results_dir: Path, recs, cmp: dict, results_frame, names: list[str] | None = None) -> dict:
    """The page's view: cmp is comparison.md's view model; results_frame gives a dataset's ranked rows
    (the results CSV's); `names` the checkpoints of the overview (all registered by default)."""
    gmacs = {n: s.gmacs for n, s in recs.stats.items()}
    check = published_check_table(recs)
    boards = []
    for ds, spec in DATASETS.items():
        t = leaderboard_table(results_dir, recs, ds, results_frame)
        if t is not None:
            boards.append({"id": f"board-{ds}", "title": spec.title, "table": t})
    un = cmp.get("unmeasured")
    return {
        "counts": cmp["counts"],
        "measured": cmp["measured"],
        "overview": overview_table(recs, names),
        "boards": boards,
        "published_check": check,
        "n_outside": check["n_outside"] if check else 0,
        "robustness": from_md_table(cmp["robustness"]["table"], gmacs) if cmp.get("robustness") else None,
        "speed": [{"title": s["title"], "table": from_md_table(s["table"], gmacs, mark="Pareto front")}
                  for s in cmp["speed"]],
        "paired": {"title": cmp["paired"]["title"], "table": from_md_table(cmp["paired"]["table"], gmacs, model_col=None)}
        if cmp.get("paired") else None,
        "unmeasured": [{**g, "checkpoint_links": [model_cell(n) for n in g["checkpoints"]]}
                       for g in (un["groups"] if un else [])],
        "plots": cmp["plots"],
        "plot_notes": cmp["plot_notes"],
        "published": from_md_table(cmp["published"]["all"], gmacs),
    }


def card_page(name: str, markdown_text: str) -> dict:
    body = _MD.render(_FRONT_MATTER.sub("", markdown_text, count=1))
    return {"name": name, "body": Markup(body), "md_file": quote(f"{safe_name(name)}.md")}


def write_html(out_dir: Path, env, index: dict, cards: dict[str, str]) -> list[Path]:
    """index.html and one page per card; returns the paths written."""
    out_dir = Path(out_dir)
    written = []
    for name, text in cards.items():
        path = out_dir / "cards" / f"{safe_name(name)}.html"
        atomic_write_text(path, env.get_template("card.html.j2").render(card=card_page(name, text)))
        written.append(path)
    path = out_dir / "index.html"
    atomic_write_text(path, env.get_template("index.html.j2").render(page=index))
    written.append(path)
    return written


__all__ = ["index_view", "write_html", "card_page", "overview_table", "leaderboard_table", "from_md_table"]
