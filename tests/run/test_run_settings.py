"""The run side of the analyses: records of one checkpoint at several settings side by side (precision,
torch.compile, channels-last), A and R scored 1000-way, the ECE of every record, and the per-class
accuracy files, each against a computation made here."""
from __future__ import annotations

import time

import numpy as np
import pandas as pd
import torch
from PIL import Image
from torchmetrics.functional.classification import multiclass_calibration_error

from support import (
    CKPT,
    DUMMY_CONFIG,
    TEN,
    ColourModel,
    class_colour,
    cli_run,
    make_wnid_folders,
    rec,
    val_name,
    write_image,
)
from vitbench import cli
from vitbench.analysis.calibration import ece, frame_confidence
from vitbench.bench import BenchOptions
from vitbench.catalog import imagenet_lemmas, imagenet_synsets, subset_indices, subset_synsets
from vitbench.eval.predictions import read_predictions
from vitbench.records import eval_path, read_record
from vitbench.run import resume

SYN = imagenet_synsets()


def _parquet(tmp_path, dataset, setting="fp32"):
    return eval_path(tmp_path / "results", dataset, CKPT, setting).with_suffix(".parquet")


# ---------------------------------------------------------------------------- settings side by side

def test_fp32_and_bf16_records_side_by_side(dummy, tmp_path, capsys):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    fp32 = eval_path(tmp_path / "results", "imagenet", CKPT, "fp32")
    stamp = fp32.stat().st_mtime_ns
    assert cli_run(tmp_path, "--datasets", "imagenet", "--precision", "bf16") == 0
    assert "done: 1" in capsys.readouterr().out                # the bf16 job is its own, not the fp32 one
    folder = tmp_path / "results" / "records" / "imagenet"
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        f"{CKPT}__{s}.{ext}" for s in ("fp32", "bf16") for ext in ("json", "parquet"))
    assert fp32.stat().st_mtime_ns == stamp
    a, b = rec(tmp_path, "imagenet"), rec(tmp_path, "imagenet", precision="bf16")
    assert (a.setting, b.setting, a.compile, b.channels_last) == ("fp32", "bf16", False, False)
    assert (a.predictions_file, b.predictions_file) == (f"{CKPT}__fp32.parquet", f"{CKPT}__bf16.parquet")
    assert a.top1 == b.top1 == 90.0
    # each is resumed from its own path
    assert cli_run(tmp_path, "--datasets", "imagenet", "--precision", "bf16") == 0
    assert "skipped (had a record): 1" in capsys.readouterr().out


def test_channels_last_run_is_its_own_record(dummy, tmp_path, monkeypatch):
    seen = []
    forward = ColourModel.forward

    def probe(self, x):
        seen.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
        return forward(self, x)

    monkeypatch.setattr(ColourModel, "forward", probe)
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet", "--channels-last") == 0
    r = read_record(eval_path(tmp_path / "results", "imagenet", CKPT, "fp32+channels_last"))
    assert (r.status, r.channels_last, r.compile, r.setting, r.top1) == ("ok", True, False, "fp32+channels_last",
                                                                           90.0)
    assert r.predictions_file == f"{CKPT}__fp32+channels_last.parquet"
    assert seen and all(seen)
    assert not eval_path(tmp_path / "results", "imagenet", CKPT, "fp32").exists()


def test_compile_run_of_the_dummy(dummy, tmp_path):
    """A real torch.compile (inductor on the CPU) of the colour model: `__fp32+compile.json` beside the
    eager record, the same predictions, image for image (10 images at batch 4: the last batch padded).
    The top-5 past the first may order classes at the same colour distance (equal logits) otherwise."""
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    t0 = time.perf_counter()
    assert cli_run(tmp_path, "--datasets", "imagenet", "--compile") == 0
    took = time.perf_counter() - t0
    path = eval_path(tmp_path / "results", "imagenet", CKPT, "fp32+compile")
    assert path.name == f"{CKPT}__fp32+compile.json"
    c, e = read_record(path), rec(tmp_path, "imagenet")
    assert (c.status, c.compile, c.channels_last, c.setting) == ("ok", True, False, "fp32+compile")
    assert (c.top1, c.top5, c.n_images) == (e.top1, e.top5, e.n_images) == (90.0, c.top5, 10)
    pc, pe = read_predictions(_parquet(tmp_path, "imagenet", "fp32+compile")), read_predictions(_parquet(tmp_path,
                                                                                                          "imagenet"))
    assert np.array_equal(np.stack(pc["top5_idx"])[:, 0], np.stack(pe["top5_idx"])[:, 0])
    assert np.allclose(np.stack(pc["top5_prob"]), np.stack(pe["top5_prob"]), atol=1e-6)
    assert took < 120, f"compile run took {took:.0f} s"


