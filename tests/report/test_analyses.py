"""The analyses as the reports and the CLI show them (report.analyses): `vitbench compare` on made-up
prediction files with known flips and McNemar p, `vitbench robustness` against a hand computation,
the results CSVs' effective_robustness / ece / top1_1000way columns, the cards' Analyses section with
and without data, and the plots (timm's cloud behind the speed and compute plots)."""
from __future__ import annotations

import dataclasses
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from support import FIXTURES
from vitbench import cli
from vitbench.catalog import er_baseline_models
from vitbench.catalog.registry import list_models, safe_name
from vitbench.data.specs import published_cloud, published_top1
from vitbench.records import RecordStore, eval_path, read_record, write_record
from vitbench.records.store import DIFF_COLUMNS, TIMM_RESULT_COLUMNS, VITBENCH_RESULT_COLUMNS
from vitbench.report import render_reports
from vitbench.report.analyses import Cloud, field_cloud, parse_spec, robustness_rows
from vitbench.report.csv import write_results_csvs
from vitbench.significance import paired_difference_interval

RECORDS = FIXTURES / "records"
BETWIXT = "vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k"
WEE = "vit_wee_patch16_reg1_gap_256.sbb_in1k"
MEDIUMD = "vit_mediumd_patch16_reg4_gap_256.sbb_in12k_ft_in1k"
DEIT = "deit_tiny_patch16_224.fb_in1k"
SMALL = "vit_small_patch16_224.augreg_in21k_ft_in1k"
AUGREG2 = "vit_base_patch16_224.augreg2_in21k_ft_in1k"
AGREEMENT_KEYS = {"n", "top1_a", "top1_b", "diff", "diff_lo", "diff_hi", "flips", "flip_rate", "mcnemar_p",
                  "top5_overlap"}


def frame(rows, probs=None) -> pd.DataFrame:
    """A predictions frame as vitbench writes it; rows: (image number, target, top-5 classes)."""
    return pd.DataFrame({
        "index": list(range(len(rows))),
        "file": [f"/data/imagenet/val/ILSVRC2012_val_{n:08d}.JPEG" for n, _, _ in rows],
        "target": [t for _, t, _ in rows],
        "top5_idx": [list(t5) for _, _, t5 in rows],
        "top5_prob": [list(p) for p in probs] if probs is not None else [[0.6, 0.1, 0.1, 0.1, 0.1]] * len(rows),
    })


def attach(results: Path, dataset: str, name: str, df: pd.DataFrame | None = None, setting: str = "fp32",
           base: str = "fp32", **fields):
    """The record of `name` on `dataset` at `setting` (made from its `base` record when new), with
    `fields` changed and, when given, `df` written as its predictions file."""
    rec = read_record(eval_path(results, dataset, name, base))
    if df is not None:
        fields["predictions_file"] = f"{safe_name(name)}__{setting}.parquet"
    rec = dataclasses.replace(rec, **fields)
    assert rec.setting == setting
    path = eval_path(results, dataset, name, setting)
    write_record(path, rec)
    if df is not None:
        df.to_parquet(path.with_suffix(".parquet"))
    return rec


@pytest.fixture
def results(tmp_path) -> Path:
    shutil.copytree(RECORDS / "records", tmp_path / "records")
    return tmp_path


# 8 images, image i of class i (the table of tests/analysis/test_analysis.py): A right on 1, 2, 3; B right
# on 1, 2, 4, 5, 6; top-1 classes differ on 3, 4, 5, 6, 8 (5 flips); only A right: 1 image, only B: 3, so
# the exact two-sided McNemar p is 2 * (C(4,0) + C(4,1)) / 2**4 = 10/16; top-5 shared: 5+3+5+4+2+0+5+1 of 40.
A_ROWS = [(1, [1, 20, 21, 22, 23]), (2, [2, 30, 31, 32, 33]), (3, [3, 9, 40, 41, 42]),
          (4, [9, 4, 50, 51, 52]), (5, [8, 60, 61, 62, 63]), (6, [7, 70, 71, 72, 73]),
          (7, [9, 80, 81, 82, 83]), (8, [9, 90, 91, 92, 93])]
