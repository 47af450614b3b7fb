"""The eval loop and its scoring, with a dummy model whose predictions are known in advance.

ColourModel predicts a class from the mean colour of the image: each class gets its own colour
(`class_colour`), so a solid image of class c's colour is predicted as c. The other test files
import it from here.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from support import DUMMY_CONFIG, ColourModel, make_loader, solid_batch
from vitbench.eval import evaluate
from vitbench.eval.engine import Member, Pass, PassSettings
from vitbench.eval.predictions import read_predictions, write_predictions
from vitbench.eval.scoring import EvalResult, EvalSpec, Predictions, Scorer, restrict_logits, score_real
from vitbench.significance import wilson_interval

SPEC = EvalSpec(mean=DUMMY_CONFIG.mean, std=DUMMY_CONFIG.std)


# ---------------------------------------------------------------------------- ReaL

def test_score_real_crafted_sets():
    top5 = np.array([
        [1, 2, 3, 4, 5],     # labels {1}: top1 + top5
        [9, 2, 3, 4, 5],     # labels {5, 7}: top5 only (5 is 5th)
        [9, 8, 7, 6, 0],     # labels {}: not scored, whatever it predicts
        [3, 1, 2, 4, 6],     # labels {3, 100}: top1 + top5 (any of the set counts)
        [10, 11, 12, 13, 14],  # labels {15}: neither
    ])
    sets = [(1,), (5, 7), (), (3, 100), (15,)]
    s = score_real(top5, sets)
    assert s.n_scored == 4
    assert (s.top1_correct, s.top5_correct) == (2, 3)
    assert s.top1 == pytest.approx(50.0) and s.top5 == pytest.approx(75.0)


def test_score_real_all_empty_is_nan_not_zero():
    s = score_real(np.zeros((2, 5), int), [(), ()])
    assert s.n_scored == 0 and math.isnan(s.top1)


def test_score_real_length_mismatch():
    with pytest.raises(ValueError, match="label sets"):
        score_real(np.zeros((2, 5), int), [(1,)])


def test_real_through_evaluate_uses_label_sets_by_dataset_index():
    # images of classes 0..5; dataset index i has label set sets[i]; an empty set is not scored
    classes = [0, 1, 2, 3, 4, 5]
    sets = ((0,), (7,), (), (3, 9), (), (5,))
    spec = EvalSpec(mean=DUMMY_CONFIG.mean, std=DUMMY_CONFIG.std, label_sets=sets)
    r = evaluate(ColourModel(classes=range(10)), make_loader(classes), spec)
    assert r.n == 6 and r.n_scored == 4
    assert r.top1 == pytest.approx(75.0)      # index 1 (class 1, set {7}) is wrong


# ---------------------------------------------------------------------------- A/R subset

def test_restrict_logits_keeps_only_subset_columns():
    logits = torch.tensor([[0.0, 9.0, 1.0, 2.0]])
    out = restrict_logits(logits, torch.tensor([0, 2, 3]))
    assert out.tolist() == [[0.0, 1.0, 2.0]]


def test_subset_masking_a_boosted_class_outside_the_subset_cannot_win():
    subset = (1, 5, 9, 13, 17)
    # class 2 (outside the subset) gets +1000: unrestricted it would win every image
    model = ColourModel(classes=range(20), boost=(2,))
    loader = make_loader([1, 5, 9, 13, 17, 5])
    unrestricted = evaluate(model, loader, SPEC)
    assert unrestricted.top1 == 0.0
    spec = EvalSpec(mean=DUMMY_CONFIG.mean, std=DUMMY_CONFIG.std, subset=subset)
    # with a subset the loader's targets are positions in it (vitbench.data.datasets' convention)
    r = evaluate(model, make_loader([1, 5, 9, 13, 17, 5], targets=[0, 1, 2, 3, 4, 1]), spec)
    assert r.top1 == 100.0 and r.top5 == 100.0
    # predictions are reported in ImageNet-1k indices, all inside the subset
    assert set(r.predictions.top5_idx.ravel().tolist()) <= set(subset)
    assert r.predictions.top5_idx[:, 0].tolist() == [1, 5, 9, 13, 17, 5]
    assert r.predictions.target.tolist() == [1, 5, 9, 13, 17, 5]
    np.testing.assert_allclose(r.predictions.top5_prob.sum(1), 1.0, atol=1e-5)   # softmax over 5


def test_subset_target_outside_subset_is_an_error():
    spec = EvalSpec(mean=DUMMY_CONFIG.mean, std=DUMMY_CONFIG.std, subset=(1, 5, 9, 13, 17))
    with pytest.raises(ValueError, match="outside"):
        evaluate(ColourModel(), make_loader([1, 2], targets=[0, 5]), spec)


# ---------------------------------------------------------------------------- the loop

def test_evaluate_counts_top1_top5_and_intervals():
    # 8 images; targets of the last two are wrong on purpose but within the top 5 for one of them
    classes = [0, 1, 2, 3, 4, 5, 6, 7]
    targets = [0, 1, 2, 3, 4, 5, 6, 150]
    # only classes 0..7 and 150 are possible; class 150 is far in colour from 7, but with 9 live
    # classes it is in the top 5 of image 7 only if its colour is close: check from the predictions
    r = evaluate(ColourModel(classes=list(range(8)) + [150]), make_loader(classes, targets, batch=3), SPEC)
    assert r.n == r.n_scored == 8
    assert r.top1 == pytest.approx(100 * 7 / 8)
    in_top5 = 150 in r.predictions.top5_idx[7].tolist()
    assert r.top5 == pytest.approx(100 * (7 + in_top5) / 8)
    assert r.top1_ci == pytest.approx(wilson_interval(7, 8))
    assert r.predictions.index.tolist() == list(range(8))
    assert r.predictions.top5_idx.shape == (8, 5) and r.predictions.top5_prob.dtype == np.float32
    assert r.images_per_sec > 0 and r.wall_time_s > 0


def test_evaluate_keeps_skipped_files():
    r = evaluate(ColourModel(), make_loader([0, 1], skipped=["bad.JPEG"]), SPEC)
    assert r.skipped_files == ("bad.JPEG",) and r.n == 2


@pytest.mark.parametrize("precision", ["fp32", "bf16", "amp_bf16", "amp_fp16"])
def test_precisions_on_cpu(precision):
    classes = [0, 7, 14, 21, 28, 35]
    r = evaluate(ColourModel(classes=range(40)), make_loader(classes), SPEC, precision=precision)
    assert r.top1 == 100.0


def test_bf16_runs_the_model_in_bf16():
    seen = []

    class Probe(ColourModel):
        def forward(self, x):
            seen.append((x.dtype, self.palette.dtype))
            return super().forward(x)

    evaluate(Probe(), make_loader([0, 1]), SPEC, precision="bf16")
    assert seen == [(torch.bfloat16, torch.bfloat16)]


def test_unknown_precision():
    with pytest.raises(ValueError, match="precision"):
        evaluate(ColourModel(), make_loader([0]), SPEC, precision="fp8")


def test_metrics_are_torchmetrics_accumulators():
    """The pass (the one eval loop; `evaluate` is a one-member pass) scores through torchmetrics."""
    out = Member("model", Scorer(SPEC, "cpu"), "colour")
    (r,) = Pass({"model": ColourModel(classes=range(10))}, [out], PassSettings()).run(make_loader([0, 1, 2, 3, 4]), 5)
    from torchmetrics.classification import MulticlassAccuracy

    assert isinstance(out.scorer.top1_metric, MulticlassAccuracy)
    assert isinstance(out.scorer.top5_metric, MulticlassAccuracy)
    assert float(out.scorer.top1_metric.compute()) == 1.0
    assert r.result.top1 == 100.0


# ---------------------------------------------------------------------------- predictions parquet

def test_predictions_parquet_roundtrip(tmp_path):
    sets = ((0,), (), (2, 3))
    spec = EvalSpec(mean=DUMMY_CONFIG.mean, std=DUMMY_CONFIG.std, label_sets=sets)
    r = evaluate(ColourModel(classes=range(10)), make_loader([0, 1, 2]), spec)
    files = ["a.JPEG", "b.JPEG", "c.JPEG"]
    path = write_predictions(tmp_path / "x" / "ck__fp32.parquet", r, files=files, label_sets=sets)
    assert [p.name for p in path.parent.iterdir()] == ["ck__fp32.parquet"]     # no temp file left
    df = read_predictions(path)
    assert list(df.columns) == ["index", "file", "target", "top5_idx", "top5_prob", "real_labels"]
    assert df["file"].tolist() == files and df["target"].tolist() == [0, 1, 2]
    assert [list(x) for x in df["real_labels"]] == [[0], [], [2, 3]]
    # ReaL recomputed from the file alone gives the record's number
    again = score_real(np.stack(df["top5_idx"].to_numpy()), [tuple(x) for x in df["real_labels"]])
    assert again.top1 == pytest.approx(r.top1) and again.n_scored == r.n_scored == 2


def test_predictions_without_files_or_real(tmp_path):
    r = evaluate(ColourModel(classes=range(10)), make_loader([3, 4]), SPEC)
    df = read_predictions(write_predictions(tmp_path / "p.parquet", r))
    assert "real_labels" not in df.columns and df["file"].isna().all()
    assert [int(x[0]) for x in df["top5_idx"]] == [3, 4]


def test_eval_result_is_frozen():
    r = evaluate(ColourModel(), make_loader([0]), SPEC)
    assert isinstance(r, EvalResult) and isinstance(r.predictions, Predictions)
    from dataclasses import FrozenInstanceError

    with pytest.raises(FrozenInstanceError):
        r.top1 = 0.0


# ---------------------------------------------------------------------------- loader and shards

def test_shards_cover_the_dataset_exactly_once():
    from vitbench.eval.loader import ShardSampler

    shards = [list(ShardSampler(10, r, 3)) for r in range(3)]
    assert sorted(sum(shards, [])) == list(range(10)) and [len(s) for s in shards] == [4, 3, 3]
    with pytest.raises(ValueError):
        ShardSampler(10, 3, 3)


def test_build_loader_batches_in_collate_eval_form():
    from vitbench.eval.loader import build_loader

    items = [(solid_batch([c])[0], c, i) for i, c in enumerate([4, 5, 6, 7, 8])]
    loader = build_loader(items, batch_size=2, workers=0, device="cpu", shard=(1, 2))
    batches = list(loader)
    assert not loader.pin_memory
    assert [b[2].tolist() for b in batches] == [[1, 3]]
    r = evaluate(ColourModel(classes=range(10)), build_loader(items, batch_size=2), SPEC)
    assert r.top1 == 100.0 and r.predictions.index.tolist() == [0, 1, 2, 3, 4]
