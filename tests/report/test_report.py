"""Cards, comparison.md and plots rendered from the fixture records.

Golden snapshots live in tests/fixtures/snapshots/; regenerate them after an intended change with

    VITBENCH_UPDATE_SNAPSHOTS=1 python -m pytest tests/test_report.py
"""
from __future__ import annotations

import os
import re
import shutil
from importlib import resources
from pathlib import Path

import jinja2
import pytest

from support import FIXTURES, REPO
from vitbench.catalog.registry import get_checkpoint, list_models, safe_name
from vitbench.records import RecordStore
from vitbench.report import render_reports
from vitbench.report.card import usage_view
from vitbench.report.markdown import md_rows
from vitbench.report.tables import Cell, Column, Row, Table, Verdict, published_verdict, verdict_cell

FIXTURES = FIXTURES
RECORDS = FIXTURES / "records"
SNAPSHOTS = FIXTURES / "snapshots"
UPDATE = os.environ.get("VITBENCH_UPDATE_SNAPSHOTS") == "1"
BETWIXT = "vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k"
HYBRID = "google/vit-hybrid-base-bit-384"


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("reports")
    return out, render_reports(RECORDS, out)


# The comparison snapshot covers these checkpoints, not the whole registry, so registering more
# checkpoints does not change it: those with fixture records plus one or two of other families.
PINNED = [
    "vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k", "vit_base_patch16_rope_reg1_gap_256.sbb_in1k",
    "vit_medium_patch16_rope_reg1_gap_256.sbb_in1k", "vit_mediumd_patch16_reg4_gap_256.sbb_in12k_ft_in1k",
    "vit_wee_patch16_reg1_gap_256.sbb_in1k", "vit_small_patch16_224.augreg_in21k_ft_in1k",
    "vit_base_patch16_224.augreg2_in21k_ft_in1k", "vit_large_patch16_384.augreg_in21k_ft_in1k",
    "deit_tiny_patch16_224.fb_in1k", "deit_base_distilled_patch16_224.fb_in1k", HYBRID,
    "vit_base_patch16_clip_224.laion2b_ft_in12k_in1k", "deit3_small_patch16_224.fb_in22k_ft_in1k",
]