def test_run_compile_times_the_compiled_model_too(tmp_path):
    args = cli.build_parser().parse_args(["run", CKPT, "--compile", "--channels-last"])
    opts = cli._bench_options(args)
    assert (args.compile, args.channels_last, opts.compile, opts.channels_last) == (True, True, True, True)
    assert cli.build_parser().parse_args(["run", CKPT]).compile is False


def test_a_throughput_record_stands_only_for_its_own_options():
    import torch as _torch

    from vitbench.records import BenchRecord, device_name, provenance

    prov = provenance("cpu")
    assert (prov.device_name, prov.torch_version) == (device_name("cpu"), _torch.__version__)
    eager = BenchRecord(checkpoint=CKPT, architecture="vit_tiny_patch16_224", device="cpu", precision="fp32",
                        img_size=224, batch_size=1, samples_per_sec=1.0, samples_per_sec_spread=(1.0, 1.0),
                        step_time_ms=1.0, latency_ms_bs1=1.0, peak_memory_mb=None, provenance=prov)
    assert resume.bench_measured_here(eager, "cpu", BenchOptions())
    assert not resume.bench_measured_here(eager, "cpu", BenchOptions(compile=True))
    assert not resume.bench_measured_here(eager, "cpu", BenchOptions(channels_last=True))
    assert resume.bench_measured_here(eager, "cpu")           # without options: the machine alone


# ---------------------------------------------------------------------------- A and R 1000-way

def _nearest_class(path) -> int:
    """The class whose colour is nearest the image's mean colour: the colour model's argmax over all
    1000 classes, computed from the file with PIL and numpy alone."""
    rgb = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64).reshape(-1, 3).mean(0)
    palette = np.array([class_colour(c) for c in range(1000)], dtype=np.float64)
    return int(((palette - rgb) ** 2).sum(1).argmin())


def _shift_set(root, sub: str, colours: list[tuple[int, int]]) -> list:
    """root/<imagenet-r|imagenet-a>/<wnid>/<k>.jpg for (class, colour class) pairs; the 200 folders."""
    folder = root / {"r": "imagenet-r", "a": "imagenet-a"}[sub]
    for w in subset_synsets(sub):
        (folder / w).mkdir(parents=True, exist_ok=True)
    return [(write_image(folder / SYN[c] / f"{sub}_{k}.jpg", colour), c) for k, (c, colour) in enumerate(colours)]


def test_a_and_r_are_scored_1000_way_beside_the_200_class_number(dummy, tmp_path):
    """Images of A's and R's classes, a third of them coloured as a class outside the set: the
    1000-way top-1 equals the nearest-colour argmax over all classes computed here, while the
    200-class top-1 is timm's number; the clean baselines carry none."""
    r_sub, a_sub = subset_indices("r"), subset_indices("a")
    outside_r = [c for c in range(1000) if c not in set(r_sub)]
    outside_a = [c for c in range(1000) if c not in set(a_sub)]
    r_imgs = _shift_set(tmp_path / "data", "r", [(c, c if k % 3 else outside_r[7 * k]) for k, c in
                                                 enumerate(r_sub[:9])])
    a_imgs = _shift_set(tmp_path / "data", "a", [(c, c if k % 3 else outside_a[5 * k + 1]) for k, c in
                                                 enumerate(a_sub[:6])])
    make_wnid_folders(tmp_path / "data" / "imagenet", [(k + 1, c, c) for k, c in enumerate(r_sub[:3] + a_sub[:3])])
    assert cli_run(tmp_path, "--datasets", "r,a") == 0
    for d, imgs in (("r", r_imgs), ("a", a_imgs)):
        expected = 100 * np.mean([_nearest_class(p) == c for p, c in imgs])
        got = rec(tmp_path, d)
        assert got.top1_1000way == round(expected, 4) and 0 < expected < 100, d
        assert got.top1 >= got.top1_1000way             # the 200-class restriction can only rescue
    for d in ("r-clean", "a-clean"):
        assert rec(tmp_path, d).status == "ok" and rec(tmp_path, d).top1_1000way is None