B_ROWS = [(1, [1, 20, 21, 22, 23]), (2, [2, 30, 31, 100, 101]), (3, [9, 3, 40, 41, 42]),
          (4, [4, 9, 50, 51, 200]), (5, [5, 8, 60, 300, 301]), (6, [6, 400, 401, 402, 403]),
          (7, [9, 80, 81, 82, 83]), (8, [10, 9, 500, 501, 502])]


def known_pair(results: Path, name: str = WEE, other: str = "amp_bf16", dataset: str = "imagenet") -> None:
    """`name`'s fp32 record gets A's predictions, its `other` record B's (in another order)."""
    attach(results, dataset, name, frame([(i, i, t5) for i, t5 in A_ROWS]))
    attach(results, dataset, name, frame([(i, i, t5) for i, t5 in B_ROWS][::-1]), setting=other,
           precision=other.split("+")[0], compile="+compile" in other)


# ---------------------------------------------------------------------------- vitbench compare

def test_compare_json_is_one_object_with_known_answers(results, capsys):
    known_pair(results)
    rc = cli.main(["compare", f"{WEE}@fp32", f"{WEE}@amp_bf16", "--json", "--results-dir", str(results)])
    out = capsys.readouterr().out
    assert rc == 0 and out.count("\n") == 1
    got = json.loads(out)
    assert set(got) == AGREEMENT_KEYS | {"a", "b", "dataset"}
    assert (got["a"], got["b"], got["dataset"]) == (f"{WEE}@fp32", f"{WEE}@amp_bf16", "imagenet")
    assert got["n"] == 8 and got["flips"] == 5 and got["flip_rate"] == pytest.approx(62.5)
    assert got["top1_a"] == pytest.approx(37.5) and got["top1_b"] == pytest.approx(62.5)
    assert got["diff"] == pytest.approx(25.0)
    assert got["mcnemar_p"] == pytest.approx(10 / 16)
    assert got["top5_overlap"] == pytest.approx(25 / 40)
    lo, hi = paired_difference_interval(2, 3, 1, 2)         # both right, only B, only A, neither
    assert (got["diff_lo"], got["diff_hi"]) == (pytest.approx(lo), pytest.approx(hi))
    assert lo < 25.0 < hi