@pytest.fixture(scope="module")
def rendered_pinned(tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("reports_pinned")
    return out, render_reports(RECORDS, out, checkpoints=PINNED)


@pytest.fixture(scope="module")
def rendered_empty(tmp_path_factory) -> tuple[Path, list[Path]]:
    out = tmp_path_factory.mktemp("reports_empty")
    return out, render_reports(tmp_path_factory.mktemp("no_results"), out)


def check_snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"no snapshot {path}; run with VITBENCH_UPDATE_SNAPSHOTS=1 to create it"
    assert text.encode("utf-8") == path.read_bytes(), (
        f"{name} differs from its snapshot; if the change is intended, rerun with VITBENCH_UPDATE_SNAPSHOTS=1")


def card(out: Path, name: str) -> str:
    return (out / "cards" / f"{safe_name(name)}.md").read_text(encoding="utf-8")


# ---------------------------------------------------------------------------- snapshots

def test_card_snapshot(rendered):
    check_snapshot(f"{BETWIXT}.md", card(rendered[0], BETWIXT))


def test_comparison_snapshot(rendered_pinned):
    """Pinned to PINNED: the snapshot changes with the report, not with the size of the registry."""
    out, files = rendered_pinned
    assert sorted(p.name for p in files if p.parent.name == "cards" and p.suffix == ".md") == \
        sorted(f"{safe_name(n)}.md" for n in PINNED)
    text = (out / "comparison.md").read_text(encoding="utf-8")
    assert f"`{RECORDS / 'records'}/`" in text          # names the records it was made from
    check_snapshot("comparison.md", text.replace(f"{RECORDS / 'records'}/", "results/records/"))


def test_deterministic(rendered, tmp_path):
    out, files = rendered
    again = render_reports(RECORDS, tmp_path)
    assert [p.relative_to(tmp_path) for p in again] == [p.relative_to(out) for p in files]
    for p in files:
        assert p.read_bytes() == (tmp_path / p.relative_to(out)).read_bytes(), p.name


# ---------------------------------------------------------------------------- cards

def test_every_registered_checkpoint_gets_a_card(rendered):
    out, files = rendered
    cards = sorted(p.name for p in (out / "cards").glob("*.md"))
    assert cards == sorted(f"{safe_name(n)}.md" for n in list_models())


def test_card_content(rendered):
    text = card(rendered[0], BETWIXT)
    assert text.startswith("---\ntags:\n- image-classification\n- timm\nlibrary_name: timm\nlicense: mit\n")
    assert f"# Model card for {BETWIXT}" in text
    assert "| betwixt | 640 | 2560 (4) | 10 | 12 | y |" in text       # SBB size table
    # seed 000's Model Stats, number for number (GMACs and activations without the attention matmuls)
    assert "  - Params (M): 60.2\n  - GMACs: 15.5\n  - Activations (M): 18.1\n" in text
    assert "  - Image size: 256 x 256" in text
    assert f"vitbench.create_model('{BETWIXT}', pretrained=True)" in text
    assert "forward_intermediates(transform(img).unsqueeze(0), indices=3)" in text
    assert "torch.Size([1, 640, 16, 16])" in text and "a (1, 260, 640) shaped tensor" in text
    assert "| ImageNet-1k val | 83.918 | 96.681 |" in text
    assert "timm's published figures for the architecture" in text
    assert "```bibtex\n@article{EVA02," in text


def test_unmeasured_card_says_how_to_measure_the_same_on_every_machine(rendered):
    """A job that could not run here has no record: its card says "not measured" and the one command
    that measures it, never this machine's reason (cache path, offline, data root)."""
    text = card(rendered[0], "vit_base_patch16_224.augreg2_in21k_ft_in1k")
    assert "| ImageNet-1k val | not measured | not measured |  |  |  |  | 85.108 |  |" in text
    assert ("`vitbench run vit_base_patch16_224.augreg2_in21k_ft_in1k` measures what says \"not measured\" "
            "(weights from `--weights-dir`, the HF cache or the Hub; data from `--data-root`, `--data` or the "
            "HF cache).") in text
    assert "Why numbers are not measured" not in text and "offline" not in text
    assert "Throughput: not measured" in text
    assert "  - Params (M): 86.6" in text                                # its StatsRecord exists
    # measured on some sets: the command names the others (R and A also run their clean baselines)
    assert "`vitbench run deit_tiny_patch16_224.fb_in1k --datasets real,v2,sketch,r,a` measures" in card(
        rendered[0], "deit_tiny_patch16_224.fb_in1k")
    assert "measures what says" not in card(rendered[0], BETWIXT)        # every set measured


def test_card_with_failed_record_says_why(rendered):
    text = card(rendered[0], "vit_small_patch16_224.augreg_in21k_ft_in1k")
    assert "| ImageNet-Sketch | not measured | not measured |  |  |  | fp32 |" in text
    assert "failed: ImageNet-Sketch (fp32)\n```text\nOSError: image file is truncated (fixture)\n```" in text


def test_card_without_any_record(rendered_empty):
    out, files = rendered_empty
    text = card(out, BETWIXT)
    assert "Model Stats:** not measured" in text
    assert "Accuracy has not been measured for this checkpoint yet" in text
    assert "| ImageNet-1k val | not measured | not measured |  |  |  |  | 83.906 |  |" in text
    assert "Throughput: not measured" in text
    assert "## Citation" in text and "## Model Comparison" in text
    assert len(list((out / "cards").glob("*.md"))) == len(list_models())


def test_hf_style_card(rendered):
    text = card(rendered[0], HYBRID)
    assert get_checkpoint(HYBRID).library_name == "transformers"
    assert "library_name: transformers" in text
    assert "# Vision Transformer (base-sized model) - Hybrid" in text
    for section in ("## Model description", "## Intended uses & limitations", "## How to use",
                    "## Training data", "## Evaluation results", "### BibTeX entry and citation info"):
        assert section in text, section
    assert 'vitbench.create_model("google/vit-hybrid-base-bit-384", pretrained=True)' in text
    assert "(1, 577, 768)" in text
    assert "| ImageNet-1k val | 84.998 |" in text
    assert "@misc{wu2020visual," in text


@pytest.mark.parametrize("name,tokens,grid", [
    (BETWIXT, 260, 16),
    ("vit_relpos_base_patch16_clsgap_224.sw_in1k", 197, 14),
    ("vit_base_patch16_384.augreg_in21k_ft_in1k", 577, 24),
    ("vit_base_patch32_384.augreg_in21k_ft_in1k", 145, 12),
    ("vit_wee_patch16_reg1_gap_256.sbb_in1k", 257, 16),
    ("deit_tiny_patch16_224.fb_in1k", 197, 14),
    (HYBRID, 577, 24),
])
def test_usage_shapes(name, tokens, grid):
    usage = usage_view(get_checkpoint(name))
    width = usage["num_features"]
    assert usage["tokens"] == f"(1, {tokens}, {width})"
    assert usage["feature_maps"][0] == f"torch.Size([1, {width}, {grid}, {grid}])"


# ---------------------------------------------------------------------------- comparison + plots

def test_comparison_sections(rendered):
    text = (rendered[0] / "comparison.md").read_text(encoding="utf-8")
    for heading in ("## Leaderboards", "## Robustness", "## Speed / accuracy", "## Measured vs published",
                    "## Not measured", "## Plots", "## timm's published figures"):
        assert heading in text, heading
    assert "| deit_tiny_patch16_224.fb_in1k | IN-1k | fp32 | 71.190 | 70.79 – 71.59 | 72.190 | -1.000 | **outside 95% CI** |" in text
    assert "(1 flagged)" in text
    n = len(list_models())
    assert (f"{8 * n - 18} of the {8 * n} evaluation jobs ({n} checkpoints x 8 datasets) have no measurement yet: "
            "`vitbench run --all` measures them") in text
    assert "| OSError: image file is truncated (fixture) | 1 | vit_small_patch16_224.augreg_in21k_ft_in1k | sketch (fp32) |" in text


def test_comparison_without_records(rendered_empty):
    out, files = rendered_empty
    text = (out / "comparison.md").read_text(encoding="utf-8")
    assert "Nothing has been measured yet" in text
    assert "| vit_large_patch16_384.augreg_in21k_ft_in1k | 87.096 |" in text
    assert "## Leaderboards" not in text
    assert not (out / "plots").exists() or not list((out / "plots").iterdir())


def test_plots_written(rendered):
    out, files = rendered
    pngs = sorted(p.name for p in files if p.suffix == ".png")
    assert pngs == sorted([
        "top1_vs_throughput_cuda_amp_bf16.png", "top1_vs_throughput_cpu_fp32.png", "top1_vs_gmacs.png", "top1_vs_params.png",
        "imagenet_vs_real.png", "imagenet_vs_v2.png", "imagenet_vs_sketch.png", "imagenet_vs_r.png",
        "imagenet_vs_a.png", "throughput_vs_gmacs_cuda_amp_bf16.png", "throughput_vs_gmacs_cpu_fp32.png",
        "effective_robustness.png"])
    for name in pngs:
        data = (out / "plots" / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000, name
        assert b"Software" not in data[:2000]


def test_bare_machine_draws_throughput_vs_gmacs(tmp_path):
    """Stats and bench records alone (no accuracy) still give the throughput-vs-GMACs plot."""
    import shutil

    src = FIXTURES / "records" / "records"
    for kind in ("stats", "bench"):
        shutil.copytree(src / kind, tmp_path / "results" / "records" / kind)
    files = render_reports(tmp_path / "results", tmp_path / "reports")
    pngs = sorted(p.name for p in files if p.suffix == ".png")
    assert pngs == ["throughput_vs_gmacs_cpu_fp32.png", "throughput_vs_gmacs_cuda_amp_bf16.png"]


def test_markdown_tables_well_formed(rendered, rendered_empty):
    unescaped = re.compile(r"(?<!\\)\|")
    for out in (rendered[0], rendered_empty[0]):
        for md in sorted(out.rglob("*.md")):
            block: list[str] = []
            for line in md.read_text(encoding="utf-8").splitlines() + [""]:
                if line.startswith("|"):
                    block.append(line)
                    continue
                if block:
                    counts = {len(unescaped.findall(r)) for r in block}
                    assert len(counts) == 1, f"{md.name}: ragged table starting {block[0]!r}"
                    assert re.fullmatch(r"\|( --- \|)+", block[1]), f"{md.name}: bad separator {block[1]!r}"
                    block = []


def test_table_escapes_pipes_and_checks_width():
    t = Table((Column("a"), Column("b|c")), (Row((Cell("x|y"), Cell("line\nbreak"))),))
    assert md_rows(t) == {"header": ["a", "b\\|c"], "rows": [["x\\|y", "line break"]]}
    with pytest.raises(ValueError):
        Table((Column("a"), Column("b")), (Row((Cell("only one"),)),))


def test_markdown_shows_links_notes_and_only_its_columns():
    t = Table((Column("model"), Column("top1", numeric=True), Column("GMACs", numeric=True, md=False)),
              (Row((Cell("m", href="https://x/m"), Cell("80.100", 80.1, note="subset, 3 of 50,000"), Cell("1.00", 1.0))),))
    assert md_rows(t) == {"header": ["model", "top1"], "rows": [["[m](https://x/m)", "80.100 (subset, 3 of 50,000)"]]}


def test_one_verdict_for_published_within_the_interval():
    from vitbench.records import EvalRecord

    def rec(**kw):
        base = dict(checkpoint="c", dataset="imagenet", precision="fp32", status="ok", top1=80.0,
                    top1_ci=(79.6, 80.4), complete=True, n_images=50000, n_expected=50000)
        return EvalRecord(**{**base, **kw})

    assert published_verdict(rec(), 80.3) == Verdict("within", pytest.approx(-0.3))
    assert published_verdict(rec(), 81.0).kind == "outside"
    assert published_verdict(rec(), None) == Verdict("no published")
    assert published_verdict(rec(top1_ci=None), 81.0).kind == "no interval"
    subset = rec(complete=False, n_images=500)
    assert published_verdict(subset, 81.0) == Verdict("subset")          # not compared: no delta, no flag
    assert verdict_cell(published_verdict(rec(), 81.0), rec()) == Cell("**outside 95% CI**", flag="outside")
    assert verdict_cell(Verdict("subset"), subset) == Cell("not compared: subset, 500 of 50,000", flag="subset")
    table = Table((Column("v"),), (Row((verdict_cell(Verdict("outside", 1.0), rec()),)),
                                   Row((Cell("**outside 95% CI**"),))))
    assert table.count("outside") == 1                                   # counted from flags, not text


def test_records_are_read_once_per_report(tmp_path, monkeypatch):
    """render_reports reads every record file once, and a store a run already holds is not read again."""
    from vitbench.records import store as store_module

    reads = []
    real = store_module.read_record
    monkeypatch.setattr(store_module, "read_record", lambda p: reads.append(p) or real(p))
    render_reports(RECORDS, tmp_path / "a", checkpoints=PINNED)
    files = sorted((RECORDS / "records").rglob("*.json"))
    assert sorted(reads) == files
    store = RecordStore.load(RECORDS)
    reads.clear()
    render_reports(store, tmp_path / "b", checkpoints=PINNED)
    assert reads == []
    assert (tmp_path / "a" / "comparison.md").read_bytes() == (tmp_path / "b" / "comparison.md").read_bytes()


# ---------------------------------------------------------------------------- StrictUndefined

def test_strict_undefined_catches_missing_field(tmp_path):
    packaged = resources.files("vitbench.templates")
    for name in ("_macros.md.j2", "model_card_hf.md.j2", "comparison.md.j2", "model_card.md.j2"):
        (tmp_path / name).write_text(packaged.joinpath(name).read_text(encoding="utf-8"), encoding="utf-8")
    broken = (tmp_path / "model_card.md.j2").read_text(encoding="utf-8")
    (tmp_path / "model_card.md.j2").write_text(broken + "\n{{ card.no_such_field }}\n", encoding="utf-8")
    with pytest.raises(jinja2.UndefinedError):
        render_reports(RECORDS, tmp_path / "out", templates_dir=tmp_path)


def test_templates_dir_override_is_used(tmp_path):
    shutil.copytree(REPO / "templates", tmp_path / "t",      # this checkout's own
                    ignore=shutil.ignore_patterns("__pycache__", "*.py"))
    (tmp_path / "t" / "comparison.md.j2").write_text("custom {{ cmp.counts.ok }}\n", encoding="utf-8")
    render_reports(RECORDS, tmp_path / "out", templates_dir=tmp_path / "t")
    assert (tmp_path / "out" / "comparison.md").read_text() == "custom 19\n"


# ---------------------------------------------------------------------------- paired test

def test_paired_section_from_predictions(tmp_path):
    import pandas as pd

    from vitbench.records import read_record, write_record

    shutil.copytree(RECORDS / "records", tmp_path / "records")
    names = {"vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k": 0.8, "vit_base_patch16_rope_reg1_gap_256.sbb_in1k": 0.5}
    for name, frac in names.items():
        rec_path = tmp_path / "records" / "imagenet" / f"{name}__fp32.json"
        rec = read_record(rec_path)
        rec.predictions_file = f"{name}__fp32.parquet"
        write_record(rec_path, rec)
        right = int(100 * frac)
        pd.DataFrame({"index": range(100), "target": [1] * 100,
                      "top5_idx": [[1, 2, 3, 4, 5]] * right + [[2, 1, 3, 4, 5]] * (100 - right)}
                     ).to_parquet(rec_path.with_suffix(".parquet"))
    out = tmp_path / "out"
    render_reports(tmp_path, out)
    text = (out / "comparison.md").read_text()
    assert "## Paired tests (ImageNet-1k val)" in text
    assert ("| vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k (fp32) | vit_base_patch16_rope_reg1_gap_256.sbb_in1k (fp32)"
            " | 100 | 30 | 0 |") in text


def test_paired_test_matches_images_by_file_name(tmp_path):
    """Two runs that list the same images in another order, under another data root, still pair
    image by image (a pairing by row position would compare different images)."""
    import pandas as pd

    from vitbench.records import read_record, write_record

    shutil.copytree(RECORDS / "records", tmp_path / "records")
    files = [f"ILSVRC2012_val_{n:08d}.JPEG" for n in range(1, 61)]
    a_right = set(files[:40])                       # A right on the first 40 images, B on the last 40
    runs = {"vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k": ("/data/a", files, a_right),
            "vit_base_patch16_rope_reg1_gap_256.sbb_in1k": ("/mnt/b", files[::-1], set(files[20:]))}
    for name, (root, order, right) in runs.items():
        rec_path = tmp_path / "records" / "imagenet" / f"{name}__fp32.json"
        rec = read_record(rec_path)
        rec.predictions_file = f"{name}__fp32.parquet"
        write_record(rec_path, rec)
        pd.DataFrame({"index": range(len(order)), "file": [f"{root}/{f}" for f in order], "target": [1] * 60,
                      "top5_idx": [[1, 2, 3, 4, 5] if f in right else [2, 1, 3, 4, 5] for f in order]}
                     ).to_parquet(rec_path.with_suffix(".parquet"))
    render_reports(tmp_path, tmp_path / "out")
    text = (tmp_path / "out" / "comparison.md").read_text()
    # by file: only A right on images 1-20, only B on 41-60 (by row position both runs would agree: 0 | 0)
    assert ("| vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k (fp32) | vit_base_patch16_rope_reg1_gap_256.sbb_in1k (fp32)"
            " | 60 | 20 | 20 |") in text


def test_crowded_plot_numbers_points_with_a_key(tmp_path):
    """Past MAX_NAMED points, names move to a key beside the axes (a wider figure), so dense
    clusters stay readable; coincident points share one label."""
    import struct

    from vitbench.report import plots

    pts = [plots.Point(f"model_{i:02d}", 1.0 + i, 10.0 - 0.1 * i) for i in range(plots.MAX_NAMED + 3)]
    pts.append(plots.Point("model_twin", pts[0].x, pts[0].y))          # same spot as model_00
    path = plots.scatter(tmp_path / "crowded.png", pts, title="t", xlabel="x", ylabel="y")
    width, height = struct.unpack(">II", path.read_bytes()[16:24])      # PNG IHDR
    assert (width, height) == tuple(int(v * plots.DPI) for v in plots.FIGSIZE_KEYED)
    few = plots.scatter(tmp_path / "few.png", pts[:3], title="t", xlabel="x", ylabel="y")
    assert struct.unpack(">II", few.read_bytes()[16:24]) == tuple(int(v * plots.DPI) for v in plots.FIGSIZE)


def test_checkpoints_text_stays_short_at_the_zoo_size():
    from vitbench.report.comparison import checkpoints_text

    names = list_models()
    assert checkpoints_text(names) == f"all {len(names)} registered checkpoints"
    assert checkpoints_text(names[1:]) == f"all {len(names)} registered checkpoints but {names[0]}"
    assert checkpoints_text(names[:3]) == ", ".join(names[:3])
    assert checkpoints_text(names[:20]).endswith(", and 12 more (their cards say which)")