def test_a_boosted_class_outside_the_subset_is_200_way_right_1000_way_wrong(dummy, tmp_path):
    r_sub, a_sub = subset_indices("r"), subset_indices("a")
    dummy["boost"] = (next(c for c in range(1000) if c not in set(r_sub) | set(a_sub)),)
    _shift_set(tmp_path / "data", "r", [(c, c) for c in r_sub[:4]])
    _shift_set(tmp_path / "data", "a", [(c, c) for c in a_sub[:4]])
    make_wnid_folders(tmp_path / "data" / "imagenet", [(1, r_sub[0], r_sub[0])])
    assert cli_run(tmp_path, "--datasets", "r,a") == 0
    for d in ("r", "a"):
        assert (rec(tmp_path, d).top1, rec(tmp_path, d).top1_1000way) == (100.0, 0.0), d
    imagenet = read_record(eval_path(tmp_path / "results", "r-clean", CKPT, "fp32"))
    assert imagenet.top1_1000way is None


# ---------------------------------------------------------------------------- ECE

def _random_colour_val(root, n: int, seed: int, label_of=lambda k, c: c) -> list[tuple]:
    """ImageNet-val of n images in class folders of random classes, written here: every third one in
    the colour of its label (`label_of(val number, folder class)`: right), the others in random colours
    (confidences vary, mostly wrong)."""
    rng = np.random.default_rng(seed)
    make_wnid_folders(root, [])
    out = []
    for k in range(1, n + 1):
        c = int(rng.integers(0, 1000))
        colour = tuple(int(v) for v in rng.integers(0, 256, size=3))
        if k % 3 == 0:
            colour = class_colour(label_of(k, c))
        path = root / SYN[c] / val_name(k)
        Image.new("RGB", (40, 40), colour).save(path, quality=95)
        out.append((path, c))
    return out


def _probabilities(files) -> torch.Tensor:
    """The colour model's full softmax matrix over the files, computed here (the eval crop, then the
    model called directly)."""
    from vitbench.data.transforms import create_crop_transform, normalize_batch

    crop = create_crop_transform(DUMMY_CONFIG)
    x8 = torch.stack([torch.as_tensor(crop(Image.open(p).convert("RGB"))) for p, _ in files])
    with torch.no_grad():
        return ColourModel()(normalize_batch(x8, DUMMY_CONFIG.mean, DUMMY_CONFIG.std)).softmax(1)


def test_every_record_has_the_ece_torchmetrics_gives(dummy, tmp_path):
    files = _random_colour_val(tmp_path / "data" / "imagenet", 40, seed=3)
    probs = _probabilities(files)
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    r = rec(tmp_path, "imagenet")
    frame = read_predictions(_parquet(tmp_path, "imagenet"))
    order = [int(i) for i in frame["index"]]
    targets = torch.tensor([files[i][1] for i in order])
    expected = float(multiclass_calibration_error(probs[order], targets, num_classes=1000, n_bins=15, norm="l1"))
    assert abs(ece(*frame_confidence(frame)) - expected) < 1e-6     # from the stored top-1 probability
    assert abs(r.ece - expected) <= 5e-5 + 1e-6 and r.ece == round(r.ece, 4)   # stored to 4 decimals
    assert 0 < r.top1 < 100 and 0 < r.ece < 1


