"""Results and benchmark CSVs from the fixture records: the store's frames (columns, diffs, timm's
rank_diff convention) and report.csv's writing (only datasets with records, atomic writes)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from support import FIXTURES
from vitbench.catalog import published_results
from vitbench.data.specs import DATASETS
from vitbench.records import RecordStore
from vitbench.records.store import VITBENCH_BENCH_COLUMNS, VITBENCH_RESULT_COLUMNS, add_diffs
from vitbench.report.csv import write_benchmark_csvs, write_csvs, write_results_csvs

FIXTURE_RESULTS = FIXTURES / "records"
TIMM_RESULTS = "model,img_size,top1,top1_err,top5,top5_err,param_count,crop_pct,interpolation"
TIMM_BENCH = "model,infer_img_size,infer_samples_per_sec,infer_step_time,infer_batch_size,param_count,infer_gmacs,infer_macts"


@pytest.fixture
def results_dir(tmp_path) -> Path:
    shutil.copytree(FIXTURE_RESULTS / "records", tmp_path / "records")
    return tmp_path


def frame(results_dir: Path, dataset: str) -> pd.DataFrame:
    return RecordStore.load(results_dir).results_frame(dataset)


def test_imagenet_columns_and_order(results_dir):
    df = frame(results_dir, "imagenet")
    assert ",".join(df.columns[:9]) == TIMM_RESULTS
    assert list(df.columns[9:]) == VITBENCH_RESULT_COLUMNS
    assert list(df["top1"]) == sorted(df["top1"], reverse=True)
    # one row per (checkpoint, precision) of the 'ok' records
    assert len(df) == 8
    wee = df[df.model == "vit_wee_patch16_reg1_gap_256.sbb_in1k"]
    assert sorted(wee.precision) == ["amp_bf16", "fp32"]
    assert "vit_base_patch16_224.augreg2_in21k_ft_in1k" not in set(df.model)


def test_imagenet_values(results_dir):
    row = frame(results_dir, "imagenet").set_index("model").loc[
        "vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k"]
    assert row.top1 == pytest.approx(83.918) and row.top1_err == pytest.approx(16.082)
    assert row.param_count == pytest.approx(60.23)        # M, from the StatsRecord
    assert row.crop_pct == 0.95 and row.interpolation == "bicubic" and row.img_size == 256
    assert row.n == 50000 and bool(row.complete) and row.precision == "fp32"
    assert row.top1_ci_low < row.top1 < row.top1_ci_high
    assert row.published_top1 == pytest.approx(83.906)
    assert row.published_delta == pytest.approx(0.012)


def test_shift_set_columns_and_diffs(results_dir):
    for ds in ("real", "v2", "sketch", "r", "a"):
        df = frame(results_dir, ds)
        assert ",".join(df.columns[:12]) == TIMM_RESULTS + ",top1_diff,top5_diff,rank_diff", ds
    v2 = frame(results_dir, "v2").set_index("model")
    base = frame(results_dir, "imagenet").set_index("model")
    m = "vit_medium_patch16_rope_reg1_gap_256.sbb_in1k"
    assert v2.loc[m, "top1_diff"] == pytest.approx(v2.loc[m, "top1"] - base.loc[m, "top1"], abs=1e-3)
    # ImageNet ranks: mediumd 0, hybrid 1, betwixt 2, base 3, medium 4; v2 ranks: mediumd 0, betwixt 1, medium 2
    assert v2.loc[m, "rank_diff"] == 4 - 2
    assert v2.loc["vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k", "rank_diff"] == 2 - 1
    assert v2.loc["vit_mediumd_patch16_reg4_gap_256.sbb_in12k_ft_in1k", "rank_diff"] == 0


def test_a_and_r_diff_against_clean_baselines(results_dir):
    for ds, clean in (("a", "a-clean"), ("r", "r-clean")):
        df = frame(results_dir, ds).iloc[0]
        base = frame(results_dir, clean).iloc[0]
        assert df.top1_diff == pytest.approx(df.top1 - base.top1, abs=1e-3)


def test_add_diffs_rank_convention():
    base = pd.DataFrame({"model": ["a", "b", "c"], "precision": "fp32", "top1": [90.0, 80.0, 70.0],
                         "top5": [99.0, 98.0, 97.0]})
    shifted = pd.DataFrame({"model": ["c", "a", "d", "b"], "precision": "fp32",
                            "top1": [60.0, 50.0, 45.0, 40.0], "top5": [90.0, 80.0, 70.0, 60.0]})
    out = add_diffs(shifted, base).set_index("model")
    assert out.loc["c", "rank_diff"] == 2      # from 2nd place (0-based 2) to first: climbs, positive
    assert out.loc["a", "rank_diff"] == -1
    assert out.loc["b", "rank_diff"] == -2
    assert pd.isna(out.loc["d", "rank_diff"]) and pd.isna(out.loc["d", "top1_diff"])
    assert out.loc["c", "top1_diff"] == pytest.approx(-10.0)


def _published_movement(ds: str, baseline: str) -> tuple[pd.Series, pd.Series]:
    test, base = published_results(DATASETS[ds].csv), published_results(DATASETS[baseline].csv)
    rank = {m: i for i, m in enumerate(test.sort_values("top1", ascending=False).index)}
    brank = {m: i for i, m in enumerate(base.sort_values("top1", ascending=False).index)}
    moved = pd.Series({m: brank[m] - rank[m] for m in rank})
    return moved, test.loc[moved.index, "rank_diff"].astype(float)


@pytest.mark.parametrize("ds", ["real", "v2", "sketch", "r", "a"])
def test_published_rank_diff_convention(ds):
    """timm's published rank_diff is baseline rank minus this rank (positive = climbs).

    The published files keep only the registered checkpoints, while timm ranked ~1,000 models, so the
    magnitudes cannot be reproduced from these rows; the sign convention can: the movement within the
    published rows agrees with the published rank_diff (and the opposite convention would disagree).
    """
    moved, published = _published_movement(ds, DATASETS[ds].baseline)
    assert moved.corr(published, method="spearman") > 0.5
    assert (-moved).corr(published, method="spearman") < -0.5


def test_published_rows_reproduced(tmp_path):
    """Feed timm's published ImageNet and ReaL top-1/top-5 through add_diffs: top1_diff matches the
    published column (timm's top5_diff rows are not all consistent with its own top5 columns), and the top row's rank_diff (first in both tables) is 0 as published."""
    def ranked(ds):
        df = published_results(DATASETS[ds].csv).reset_index()[["model", "top1", "top5"]]
        df["precision"] = "fp32"
        return df.sort_values(["top1", "model"], ascending=[False, True], kind="mergesort").reset_index(drop=True)

    out = add_diffs(ranked("real"), ranked("imagenet")).set_index("model")
    pub = published_results(DATASETS["real"].csv)
    assert (out["top1_diff"] - pub.loc[out.index, "top1_diff"]).abs().max() <= 0.0011
    top = "eva02_large_patch14_448.mim_m38m_ft_in22k_in1k"   # first in both tables
    assert out.loc[top, "rank_diff"] == pub.loc[top, "rank_diff"] == 0


def test_write_results_csvs(results_dir):
    paths = write_results_csvs(RecordStore.load(results_dir))
    names = {p.name for p in paths}
    assert names == {f"{s.csv}.csv" for s in DATASETS.values()}
    text = (results_dir / "results-imagenet.csv").read_text()
    assert text.splitlines()[0].startswith(TIMM_RESULTS + ",n,top1_ci_low")
    assert text.splitlines()[1].startswith("vit_mediumd_patch16_reg4_gap_256.sbb_in12k_ft_in1k,256,86.2,")
    assert not list(results_dir.glob(".*.tmp"))       # nothing half-written left behind
    # deterministic: a second write gives the same bytes
    before = {p: p.read_bytes() for p in paths}
    write_results_csvs(RecordStore.load(results_dir))
    assert all(p.read_bytes() == b for p, b in before.items())


def test_write_results_only_datasets_with_records(tmp_path):
    shutil.copytree(FIXTURE_RESULTS / "records" / "imagenet", tmp_path / "records" / "imagenet")
    assert [p.name for p in write_results_csvs(RecordStore.load(tmp_path))] == ["results-imagenet.csv"]
    assert write_csvs(RecordStore.load(tmp_path / "empty")) == []


def test_atomic_write_keeps_old_file_on_failure(results_dir, monkeypatch):
    store = RecordStore.load(results_dir)
    write_results_csvs(store)
    target = results_dir / "results-imagenet.csv"
    target.write_bytes(target.read_bytes() + b"stale\n")   # differs, so the next write replaces it
    old = target.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr("vitbench.records.io.os.replace", boom)
    with pytest.raises(OSError):
        write_results_csvs(store)
    assert target.read_bytes() == old
    assert not list(results_dir.glob(".*.tmp"))


def test_benchmark_columns_and_values(results_dir):
    df = RecordStore.load(results_dir).benchmark_frame("amp_bf16", "cuda")
    assert ",".join(df.columns[:8]) == TIMM_BENCH
    assert list(df.columns[8:]) == VITBENCH_BENCH_COLUMNS
    assert list(df.infer_samples_per_sec) == sorted(df.infer_samples_per_sec, reverse=True)
    row = df.set_index("model").loc["vit_betwixt_patch16_rope_reg4_gap_256"]
    assert row.checkpoint == "vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k"
    # the fixture's stats record holds vitbench's real counts, equal to timm's published row
    assert (row.infer_gmacs, row.infer_macts, row.param_count) == (16.52, 28.24, 60.23)
    assert (row.gmacs_no_attn, row.macts_no_attn) == (15.48, 18.14)
    assert row.infer_batch_size == 256 and row.device_name == "Fixture GPU 80GB"


def test_write_benchmark_csvs(results_dir):
    paths = write_benchmark_csvs(RecordStore.load(results_dir))
    assert [p.name for p in paths] == ["benchmark-infer-amp_bf16-cuda.csv", "benchmark-infer-fp32-cpu.csv"]
    head = paths[1].read_text().splitlines()
    assert head[0].startswith(TIMM_BENCH + ",gmacs_no_attn")
    assert len(head) == 3
    everything = write_csvs(RecordStore.load(results_dir))
    assert [p.name for p in everything[-2:]] == [p.name for p in paths]
    assert {p.name for p in everything[:-2]} == {f"{s.csv}.csv" for s in DATASETS.values()}


def test_atomic_write_gives_the_permissions_open_would(tmp_path):
    """Records and reports are as readable as any file the user writes (mkstemp alone makes 0600)."""
    import os

    from vitbench.records import atomic_write_text
    from vitbench.records.io import _UMASK

    atomic_write_text(tmp_path / "a.json", "{}\n")
    with open(tmp_path / "b.json", "w") as f:
        f.write("{}\n")
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == (tmp_path / "b.json").stat().st_mode & 0o777
    assert _UMASK == os.umask(_UMASK)       # the umask read at import is the process's
