"""Your checkpoints in the reports: the claimed top-1 beside the measured one and flagged outside the
95% interval (card, comparison.md, index.html), the card's zoo checkpoints of the same architecture
measured on the same data with the paired McNemar test, a training run's plot, and a user checkpoint's
card without the zoo's facts; end to end from the CLI too."""
from __future__ import annotations

import csv
import re
from pathlib import Path

import pandas as pd
import pytest

from support import make_wnid_folders, write_image
from vitbench import cli
from vitbench.catalog import imagenet_synsets
from vitbench.catalog.registry import safe_name
from vitbench.records import EvalRecord, RecordStore, eval_path, write_record
from vitbench.report import render_reports

ARCH = "deit_tiny_patch16_224"
ZOO = "deit_tiny_patch16_224.fb_in1k"
FILES = [f"ILSVRC2012_val_{n:08d}.JPEG" for n in range(1, 101)]


pytestmark = pytest.mark.usefixtures("user_registry")     # conftest: user checkpoints of this test only


def _register(tmp_path: Path, entries: str) -> list[str]:
    from vitbench.models import register_catalog

    (tmp_path / "w.pth").write_bytes(b"not read: the records are made here")
    catalog = tmp_path / "mine.yaml"
    catalog.write_text("checkpoints:\n" + entries)
    return register_catalog(catalog)


def _record(results: Path, name: str, top1: float, ci: tuple[float, float], right: set[str] | None = None,
            dataset: str = "imagenet", complete: bool = True) -> EvalRecord:
    """An 'ok' record of the whole set (or a subset), with predictions over FILES when `right` is given
    (class 1 everywhere; right: the images whose top-1 is class 1)."""
    path = eval_path(results, dataset, name, "fp32")
    rec = EvalRecord(checkpoint=name, dataset=dataset, precision="fp32", status="ok", top1=top1, top5=95.0,
                     top1_ci=ci, n_images=50000 if complete else 100, n_expected=50000, complete=complete,
                     predictions_file=f"{safe_name(name)}__fp32.parquet" if right is not None else None)
    write_record(path, rec)
    if right is not None:
        pd.DataFrame({"index": range(len(FILES)), "file": [f"/data/imagenet/{f}" for f in FILES], "target": [1] * 100,
                      "top5_idx": [[1, 2, 3, 4, 5] if f in right else [2, 1, 3, 4, 5] for f in FILES]}
                     ).to_parquet(path.with_suffix(".parquet"))
    return rec


def _card(out: Path, name: str) -> str:
    return (out / "cards" / f"{safe_name(name)}.md").read_text(encoding="utf-8")


def _section(text: str, title: str) -> str:
    return text.split(title, 1)[1].split("\n## ", 1)[0]


# ---------------------------------------------------------------------------- from records

def test_a_claim_outside_the_interval_is_flagged_in_the_card_the_comparison_and_the_html(tmp_path):
    names = _register(tmp_path, f"""  - name: {ARCH}.mine
    architecture: {ARCH}
    weights: w.pth
    claimed: {{imagenet: 74.9, real: 80.0}}
    family: My fine-tunes
""")
    results = tmp_path / "results"
    _record(results, f"{ARCH}.mine", 72.2, (71.8, 72.6))
    _record(results, f"{ARCH}.mine", 79.9, (79.5, 80.3), dataset="real")
    out = tmp_path / "reports"
    render_reports(RecordStore.load(results), out, checkpoints=[ZOO, *names])

    claims = _section(_card(out, f"{ARCH}.mine"), "### Claimed vs measured")
    assert "| ImageNet-1k val | 72.200 | 71.80 – 72.60 | 74.900 | -2.700 | **outside 95% CI** |" in claims
    assert "| ImageNet-ReaL | 79.900 | 79.50 – 80.30 | 80.000 | -0.100 | within |" in claims
    cmp = (out / "comparison.md").read_text()
    yours = _section(cmp, "## Your checkpoints")
    assert "(1 flagged)" in yours
    assert "| deit_tiny_patch16_224.mine | My fine-tunes | IN-1k | 72.200 | 71.80 – 72.60 | 74.900 | -2.700 | " \
           "**outside 95% CI** |" in yours
    html = (out / "index.html").read_text()
    row = re.search(r'<tr data-search="[^"]*deit_tiny_patch16_224\.mine[^"]*imagenet">(.*?)</tr>', html, re.S)[1]
    assert "My fine-tunes" in row and ">74.900<" in row and 'class="flag-outside"' in row
    assert 'href="cards/deit_tiny_patch16_224.mine.html"' in row


def test_the_card_sets_the_checkpoint_beside_the_zoo_with_mcnemar(tmp_path):
    """The zoo checkpoint of the same architecture measured on the same data, with the paired test from
    both predictions files; a zoo record of other data is left out."""
    from vitbench.analysis.agreement import compare_predictions
    from vitbench.eval.predictions import read_predictions

    names = _register(tmp_path, f"  - name: {ARCH}.mine\n    architecture: {ARCH}\n    weights: w.pth\n")
    results = tmp_path / "results"
    zoo = _record(results, ZOO, 72.1, (71.7, 72.5), right=set(FILES[:60]))
    mine = _record(results, f"{ARCH}.mine", 72.6, (72.2, 73.0), right=set(FILES[30:]))
    _record(results, ZOO, 80.0, (70.0, 90.0), right=set(FILES), dataset="real", complete=False)   # other data
    _record(results, f"{ARCH}.mine", 79.0, (78.6, 79.4), dataset="real")
    store = RecordStore.load(results)
    out = tmp_path / "reports"
    render_reports(store, out, checkpoints=[ZOO, *names])

    zoo_section = _section(_card(out, f"{ARCH}.mine"), "### Beside the zoo")
    agreement = compare_predictions(*(read_predictions(store.predictions_path(r)) for r in (zoo, mine)))
    assert agreement.n == 100 and round(agreement.diff, 3) == 10.0              # 70 right against 60
    assert (f"| ImageNet-1k val | {ZOO} (fp32) | 72.100 | 72.600 | 100 | +10.000 | "
            f"{agreement.diff_lo:.2f} – {agreement.diff_hi:.2f} | {agreement.mcnemar_p:.3g} | no |") in zoo_section
    assert "ImageNet-ReaL" not in zoo_section                   # the zoo's ReaL record is of a subset: other data