def test_compare_text_is_a_short_aligned_table(results, capsys):
    known_pair(results, other="amp_bf16+compile")
    # a bare checkpoint name is its preferred record (fp32)
    assert cli.main(["compare", WEE, f"{WEE}@amp_bf16+compile", "--results-dir", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == f"A                  {WEE}@fp32"
    assert lines[1] == f"B                  {WEE}@amp_bf16+compile"
    assert "images             8 (both scored)" in lines
    assert "top-1 A            37.500%" in lines and "top-1 B            62.500%" in lines
    assert any(ln.startswith("Δ top-1 (B - A)    +25.000 points (95% CI ") for ln in lines)
    assert "flips              5 (62.500% of images)" in lines
    assert "McNemar p (exact)  0.625" in lines
    assert "top-5 overlap      0.6250" in lines
    assert len({ln.index(ln.split()[-1]) > 18 for ln in lines}) == 1      # values start in one column


def test_compare_missing_record_or_predictions_is_one_line_exit_2(results, capsys):
    known_pair(results)
    argv = ["--results-dir", str(results)]
    assert cli.main(["compare", f"{WEE}@fp32", f"{WEE}@bf16", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert f"no 'ok' record of {WEE}@bf16 on imagenet" in err and "(it has fp32, amp_bf16)" in err
    assert cli.main(["compare", f"{WEE}@fp32", f"{DEIT}@fp32", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{DEIT}__fp32.parquet" in err and "no predictions file" in err
    assert cli.main(["compare", WEE, "vit_nothing_here.x", *argv]) == 2
    assert "no 'ok' record of vit_nothing_here.x on imagenet" in capsys.readouterr().err
    assert cli.main(["compare", WEE, WEE, "--dataset", "real", *argv]) == 2
    assert "--dataset 'real'" in capsys.readouterr().err


def test_checkpoint_at_setting_parsing():
    assert parse_spec("deit_tiny_patch16_224.fb_in1k@amp_bf16+compile") == (DEIT, "amp_bf16+compile")
    assert parse_spec(f"{DEIT}@fp32+channels_last+compile") == (DEIT, "fp32+compile+channels_last")
    assert parse_spec(DEIT) == (DEIT, None)
    assert parse_spec("hf-hub:org/name@main") == ("hf-hub:org/name@main", None)     # a revision, not a setting
    assert parse_spec("hf-hub:org/name@main@bf16") == ("hf-hub:org/name@main", "bf16")


# ---------------------------------------------------------------------------- vitbench robustness

def hand_expected(shift: str, imagenet_top1: float) -> float:
    """The baseline's shift top-1 at `imagenet_top1`, fitted independently: er_baseline.txt's models
    (not the code's rule), rows matched on (model, img_size), numpy.polyfit of clipped logits."""
    m = published_cloud("imagenet").merge(published_cloud(shift), on=["model", "img_size"], suffixes=("_in", "_sh"))
    m = m[m["model"].isin(set(er_baseline_models()))]

    def lg(p):
        p = np.clip(np.asarray(p, dtype=float) / 100, 1e-4, 1 - 1e-4)
        return np.log(p / (1 - p))

    a, b = np.polyfit(lg(m["top1_in"]), lg(m["top1_sh"]), 1)
    return 100 / (1 + math.exp(-(a * float(lg(imagenet_top1)) + b)))


def test_robustness_json_measured_and_published_rows(results, capsys):
    full_r = read_record(eval_path(results, "r", BETWIXT, "fp32"))
    write_record(eval_path(results, "r", WEE, "fp32"),                   # a subset: never a measured row
                 dataclasses.replace(full_r, checkpoint=WEE, limit=500, n_images=500, n_scored=500, complete=False))
    v2 = read_record(eval_path(results, "v2", MEDIUMD, "fp32"))
    write_record(eval_path(results, "v2", SMALL, "fp32"), dataclasses.replace(v2, checkpoint=SMALL))  # no IN-1k
    assert cli.main(["robustness", "--json", "--results-dir", str(results)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert isinstance(rows, list)
    assert set(rows[0]) == {"checkpoint", "dataset", "source", "imagenet_top1", "top1", "baseline_top1",
                            "effective_robustness", "setting"}
    by = {(r["checkpoint"], r["dataset"], r["source"]): r for r in rows}

    # measured: the fixture's complete betwixt records (ImageNet 83.918, Sketch 39.093)
    m = by[(BETWIXT, "sketch", "measured")]
    imagenet = read_record(eval_path(results, "imagenet", BETWIXT, "fp32")).top1
    sketch = read_record(eval_path(results, "sketch", BETWIXT, "fp32")).top1
    assert (m["imagenet_top1"], m["top1"], m["setting"]) == (imagenet, sketch, "fp32")
    assert m["baseline_top1"] == pytest.approx(hand_expected("sketch", imagenet), abs=1e-9)
    assert m["effective_robustness"] == pytest.approx(sketch - hand_expected("sketch", imagenet), abs=1e-9)
    assert {d for c, d, s in by if c == BETWIXT and s == "measured"} == {"v2", "sketch", "r", "a"}
    assert (WEE, "r", "measured") not in by                       # a subset
    assert (SMALL, "v2", "measured") not in by                    # no ImageNet-val record to set it against

    # published: timm's row of vit_base_patch16_224.augreg2_in21k_ft_in1k (85.108 on IN-1k, 45.106 on Sketch)
    p = by[(AUGREG2, "sketch", "published")]
    assert (p["imagenet_top1"], p["top1"], p["setting"]) == (85.108, 45.106, None)
    expected = hand_expected("sketch", 85.108)
    assert p["baseline_top1"] == pytest.approx(expected, abs=1e-9)
    assert p["effective_robustness"] == pytest.approx(45.106 - expected, abs=1e-9)
    assert p["effective_robustness"] == pytest.approx(6.39, abs=0.01)
    # every registered checkpoint timm publishes on both sets has its published row
    for shift in ("v2", "sketch", "r", "a"):
        have = {n for n in list_models() if published_top1("imagenet", n) is not None
                and published_top1(shift, n) is not None}
        assert {c for c, d, s in by if d == shift and s == "published"} == have
    assert len(have) > 150


def test_robustness_text(results, capsys):
    assert cli.main(["robustness", "--results-dir", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["checkpoint", "set", "source", "setting", "IN-1k", "top-1", "top-1", "baseline",
                                "eff.", "robustness"]
    line = next(ln for ln in lines if ln.startswith(BETWIXT) and " measured " in ln and " sketch " in ln)
    assert line.split()[-1].startswith("+")


# ---------------------------------------------------------------------------- the results CSVs

def test_results_csvs_carry_er_ece_and_1000way(results):
    attach(results, "imagenet", BETWIXT, ece=0.0321)
    attach(results, "imagenet", BETWIXT, setting="amp_bf16+compile", precision="amp_bf16", compile=True, ece=0.05)
    attach(results, "r", BETWIXT, top1_1000way=48.5)
    full_r = read_record(eval_path(results, "r", BETWIXT, "fp32"))
    write_record(eval_path(results, "r", WEE, "fp32"),
                 dataclasses.replace(full_r, checkpoint=WEE, limit=500, n_images=500, n_scored=500, complete=False,
                                     top1_1000way=None))
    v2 = read_record(eval_path(results, "v2", MEDIUMD, "fp32"))
    write_record(eval_path(results, "v2", SMALL, "fp32"), dataclasses.replace(v2, checkpoint=SMALL))
    store = RecordStore.load(results)
    write_results_csvs(store)

    def read(stem):
        return pd.read_csv(results / f"{stem}.csv").set_index("model", drop=False)

    tail = list(dict.fromkeys(VITBENCH_RESULT_COLUMNS + ["ece"]))
    imagenet = read("results-imagenet")
    assert list(imagenet.columns) == TIMM_RESULT_COLUMNS + tail
    ece = {(m, s): e for m, s, e in zip(imagenet["model"], imagenet["precision"], imagenet["ece"], strict=True)}
    assert ece[(BETWIXT, "fp32")] == pytest.approx(0.0321) and math.isnan(ece[(DEIT, "fp32")])
    assert ece[(BETWIXT, "amp_bf16+compile")] == pytest.approx(0.05)                # each setting its own row

    r = read("results-imagenet-r")
    assert list(r.columns) == (TIMM_RESULT_COLUMNS + DIFF_COLUMNS + ["effective_robustness"]
                               + list(dict.fromkeys(tail + ["top1_1000way"])))
    rows = {(x.checkpoint, x.dataset, x.source): x for x in robustness_rows(store)}
    assert r.loc[BETWIXT, "effective_robustness"] == pytest.approx(
        round(rows[(BETWIXT, "r", "measured")].effective_robustness, 3))
    assert math.isnan(r.loc[WEE, "effective_robustness"])                  # a subset: empty
    assert r.loc[BETWIXT, "top1_1000way"] == pytest.approx(48.5) and math.isnan(r.loc[WEE, "top1_1000way"])
    assert "top1_1000way" in read("results-imagenet-a") and "top1_1000way" not in read(
        "results-imagenetv2-matched-frequency")

    v2 = read("results-imagenetv2-matched-frequency")
    assert v2.columns[list(v2.columns).index("rank_diff") + 1] == "effective_robustness"
    assert math.isnan(v2.loc[SMALL, "effective_robustness"])                # no ImageNet-val record: empty
    assert not math.isnan(v2.loc[MEDIUMD, "effective_robustness"])
    real = read("results-imagenet-real")                                     # ReaL relabels IN-val: no ER
    assert "effective_robustness" not in real and "ece" in real


# ---------------------------------------------------------------------------- cards and comparison

def forty_images(right_from: int, probs_of=lambda i: 0.9):
    """40 images, two of each class 0..19; right when the class is >= `right_from`."""
    rows, probs = [], []
    for n in range(1, 41):
        cls = (n - 1) % 20
        top1 = cls if cls >= right_from else (cls + 1) % 20
        rows.append((n, cls, [top1, 900, 901, 902, (cls + 2) % 20]))
        p = probs_of(n)
        probs.append([p] + [(1 - p) / 4] * 4)
    return frame(rows, probs)


def rendered_with_data(results: Path, out: Path, names: list[str]) -> None:
    attach(results, "imagenet", BETWIXT, forty_images(4, lambda n: 0.5 + n / 100), ece=0.0321)
    attach(results, "imagenet", BETWIXT, forty_images(6), setting="amp_bf16+compile", precision="amp_bf16",
           compile=True, ece=None)
    render_reports(results, out, checkpoints=names)


def test_card_sections_with_data(results, tmp_path):
    out = tmp_path / "out"
    rendered_with_data(results, out, [BETWIXT, DEIT, WEE])
    text = (out / "cards" / f"{BETWIXT}.md").read_text(encoding="utf-8")
    analyses = text[text.index("## Analyses"):text.index("## Citation")]
    # agreement: classes 4 and 5 (4 images) go wrong under amp_bf16+compile, nothing comes right
    assert "| dataset | reference | setting | images | Δ top-1 | 95% CI | flips | flip rate (%) | McNemar p |" in analyses
    assert "| ImageNet-1k val | fp32 | amp_bf16+compile | 40 | -10.000 |" in analyses
    assert "| 4 | 10.000 | 0.125 | 0.9800 |" in analyses       # exact p = 2 / 2**4; 4 images share 4 of 5
    # calibration: the record's ECE, the diagram drawn from the predictions
    assert ("- **ECE:** 3.21% (ImageNet-1k val, fp32; 15 equal-width bins of the top-1 confidence, L1)"
            in analyses)
    diagram = out / "plots" / "reliability" / f"{BETWIXT}.png"
    assert f"![Reliability diagram](../plots/reliability/{BETWIXT}.png)" in analyses and diagram.is_file()
    # worst classes: 0..3 never right (2 images each), then the right ones
    assert "The 10 classes with the lowest top-1 (fp32):" in analyses
    assert "| class | wnid | top-1 (%) | right of images |" in analyses
    assert "| tench | n01440764 | 0.0 | 0 of 2 |" in analyses
    assert analyses.count(" | 0.0 | 0 of 2 |") == 4 and analyses.count(" | 100.0 | 2 of 2 |") == 6
    # effective robustness: measured and published rows, the shared plot
    assert "| ImageNet-Sketch | measured | fp32 | 83.918 | 39.093 |" in analyses
    assert "| ImageNet-Sketch | published |  | 83.906 | 39.081 |" in analyses
    assert "![Effective robustness](../plots/effective_robustness.png)" in analyses
    assert (out / "plots" / "effective_robustness.png").is_file()

    cmp = (out / "comparison.md").read_text(encoding="utf-8")
    assert "## Agreement across precisions" in cmp and "## Effective robustness" in cmp
    assert f"| {BETWIXT} | IN-1k | fp32 | amp_bf16+compile | 40 | -10.000 |" in cmp
    assert f"| {WEE} | IN-1k | fp32 | amp_bf16 | no predictions file |" in cmp
    agreement = cmp[cmp.index("## Agreement across precisions"):cmp.index("## Effective robustness")]
    assert agreement.index(f"| {BETWIXT} |") < agreement.index(f"| {WEE} |")      # largest flip rate first
    assert "- [Effective robustness (measured and timm's published) against timm's cloud]" \
           "(plots/effective_robustness.png)" in cmp
    html = (out / "index.html").read_text(encoding="utf-8")
    assert 'id="agreement"' in html and 'id="effective-robustness"' in html
    assert 'href="#effective-robustness"' in html
    er = html[html.index('id="effective-robustness-table"'):]
    er = er[:er.index("</table>")]
    assert '<th scope="col" data-type="num" title="points above the baseline"><button type="button">ER Sketch' in er
    cells = re.findall(r'<td(?: data-sort="([^"]*)")? class="num">([^<]*)</td>', er)
    assert len(cells) > 20 and all(float(v) == pytest.approx(float(t), abs=0.005) for v, t in cells if t)
    page = (out / "cards" / f"{BETWIXT}.html").read_text(encoding="utf-8")
    assert f'src="../plots/reliability/{BETWIXT}.png"' in page and 'src="../plots/effective_robustness.png"' in page


def test_card_sections_say_not_measured(results, tmp_path):
    out = tmp_path / "out"
    render_reports(results, out, checkpoints=[DEIT, BETWIXT])
    text = (out / "cards" / f"{DEIT}.md").read_text(encoding="utf-8")
    analyses = text[text.index("## Analyses"):text.index("## Citation")]
    assert (f"not measured: every record is at fp32; `vitbench run {DEIT} --precision amp_bf16` (or `--compile`) "
            "adds a setting to compare.") in analyses
    assert ("- **ECE:** not measured (the fp32 ImageNet-1k val record has neither an ECE nor probabilities beside "
            f"it; `vitbench run {DEIT} --datasets imagenet --force` remeasures it)") in analyses
    assert "not measured (no predictions file beside the record)." in analyses
    assert f"Measured: not measured (complete ImageNet-1k val and shift-set records; `vitbench run {DEIT}`" in analyses
    assert "| ImageNetV2 matched-frequency | published |  | 72.190 |" in analyses
    assert "Reliability diagram" not in analyses and not (out / "plots" / "reliability").exists()

    empty = tmp_path / "empty"
    render_reports(tmp_path / "no_results", empty, checkpoints=[BETWIXT])
    text = (empty / "cards" / f"{BETWIXT}.md").read_text(encoding="utf-8")
    assert (f"not measured: no records; `vitbench run {BETWIXT}` and `vitbench run {BETWIXT} --precision amp_bf16` "
            "give two settings to compare.") in text
    assert f"- **ECE:** not measured (no ImageNet-1k val record; `vitbench run {BETWIXT} --datasets imagenet`" in text
    assert "not measured (no ImageNet-1k val record)." in text
    assert "effective_robustness.png" not in text and not (empty / "plots").exists()   # nothing measured: no plots
    cmp = (empty / "comparison.md").read_text(encoding="utf-8")
    assert "## Agreement across precisions" not in cmp and "## Effective robustness" in cmp    # published rows


def test_new_plots_are_deterministic(tmp_path):
    for run in ("a", "b"):
        results = tmp_path / f"results_{run}"
        shutil.copytree(RECORDS / "records", results / "records")
        rendered_with_data(results, tmp_path / run, [BETWIXT])
    for rel in ("plots/effective_robustness.png", f"plots/reliability/{BETWIXT}.png", "plots/top1_vs_gmacs.png",
                "plots/top1_vs_throughput_cuda_amp_bf16.png"):
        data = (tmp_path / "a" / rel).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data == (tmp_path / "b" / rel).read_bytes(), rel
        assert b"Software" not in data[:2000]


# ---------------------------------------------------------------------------- timm's field behind the plots

def test_field_clouds():
    gmacs, params = field_cloud("gmacs"), field_cloud("params")
    assert len(gmacs.x) == len(gmacs.y) > 1500                  # timm's rows with a benchmark row
    assert len(params.x) > 1500 and min(params.x) > 0
    cuda, cpu = field_cloud("throughput", "cuda"), field_cloud("throughput", "cpu")
    assert "5090" in cuda.label and "other hardware" in cuda.label and len(cuda.x) > 1500
    assert "cpu" in cpu.label and 50 < len(cpu.x) < 500         # timm's CPU file: the registered ones
    # a row of the cloud: deit_tiny_patch16_224.fb_in1k at 1.26 GMACs (timm's benchmark), 72.19 % (its results)
    assert (1.26, 72.19) in set(zip(gmacs.x, (round(y, 2) for y in gmacs.y), strict=True))


def test_cloud_fits_the_view_to_the_checkpoints():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    Cloud((0.1, 5.0, 10.0, 2000.0), (40.0, 80.0, 81.0, 89.0), "timm ({n} in view)").draw(
        ax, [(4.0, 79.0), (12.0, 83.0)], logx=True)
    x0, x1 = ax.get_xlim()
    assert x0 == pytest.approx(4.0 / 10 ** 0.3) and x1 == pytest.approx(12.0 * 10 ** 0.3)
    assert ax.get_ylim() == (pytest.approx(77.0), pytest.approx(85.0))        # at least 2 points of padding
    assert ax.collections[0].get_label() == "timm (2 in view)"
    plt.close(fig)


# ---------------------------------------------------------------------------- end to end

def test_cpu_bf16_run_of_the_dummy_gives_a_compare_report(dummy, tmp_path, capsys, monkeypatch):
    """The colour dummy run at fp32 and at bf16 on the CPU (10 images, the last one's colour is of
    another class): `vitbench compare` pairs the two records, and the card shows them agree."""
    from support import CKPT, TEN, cli_run, make_wnid_folders

    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert cli_run(tmp_path, "--datasets", "imagenet", "--precision", "bf16") == 0
    capsys.readouterr()
    argv = ["--results-dir", str(tmp_path / "results")]
    assert cli.main(["compare", f"{CKPT}@fp32", f"{CKPT}@bf16", "--json", *argv]) == 0
    got = json.loads(capsys.readouterr().out)
    assert (got["n"], got["top1_a"], got["top1_b"], got["flips"], got["mcnemar_p"]) == (10, 90.0, 90.0, 0, 1.0)
    assert got["diff"] == 0.0 and got["top5_overlap"] > 0.5
    monkeypatch.undo()                       # the card's usage shapes build the real architecture
    render_reports(tmp_path / "results", tmp_path / "reports", checkpoints=[CKPT])
    text = (tmp_path / "reports" / "cards" / f"{CKPT}.md").read_text(encoding="utf-8")
    assert "| ImageNet-1k val | fp32 | bf16 | 10 | +0.000 |" in text and "| 0 | 0.000 | 1 |" in text
    assert "- **ECE:** " in text and "- **ECE:** not measured" not in text
    assert f"![Reliability diagram](../plots/reliability/{CKPT}.png)" in text
    worst = text[text.index("| class | wnid |"):]
    assert worst.splitlines()[2] == "| ostrich | n01518878 | 0.0 | 0 of 1 |"       # image 10 (class 9) is wrong


def test_zoo_sized_scatter_numbers_only_the_pareto_front(tmp_path, monkeypatch):
    """Past MAX_KEYED points (the zoo: 179) a key of every name would not fit beside the axes: the
    Pareto front is numbered, the key says so, and timm's cloud still goes behind."""
    from vitbench.report import plots

    seen = []
    number = plots._number
    monkeypatch.setattr(plots, "_number", lambda fig, ax, pts, total: seen.append((pts, total)) or number(
        fig, ax, pts, total))
    pts = [plots.Point(f"model_{i:03d}", 1.0 + i, 60 + 0.1 * i - 0.002 * i * i) for i in range(plots.MAX_KEYED + 10)]
    front = plots.pareto_front(pts, maximize_x=False)
    plots.scatter(tmp_path / "zoo.png", pts, title="t", xlabel="x", ylabel="y", front=front, logx=True,
                  cloud=field_cloud("gmacs"))
    assert [({p.label for p in shown}, total) for shown, total in seen] == [(front, len(pts))]
    assert 0 < len(front) < len(pts)
    few = plots.scatter(tmp_path / "few.png", pts[:20], title="t", xlabel="x", ylabel="y", front=front)
    assert few.is_file() and seen[1][1] == 20 and len(seen[1][0]) == 20          # every point numbered
