"""A subset run (--limit, missing images) is never compared with a full-set published figure, and
is labelled 'subset, N of M' everywhere its number appears: CSV, card, comparison, plots."""

from __future__ import annotations

import pytest

from support import (
    CKPT,
    TEN,
    cli_run,
    csv_rows,
    make_wnid_folders,
    rec,
)
from vitbench.catalog import imagenet_synsets

SYN = imagenet_synsets()


pytestmark = pytest.mark.usefixtures("hf_caches_in_tmp")


def test_a_subset_run_gets_no_delta_or_flag_and_is_labelled_everywhere(dummy, tmp_path, monkeypatch):
    from vitbench import report
    from vitbench.data.specs import published_top1
    from vitbench.report import plots

    assert published_top1("imagenet", CKPT) is not None          # there is a figure to (not) compare with
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet", "--limit", "3") == 0
    r = rec(tmp_path, "imagenet")
    assert (r.comparable_to_published, r.subset_label) == (False, "subset, 3 of 50,000")
    # CSV: the published figure stays, the delta does not; the row says what it is
    row = csv_rows(tmp_path)[0]
    assert row["published_top1"] and row["published_delta"] == "" and row["subset"] == "subset, 3 of 50,000"
    # reports: card, comparison (leaderboard, measured-vs-published) and the plots
    monkeypatch.undo()                     # the real models again (cards build them on the meta device)
    drawn = []
    real_scatter = plots.scatter
    monkeypatch.setattr(plots, "scatter", lambda path, pts, **kw: drawn.append(pts) or real_scatter(path, pts, **kw))
    out = tmp_path / "reports"
    report.render_reports(tmp_path / "results", out)
    card = (out / "cards" / f"{CKPT}.md").read_text(encoding="utf-8")
    line = next(ln for ln in card.splitlines() if ln.startswith("| ImageNet-1k val") and "100.000" in ln)
    assert "subset, 3 of 50,000" in line and "+" not in line                # no Δ vs published
    cmp = (out / "comparison.md").read_text(encoding="utf-8")
    assert "outside 95% CI**" not in cmp.split("## Measured vs published")[1].split("##")[0].split("\n", 3)[-1]
    assert f"{CKPT} (subset, 3 of 50,000)" in cmp
    assert "not compared: subset, 3 of 50,000" in cmp
    assert f"records under `{tmp_path / 'results' / 'records'}/`" in cmp      # item 8: the actual results dir
    points = [p for pts in drawn for p in pts if p.label.startswith(CKPT)]
    assert points and all(p.subset and p.label.endswith("(subset, 3 of 50,000)") for p in points)


def test_a_complete_record_is_compared():
    from vitbench.records import EvalRecord

    full = EvalRecord("m", "imagenet", "fp32", "ok", n_images=50_000, n_expected=50_000, complete=True)
    part = EvalRecord("m", "imagenet", "fp32", "ok", n_images=49_990, n_expected=50_000, complete=False)
    assert (full.comparable_to_published, full.subset_label) == (True, None)
    assert (part.comparable_to_published, part.subset_label) == (False, "subset, 49,990 of 50,000")
    assert EvalRecord("m", "imagenet", "fp32", "not_run").subset_label is None