def test_a_training_run_is_plotted_in_the_comparison_and_its_cards(tmp_path):
    for epoch in (2, 10, 1):
        (tmp_path / f"ckpt-{epoch}.pth").write_bytes(b"x")
    names = _register(tmp_path, f"  - name: {ARCH}.run\n    architecture: {ARCH}\n    weights: ckpt-*.pth\n")
    assert names == [f"{ARCH}.run-ckpt-{e}" for e in (1, 2, 10)]                 # file order, numbers by value
    results = tmp_path / "results"
    for name, top1 in zip(names, (60.0, 65.0, 71.0), strict=True):
        _record(results, name, top1, (top1 - 0.4, top1 + 0.4))
    out = tmp_path / "reports"
    render_reports(RecordStore.load(results), out, checkpoints=names)
    plot = out / "plots" / f"series_{ARCH}.run.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"![Top-1 over the checkpoints of {ARCH}.run](../plots/series_{ARCH}.run.png)" in _card(out, names[1])
    assert f"![Top-1 over the checkpoints of {ARCH}.run](plots/series_{ARCH}.run.png)" in (
        _section((out / "comparison.md").read_text(), "## Your checkpoints"))
    assert f'<img src="plots/series_{ARCH}.run.png"' in (out / "index.html").read_text()


def test_a_user_card_has_none_of_the_zoos_facts(tmp_path):
    """No Hub link to nowhere, no papers heading without papers, no license copied from the zoo, no
    claimed section pretending; its own papers and license when the entry gives them."""
    names = _register(tmp_path, f"""  - name: {ARCH}.plain
    architecture: {ARCH}
    weights: w.pth
  - name: {ARCH}.cited
    architecture: {ARCH}
    weights: w.pth
    license: mit
    papers: [{{title: My paper, url: "https://example.org/p"}}]
""")
    out = tmp_path / "reports"
    render_reports(RecordStore.load(tmp_path / "results"), out, checkpoints=names)
    plain, cited = (_card(out, n) for n in names)
    assert "license: unknown" in plain and "- **Papers:**" not in plain and "huggingface.co/)" not in plain
    assert "No claimed figure" in plain and "has a record on the same data yet" in plain
    assert "`vitbench.models.register_catalog(" in plain
    assert "license: mit" in cited and "  - My paper: https://example.org/p" in cited


# ---------------------------------------------------------------------------- from the CLI

def test_a_catalog_checkpoint_with_a_claim_everywhere_from_the_cli(tmp_path, capsys):
    """`vitbench list`, the results CSV, its card (claimed figure, not compared on a subset, the zoo's
    run on the same images paired image by image) and index.html."""
    import torch
    from safetensors.torch import save_file

    import vitbench

    root = make_wnid_folders(tmp_path / "data" / "imagenet", [])
    for n, cls in enumerate((0, 1, 2), start=1):
        write_image(root / imagenet_synsets()[cls] / f"ILSVRC2012_val_{n:08d}.JPEG", cls)
    torch.manual_seed(0)
    state = {k: v.contiguous() for k, v in vitbench.create_model(ARCH).state_dict().items()}
    (tmp_path / "w").mkdir()
    save_file(state, str(tmp_path / "w" / f"{ZOO}.safetensors"))
    catalog = tmp_path / "mine.yaml"
    catalog.write_text(f"checkpoints:\n  - name: {ARCH}.mine\n    architecture: {ARCH}\n"
                       f"    weights: w/{ZOO}.safetensors\n    claimed: {{imagenet: 74.9}}\n    family: My fine-tunes\n")
    assert cli.main(["list", "--catalog", str(catalog), f"{ARCH}.*"]) == 0
    assert f"{ARCH}.mine" in capsys.readouterr().out
    argv = ["run", ZOO, f"{ARCH}.mine", "--catalog", str(catalog), "--datasets", "imagenet", "--data-root",
            str(tmp_path / "data"), "--weights-dir", str(tmp_path / "w"), "--results-dir", str(tmp_path / "results"),
            "--reports-dir", str(tmp_path / "reports"), "--workers", "0", "--batch-size", "3", "--no-bench"]
    assert cli.main(argv) == 0
    with open(tmp_path / "results" / "results-imagenet.csv", newline="") as f:
        assert {r["model"] for r in csv.DictReader(f)} == {ZOO, f"{ARCH}.mine"}
    card = _card(tmp_path / "reports", f"{ARCH}.mine")
    assert "| ImageNet-1k val | 0.000 (subset, 3 of 50,000) | 0.00 – 56.15 | 74.900 |  | " \
           "not compared: subset, 3 of 50,000 |" in _section(card, "### Claimed vs measured")
    assert f"| ImageNet-1k val | {ZOO} (fp32) | 0.000 (subset, 3 of 50,000) | 0.000 (subset, 3 of 50,000) | 3 | " \
           "+0.000 |" in _section(card, "### Beside the zoo")                 # the same weights: no image differs
    html = (tmp_path / "reports" / "index.html").read_text()
    assert f'<a href="cards/{ARCH}.mine.html">{ARCH}.mine</a>' in html and ">74.900<" in html
    assert "My fine-tunes" in _section(html, 'id="yours"')
