"""vitbench.analysis: agreement of two prediction sets, effective robustness, calibration, per-class
accuracy, 1000-way scoring and the plots, each against an independent computation."""
from __future__ import annotations

import json
import math
import struct
from importlib import resources

import numpy as np
import pandas as pd
import pytest
import torch

from vitbench.analysis import (
    compare_predictions,
    ece,
    effective_robustness,
    fit_baseline,
    in1k_only,
    per_class_accuracy,
    published_baseline,
    reliability,
    reliability_diagram,
    robustness_table,
    top1_1000way,
    worst_classes,
)
from vitbench.analysis.plots import RobustnessPoint, published_points, robustness_plot
from vitbench.analysis.robustness import logit
from vitbench.catalog import er_baseline_models
from vitbench.data.specs import published_cloud
from vitbench.significance import binomial_two_sided_p, mcnemar, paired_difference_interval


def frame(rows, root="/data/imagenet/val"):
    """A prediction frame as vitbench writes it. rows: (file name or None, target, top5 list)."""
    return pd.DataFrame({
        "index": list(range(len(rows))),
        "file": [f"{root}/{f}" if f is not None else None for f, _, _ in rows],
        "target": [t for _, t, _ in rows],
        "top5_idx": [list(t5) for _, _, t5 in rows],
        "top5_prob": [[0.5, 0.2, 0.1, 0.1, 0.1] for _ in rows],
    })


def val(i: int) -> str:
    return f"ILSVRC2012_val_{i:08d}.JPEG"


# ---------------------------------------------------------------------------- agreement

# 8 images; target of image i is i. A and B's top-5 are chosen so every count is known by hand:
#   image  A top-1  B top-1  A right  B right  flip  |top5 A ∩ top5 B|
#   1      1        1        yes      yes      no    5
#   2      2        2        yes      yes      no    3
#   3      3        9        yes      no       yes   5   (B has 3 second)
#   4      9        4        no       yes      yes   4
#   5      8        5        no       yes      yes   2
#   6      7        6        no       yes      yes   0
#   7      9        9        no       no       no    5
#   8      9        10       no       no       yes   1
A_ROWS = [(1, [1, 20, 21, 22, 23]), (2, [2, 30, 31, 32, 33]), (3, [3, 9, 40, 41, 42]),
          (4, [9, 4, 50, 51, 52]), (5, [8, 60, 61, 62, 63]), (6, [7, 70, 71, 72, 73]),
          (7, [9, 80, 81, 82, 83]), (8, [9, 90, 91, 92, 93])]
B_ROWS = [(1, [23, 22, 21, 20, 1][::-1]), (2, [2, 30, 31, 100, 101]), (3, [9, 3, 40, 41, 42]),
          (4, [4, 9, 50, 51, 200]), (5, [5, 8, 60, 300, 301]), (6, [6, 400, 401, 402, 403]),
          (7, [9, 80, 81, 82, 83]), (8, [10, 9, 500, 501, 502])]


def test_agreement_counts_by_hand():
    a = frame([(val(i), i, t5) for i, t5 in A_ROWS])
    b = frame([(val(i), i, t5) for i, t5 in B_ROWS])
    r = compare_predictions(a, b)
    assert r.n == 8
    assert r.top1_a == pytest.approx(100 * 3 / 8) and r.top1_b == pytest.approx(100 * 5 / 8)
    assert r.diff == pytest.approx(25.0)
    assert r.flips == 5 and r.flip_rate == pytest.approx(100 * 5 / 8)
    # discordant: only A right = 1 (image 3), only B right = 3 (images 4, 5, 6):
    # exact two-sided p = 2 * (C(4,0) + C(4,1)) / 2**4 = 10/16
    assert r.mcnemar_p == pytest.approx(10 / 16)
    assert r.top5_overlap == pytest.approx((5 + 3 + 5 + 4 + 2 + 0 + 5 + 1) / 8 / 5)
    assert r.diff_lo < r.diff < r.diff_hi
    assert (r.diff_lo, r.diff_hi) == pytest.approx(paired_difference_interval(2, 3, 1, 2))
    d = r.to_dict()
    assert list(d) == ["n", "top1_a", "top1_b", "diff", "diff_lo", "diff_hi", "flips", "flip_rate",
                       "mcnemar_p", "top5_overlap"]
    assert type(d["n"]) is int and type(d["flips"]) is int and type(d["mcnemar_p"]) is float
    assert json.loads(json.dumps(d)) == d
    # the same frames the other way round: the difference and its interval turn over
    rev = compare_predictions(b, a)
    assert rev.diff == pytest.approx(-r.diff)
    assert (rev.diff_lo, rev.diff_hi) == pytest.approx((-r.diff_hi, -r.diff_lo))
    assert (rev.flips, rev.mcnemar_p, rev.top5_overlap) == (r.flips, r.mcnemar_p, r.top5_overlap)