def test_ece_of_real_uses_the_label_sets(dummy, tmp_path):
    """ReaL's record: right when the top-1 is in the set, images with an empty set left out; the
    number torchmetrics gives with a target chosen from each set."""
    from vitbench.catalog import real_labels

    sets = real_labels()
    files = _random_colour_val(tmp_path / "data" / "imagenet", 30, seed=4,
                               label_of=lambda k, c: sets[k - 1][0] if sets[k - 1] else c)
    probs = _probabilities(files)
    assert cli_run(tmp_path, "--datasets", "real") == 0
    r = rec(tmp_path, "real")
    frame = read_predictions(_parquet(tmp_path, "real"))
    keep = [k for k, i in enumerate(frame["index"]) if len(sets[int(i)])]
    top1 = probs.argmax(1).numpy()
    target = [top1[int(i)] if top1[int(i)] in sets[int(i)] else sets[int(i)][0] for i in frame["index"][keep]]
    expected = float(multiclass_calibration_error(probs[[int(frame["index"][k]) for k in keep]],
                                                  torch.tensor(target), num_classes=1000, n_bins=15, norm="l1"))
    assert len(keep) == r.n_scored < 30 and 0 < r.top1 < 100
    assert abs(r.ece - expected) <= 5e-5 + 1e-6


# ---------------------------------------------------------------------------- per-class accuracy

# classes 0 (3 images, one coloured as 42), 5 (2), 9 (1, coloured as 250), 100 (1)
PER_CLASS_ITEMS = [(1, 0, 0), (2, 0, 0), (3, 0, 42), (4, 5, 5), (5, 5, 5), (6, 9, 250), (7, 100, 100)]


def test_per_class_csv_of_every_imagenet_record(dummy, tmp_path, capsys):
    make_wnid_folders(tmp_path / "data" / "imagenet", PER_CLASS_ITEMS)
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert cli_run(tmp_path, "--datasets", "imagenet", "--precision", "bf16") == 0
    folder = tmp_path / "results" / "per-class"
    assert sorted(p.name for p in folder.iterdir()) == [f"{CKPT}__bf16.csv", f"{CKPT}__fp32.csv"]
    path = folder / f"{CKPT}__fp32.csv"
    df = pd.read_csv(path)
    assert list(df.columns) == ["class", "wnid", "name", "images", "correct", "top1", "top5"]
    assert df["class"].tolist() == [0, 5, 9, 100]                       # one row per class present
    assert df["images"].tolist() == [3, 2, 1, 1] and df["correct"].tolist() == [2, 2, 0, 1]
    assert df["top1"].tolist() == [66.667, 100.0, 0.0, 100.0]
    assert df["wnid"].tolist() == [SYN[c] for c in (0, 5, 9, 100)]
    assert df["name"].tolist() == [imagenet_lemmas()[c] for c in (0, 5, 9, 100)]
    assert (df["top5"] >= df["top1"]).all()
    assert pd.read_csv(folder / f"{CKPT}__bf16.csv")[["class", "images", "correct"]].equals(
        df[["class", "images", "correct"]])
    # a rerun that finds nothing new rewrites nothing; a file whose record is gone goes too
    stamp = path.stat().st_mtime_ns
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert path.stat().st_mtime_ns == stamp
    eval_path(tmp_path / "results", "imagenet", CKPT, "bf16").unlink()
    assert cli_run(tmp_path, "--datasets", "imagenet") == 0
    assert sorted(p.name for p in folder.iterdir()) == [f"{CKPT}__fp32.csv"]
    assert "per-class CSVs: 1 file(s)" in capsys.readouterr().out


def test_only_imagenet_val_gets_per_class_files(dummy, tmp_path):
    make_wnid_folders(tmp_path / "data" / "imagenet", TEN)
    assert cli_run(tmp_path, "--datasets", "real") == 0
    assert not (tmp_path / "results" / "per-class").exists()


def test_a_per_class_file_is_named_as_its_record(tmp_path):
    from vitbench.run.outputs import per_class_path

    for name in (CKPT, "hf-hub:org/model"):
        path = per_class_path(tmp_path / "results", name, "amp_bf16+compile")
        assert path.parent == tmp_path / "results" / "per-class"
        assert path.stem == eval_path(tmp_path / "results", "imagenet", name, "amp_bf16+compile").stem
        assert "/" not in path.name