def test_agreement_pairs_by_file_name_across_roots_orders_and_subsets():
    a = frame([(val(i), i, t5) for i, t5 in A_ROWS], root="/mnt/a/imagenet")
    # B: another data root, reversed order, and image 8 missing, an extra image 9 only B scored
    b = frame([(val(i), i, t5) for i, t5 in B_ROWS[:7][::-1]] + [(val(9), 9, [9, 1, 2, 3, 4])],
              root="/home/x/val")
    r = compare_predictions(a, b)
    assert r.n == 7                                   # images 1..7
    assert r.flips == 4                               # image 8 (a flip) is not paired
    assert r.top1_a == pytest.approx(100 * 3 / 7) and r.top1_b == pytest.approx(100 * 5 / 7)


def test_agreement_falls_back_to_index_and_disambiguates_repeated_names():
    rows_a = [(f"n{c:08d}/art_0.jpg", c, [c, 1, 2, 3, 4]) for c in (10, 11, 12)]
    rows_b = [(f"n{c:08d}/art_0.jpg", c, [c if c != 11 else 0, 1, 2, 3, 4]) for c in (12, 11, 10)]
    # ImageNet-R style: every class folder has an art_0.jpg; pairing uses class folder + name
    r = compare_predictions(frame(rows_a, root="/r"), frame(rows_b, root="/other/r"))
    assert r.n == 3 and r.flips == 1 and r.top1_b == pytest.approx(100 * 2 / 3)
    # a file missing: the item index pairs the images (B in the same order here)
    fb = frame(rows_b[::-1], root="/other/r")
    fb.loc[1, "file"] = None
    r = compare_predictions(frame(rows_a), fb)
    assert r.n == 3 and r.flips == 1


def test_agreement_refuses_different_labels():
    a = frame([(val(1), 1, [1, 2, 3, 4, 5])])
    b = frame([(val(1), 7, [1, 2, 3, 4, 5])])
    with pytest.raises(ValueError, match="different targets"):
        compare_predictions(a, b)
    with pytest.raises(ValueError, match="share no image"):
        compare_predictions(a, frame([(val(2), 1, [1, 2, 3, 4, 5])]))


def test_exact_mcnemar_against_scipy():
    scipy_stats = pytest.importorskip("scipy.stats")
    for k, n in [(0, 1), (3, 10), (20, 49), (700, 1500), (2400, 5000), (5, 5000)]:
        assert binomial_two_sided_p(k, n) == pytest.approx(scipy_stats.binomtest(k, n).pvalue, rel=1e-9, abs=1e-300)
    a = [True] * 700 + [False] * 800 + [True] * 100
    b = [False] * 700 + [True] * 800 + [True] * 100
    assert mcnemar(a, b, exact=True) == (700, 800, pytest.approx(scipy_stats.binomtest(700, 1500).pvalue))
    assert mcnemar(a, b)[2] != mcnemar(a, b, exact=True)[2]            # default above 50: chi-square


def test_paired_interval_published_example_and_wald_limit():
    # Fagerland, Lydersen & Laake, Statistical Analysis of Contingency Tables (2017), ch. 8, as their R
    # package contingencytables tests it (Newcombe_square_and_add_CI_paired_2x2): complete
    # response before/after consolidation therapy (Cavo et al. 2012), table [[59, 6], [16, 80]]:
    # Newcombe square-and-add estimate -0.0621, 95% CI -0.1186 to -0.0046. Rows = B, columns = A.
    lo, hi = paired_difference_interval(both=59, only_b=6, only_a=16, neither=80)
    assert round(lo / 100, 4) == -0.1186 and round(hi / 100, 4) == -0.0046
    # at ImageNet size the interval is the Wald one: d ± z sqrt((b + c) - (b - c)²/n) / n
    both, only_b, only_a, neither = 38000, 1400, 1100, 9500
    n = both + only_b + only_a + neither
    d = (only_b - only_a) / n
    half = 1.959963984540054 * math.sqrt((only_b + only_a) - (only_b - only_a) ** 2 / n) / n
    lo, hi = paired_difference_interval(both, only_b, only_a, neither)
    assert lo == pytest.approx(100 * (d - half), abs=0.01) and hi == pytest.approx(100 * (d + half), abs=0.01)
    assert paired_difference_interval(0, 0, 0, 0) == (-100.0, 100.0)
    # both always right on 10 images: d = 0, the interval as wide as the Wilson interval of 10/10
    assert paired_difference_interval(10, 0, 0, 0) == pytest.approx((-27.753280, 27.753280), abs=1e-5)


# ---------------------------------------------------------------------------- effective robustness

def test_baseline_rule_gives_er_baseline_list():
    imagenet = published_cloud("imagenet")
    assert len(imagenet) == 1556
    rows = imagenet[imagenet["model"].map(in1k_only)]
    assert len(rows) == 1195
    assert sorted(set(rows["model"])) == sorted(er_baseline_models())
    assert len(er_baseline_models()) == 962
    assert in1k_only("deit_base_patch16_224.fb_in1k") and in1k_only("caformer_b36.sail_in1k_384")
    assert in1k_only("cait_s24_224.fb_dist_in1k")
    for name in ("vit_base_patch16_224.augreg2_in21k_ft_in1k", "beitv2_base_patch16_224.in1k_ft_in1k",
                 "resnet50.fb_swsl_ig1b_ft_in1k", "resnet50.fb_ssl_yfcc100m_ft_in1k", "vit_base_patch16_224",
                 "convnext_base.clip_laion2b_augreg_ft_in1k", "vit_small_patch16_224.dino"):
        assert not in1k_only(name), name


def test_packaged_copy_is_the_reference():
    root = resources.files("vitbench.catalog").joinpath("published_all")
    names = sorted(p.name for p in root.iterdir())
    for stem in ("results-imagenet", "results-imagenetv2-matched-frequency", "results-sketch",
                 "results-imagenet-r", "results-imagenet-a"):
        assert f"{stem}.csv" in names
    assert "er_baseline.txt" in names
    for shift in ("v2", "sketch", "r", "a"):
        assert len(published_cloud(shift)) == 1556


def test_effective_robustness_of_a_published_row_by_hand():
    imagenet, sketch = published_cloud("imagenet"), published_cloud("sketch")
    # the independent fit: models from er_baseline.txt (not the code's rule), rows matched on
    # (model, img_size), top-1 fractions clipped to [1e-4, 1 - 1e-4], numpy.polyfit in logit space
    keep = set(er_baseline_models())
    m = imagenet.merge(sketch, on=["model", "img_size"], suffixes=("_in", "_sk"))
    m = m[m["model"].isin(keep)]
    lg = lambda p: np.log(np.clip(p / 100, 1e-4, 1 - 1e-4) / (1 - np.clip(p / 100, 1e-4, 1 - 1e-4)))  # noqa: E731
    a, b = np.polyfit(lg(m["top1_in"].to_numpy()), lg(m["top1_sk"].to_numpy()), 1)
    base = fit_baseline(imagenet, sketch)
    assert base.n_rows == len(m) == 1195
    assert base.a == pytest.approx(a, abs=1e-9) and base.b == pytest.approx(b, abs=1e-9)
    assert base == published_baseline("sketch")

    # timm's published row: vit_base_patch16_224.augreg2_in21k_ft_in1k at 224
    # ImageNet-1k top-1 85.108 %, ImageNet-Sketch top-1 45.106 %
    name = "vit_base_patch16_224.augreg2_in21k_ft_in1k"
    assert float(imagenet.set_index(["model", "img_size"]).loc[(name, 224), "top1"]) == 85.108
    assert float(sketch.set_index(["model", "img_size"]).loc[(name, 224), "top1"]) == 45.106
    x = math.log(0.85108 / (1 - 0.85108))            # logit of the ImageNet top-1
    z = a * x + b                                    # the baseline's logit of the Sketch top-1
    expected_sketch = 100 / (1 + math.exp(-z))       # back to percent
    er = 45.106 - expected_sketch
    assert base.predict(85.108) == pytest.approx(expected_sketch, abs=1e-9)
    assert effective_robustness(85.108, 45.106, base) == pytest.approx(er, abs=1e-9)
    assert er == pytest.approx(6.39, abs=0.01)        # 45.11 % measured vs 38.72 % expected
    table = robustness_table(imagenet, sketch, base).set_index(["model", "img_size"])
    assert table.loc[(name, 224), "effective_robustness"] == pytest.approx(er, abs=1e-9)
    assert not table.loc[(name, 224), "in1k_only"]
    # arrays in, arrays out
    got = effective_robustness(np.array([85.108, 80.0]), np.array([45.106, 30.0]), base)
    assert got.shape == (2,) and got[0] == pytest.approx(er)


def test_baselines_of_every_shift_set():
    imagenet = published_cloud("imagenet")
    for shift in ("v2", "sketch", "r", "a"):
        base = published_baseline(shift)
        rows = imagenet.merge(published_cloud(shift), on=["model", "img_size"])
        assert base.n_rows == int(rows["model"].map(in1k_only).sum())
        assert base.a > 0
        # least squares with an intercept: the fit rows' logit residuals sum to 0 and are orthogonal to x
        t = robustness_table(imagenet, published_cloud(shift), base)
        fit = t[t["in1k_only"]]
        x, y = logit(fit["top1_imagenet"]), logit(fit["top1_shift"])
        resid = y - (base.a * x + base.b)
        assert abs(resid.mean()) < 1e-9 and abs((resid * x).mean()) < 1e-9
    assert published_baseline("a").n_rows == 1194          # timm's A CSV lacks resnet50.tv_in1k
    with pytest.raises(KeyError, match="Available"):
        published_baseline("real")


# ---------------------------------------------------------------------------- calibration

def test_ece_equals_torchmetrics_multiclass():
    from torchmetrics.functional.classification import binary_calibration_error, multiclass_calibration_error

    g = torch.Generator().manual_seed(0)
    for n, c, temp in [(4000, 10, 1.0), (3000, 100, 0.3), (2000, 1000, 3.0)]:
        target = torch.randint(0, c, (n,), generator=g)
        logits = torch.randn(n, c, generator=g) * temp * 3
        logits[torch.arange(n), target] += torch.rand(n, generator=g) * 8 * temp
        logits[: n // 20, 0] += 60                                # some confidences of exactly 1.0 in float32
        prob = logits.softmax(dim=1)                              # float32, like the stored top5_prob
        want = float(multiclass_calibration_error(prob, target, num_classes=c, n_bins=15, norm="l1"))
        conf, pred = prob.max(dim=1)
        assert (conf == 1.0).any()
        correct = (pred == target).numpy()
        assert ece(conf.numpy(), correct) == pytest.approx(want, abs=2e-6)
        assert float(binary_calibration_error(conf, pred == target, n_bins=15)) == pytest.approx(want, abs=2e-6)


def test_ece_bin_edges_follow_torchmetrics():
    from torchmetrics.functional.classification import binary_calibration_error

    edges = torch.linspace(0, 1, 16)                              # confidences exactly on the edges
    conf = torch.cat([edges, edges[:-1] + 1e-3, torch.tensor([0.0, 1.0, 1.0])])
    correct = torch.arange(len(conf)) % 3 == 0
    want = float(binary_calibration_error(conf, correct, n_bins=15))
    assert ece(conf.numpy(), correct.numpy()) == pytest.approx(want, abs=1e-6)
    for n_bins in (1, 7, 20):
        want = float(binary_calibration_error(conf, correct, n_bins=n_bins))
        assert ece(conf.numpy(), correct.numpy(), n_bins=n_bins) == pytest.approx(want, abs=1e-6)


def test_reliability_table_by_hand():
    conf = np.array([0.05, 0.06, 0.5, 0.95, 1.0, 1.0], dtype=np.float32)
    right = np.array([1, 0, 1, 1, 1, 0], dtype=bool)
    bins = reliability(conf, right)
    assert len(bins) == 16 and int(bins["count"].sum()) == 6
    first = bins.iloc[0]
    assert first["count"] == 2 and first["accuracy"] == 0.5 and first["confidence"] == pytest.approx(0.055)
    assert bins.iloc[7]["count"] == 1                            # 0.5 is in [7/15, 8/15)
    assert bins.iloc[14]["count"] == 1 and bins.iloc[14]["accuracy"] == 1.0
    last = bins.iloc[15]                                         # confidence exactly 1.0: its own bin
    assert (last["lo"], last["hi"], last["count"], last["accuracy"]) == (1.0, 1.0, 2, 0.5)
    assert bins["count"].iloc[[1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13]].eq(0).all()
    assert bins["confidence"].iloc[1:7].isna().all()
    # ECE = (2 |0.5 - 0.055| + 1 |1 - 0.5| + 1 |1 - 0.95| + 2 |0.5 - 1|) / 6
    want = (2 * 0.445 + 0.5 + 0.05 + 2 * 0.5) / 6
    assert ece(conf, right) == pytest.approx(want, abs=1e-6)
    with pytest.raises(ValueError):
        ece([0.5, 1.5], [True, False])


# ---------------------------------------------------------------------------- per class

def test_per_class_accuracy_small_frame():
    rows = [(val(1), 0, [0, 1, 2, 3, 4]), (val(2), 0, [5, 0, 1, 2, 3]), (val(3), 0, [0, 9, 8, 7, 6]),
            (val(4), 1, [2, 3, 4, 5, 6]), (val(5), 999, [999, 0, 1, 2, 3]), (val(6), 1, [1, 0, 2, 3, 4])]
    t = per_class_accuracy(frame(rows))
    assert list(t.columns) == ["class", "wnid", "name", "images", "correct", "top1", "top5"]
    assert t["class"].tolist() == [0, 1, 999]
    assert t["wnid"].tolist() == ["n01440764", "n01443537", "n15075141"]
    assert t["name"].iloc[0] == "tench, Tinca tinca"
    assert t["images"].tolist() == [3, 2, 1] and t["correct"].tolist() == [2, 1, 1]
    assert t["top1"].tolist() == pytest.approx([200 / 3, 50.0, 100.0])
    assert t["top5"].tolist() == pytest.approx([100.0, 50.0, 100.0])
    worst = worst_classes(frame(rows), k=2)
    assert worst["class"].tolist() == [1, 0]


# ---------------------------------------------------------------------------- 1000-way scoring

def test_top1_1000way():
    from vitbench.catalog import subset_indices

    sub = torch.tensor(subset_indices("r"))                       # R's 200 classes, as 1k indices
    outside = next(i for i in range(1000) if i not in set(sub.tolist()))
    logits = torch.full((3, 1000), -5.0)
    targets = sub[[0, 1, 2]]
    logits[0, targets[0]] = 5.0                                   # right either way
    logits[1, targets[1]] = 5.0
    logits[1, outside] = 9.0                                      # right over the 200, wrong over 1000
    logits[2, sub[7]] = 5.0                                       # wrong either way
    got = top1_1000way(logits, targets)
    assert got.dtype == torch.bool and got.tolist() == [True, False, False]
    restricted = logits.index_select(1, sub).argmax(1)
    assert (sub[restricted] == targets).tolist() == [True, True, False]
    with pytest.raises(ValueError):
        top1_1000way(logits, targets[:2])


# ---------------------------------------------------------------------------- plots

def _png_text_keys(data: bytes) -> list[bytes]:
    """The keywords of a PNG's tEXt chunks."""
    keys, pos = [], 8
    while pos < len(data):
        (length,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        if kind == b"tEXt":
            keys.append(data[pos + 8:pos + 8 + length].split(b"\0")[0])
        pos += 12 + length
    return keys


REGISTERED = {  # registered checkpoints with timm's published rows, name -> family
    "deit_tiny_patch16_224.fb_in1k": "deit", "deit_base_patch16_224.fb_in1k": "deit",
    "deit3_base_patch16_224.fb_in1k": "deit3", "vit_base_patch16_224.augreg_in1k": "google",
    "vit_base_patch16_224.augreg2_in21k_ft_in1k": "google", "vit_base_patch16_clip_224.laion2b_ft_in1k": "clip",
    "vit_large_patch14_clip_224.openai_ft_in1k": "clip", "eva02_large_patch14_448.mim_m38m_ft_in22k_in1k": "eva02",
    "beitv2_base_patch16_224.in1k_ft_in1k": "beitv2", "vit_so400m_patch14_siglip_378.webli_ft_in1k": "siglip",
}


def test_robustness_plot_is_written_and_deterministic(tmp_path):
    published = pd.read_csv(resources.files("vitbench.catalog").joinpath("published/results-imagenet.csv").open())
    assert set(REGISTERED) <= set(published["model"])
    points = published_points(REGISTERED)
    assert len(points) == 4 * len(REGISTERED)
    points.append(RobustnessPoint("deit_base_patch16_224.fb_in1k", "deit", "v2", 81.5, 70.3, measured=True))
    first = robustness_plot(tmp_path / "a" / "er.png", points).read_bytes()
    second = robustness_plot(tmp_path / "b" / "er.png", points).read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and len(first) > 50_000
    assert first == second
    assert b"Software" not in _png_text_keys(first)


def test_reliability_diagram_is_written_and_deterministic(tmp_path):
    rng = np.random.default_rng(0)
    conf = rng.beta(5, 1, 5000).astype(np.float32)
    conf[:50] = 1.0
    bins = reliability(conf, rng.random(5000) < conf ** 1.5)
    first = reliability_diagram(bins, tmp_path / "a.png", title="test").read_bytes()
    second = reliability_diagram(bins, tmp_path / "b.png", title="test").read_bytes()
    assert first[:8] == b"\x89PNG\r\n\x1a\n" and first == second
    assert b"Software" not in _png_text_keys(first)
