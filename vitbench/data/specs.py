"""The eval datasets as one table: every fact about a dataset lives in its `DatasetSpec`, and cli,
runner, results, report and the catalog derive what they need from `DATASETS` (no module keeps its
own list of names, titles, baselines or CSV names).

    DATASETS["a"]            -> DatasetSpec (frozen)
    list(DATASETS)           -> every dataset, in report order (each baseline-only set after its shift set)
    selectable_datasets()    -> what `--datasets` offers by default: imagenet, real, v2, sketch, r, a
    shift_datasets()         -> the sets measured against a baseline: real, v2, sketch, r, a
    expand_datasets(["r"])   -> ["r-clean", "r"]          (baselines first)
    published_top1("a", checkpoint) -> timm's published top-1 (from the catalog's copy of its CSV), or None
    hub_sources("real")      -> the Hub repos holding its images, the default first (imagenet's)

This module is light (no torch), so the CLI can build its help from the table; the loading code is in
vitbench.data.datasets, which re-exports these names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from vitbench.catalog import imagenet_synsets, published_results, subset_indices, subset_synsets


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face Hub dataset repo that holds a dataset's images, and which of its files they are:
    only those files are fetched and read, where they lie in the HF cache."""
    repo: str                        # dataset repo id on the Hub
    files: tuple[str, ...]           # glob patterns (repo-relative) of the files read; nothing else
    kind: str                        # how they are read: 'parquet' | 'webdataset' | 'zip' | 'tar.gz'
    n_files: int | None              # files the patterns match in a complete copy (None: not fixed)
    size_gb: float                   # about how much there is to download (the Hub's listing is exact)
    gated: bool = False              # its terms must be accepted on its page, and a token used

    @property
    def url(self) -> str:
        return f"https://huggingface.co/datasets/{self.repo}"


@dataclass(frozen=True)
class DatasetSpec:
    name: str                        # vitbench name: imagenet, real, v2, sketch, r, a, r-clean, a-clean
    title: str                       # what reports and messages call it
    short: str                       # column header in wide tables ('IN-1k', 'ReaL', ...)
    csv: str                         # timm's results CSV stem (results/<csv>.csv, catalog/published/<csv>.csv)
    folder: str                      # folder under --data-root
    n_expected: int                  # images in the full dataset
    layout: str                      # 'imagenet' (any ImageNet-val layout) | 'wnid' | 'numbered'
    labels: str = "single"           # 'single' | 'real' (multi-label sets, by validation file number)
    subset: str | None = None        # 'a' | 'r': 200-class subset the logits are restricted to
    based_on: str | None = None      # the dataset whose images it uses (real, r-clean, a-clean)
    baseline: str | None = None      # the dataset its top1/top5/rank diffs are taken against (timm's CSVs)
    baseline_only: bool = False      # exists as another set's baseline: not offered by default, run before it
    nested: tuple[str, ...] = ()     # accepted single subfolder names the images may sit in
    n_scored: int | None = None      # images that count (ReaL: those with a non-empty label set)
    hub: tuple[HubSource, ...] = ()  # Hub repos holding its images, the default first (fetched when
                                     # missing); a set `based_on` another reads that one's

    @property
    def class_subset(self) -> tuple[int, ...] | None:
        """Indices into the 1000 classes for restricting logits, or None for all 1000."""
        return subset_indices(self.subset) if self.subset else None

    @property
    def class_folders(self) -> tuple[str, ...]:
        if self.layout == "numbered":
            return tuple(str(i) for i in range(1000))
        return subset_synsets(self.subset) if self.subset and self.layout == "wnid" else imagenet_synsets()


_VAL_NESTED = ("val", "ILSVRC2012_img_val")
# ILSVRC/imagenet-1k: `image` {bytes, path: ILSVRC2012_val_00000001_n01751748.JPEG}, `label` a ClassLabel in
# class-index (sorted wnid) order named by words; timm's webdataset copy keys samples by validation file
# name (__key__ ILSVRC2012_val_XXXXXXXX: jpg, cls, json), in shuffled shards
_IMAGENET_HUB = (
    HubSource("ILSVRC/imagenet-1k", ("data/validation-*.parquet",), "parquet", 14, 6.3, gated=True),
    HubSource("timm/imagenet-1k-wds", ("imagenet1k-validation-*.tar",), "webdataset", None, 6.4, gated=True),
)
def _clean(subset: str) -> DatasetSpec:
    """The baseline of ImageNet-R or -A: ImageNet-val restricted to the same 200 classes."""
    letter = subset.upper()
    return DatasetSpec(f"{subset}-clean", f"ImageNet-{letter} clean (IN-val, {letter}'s 200 classes)", f"{letter}-clean",
                       f"results-imagenet-{subset}-clean", "imagenet", 10_000, "imagenet", subset=subset,
                       based_on="imagenet", baseline_only=True, nested=_VAL_NESTED)


DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("imagenet", "ImageNet-1k val", "IN-1k", "results-imagenet", "imagenet", 50_000, "imagenet",
                nested=_VAL_NESTED, hub=_IMAGENET_HUB),
    DatasetSpec("real", "ImageNet-ReaL", "ReaL", "results-imagenet-real", "imagenet", 50_000, "imagenet",
                labels="real", based_on="imagenet", baseline="imagenet", nested=_VAL_NESTED, n_scored=46_837),
    DatasetSpec("v2", "ImageNetV2 matched-frequency", "V2", "results-imagenetv2-matched-frequency",
                "imagenetv2-matched-frequency", 10_000, "numbered", baseline="imagenet",
                nested=("imagenetv2-matched-frequency-format-val",),
                # a gzip stream: extracted once (folders 0..999 = class index by number)
                hub=(HubSource("vaishaal/ImageNetV2", ("imagenetv2-matched-frequency.tar.gz",), "tar.gz", 1, 1.26),)),
    DatasetSpec("sketch", "ImageNet-Sketch", "Sketch", "results-sketch", "imagenet-sketch", 50_889, "wnid",
                baseline="imagenet", nested=("sketch",),
                # sketch/<wnid>/*.JPEG, read from the zip in place
                hub=(HubSource("songweig/imagenet_sketch", ("data/ImageNet-Sketch.zip",), "zip", 1, 8.0),)),
    DatasetSpec("r", "ImageNet-R", "R", "results-imagenet-r", "imagenet-r", 30_000, "wnid", subset="r",
                baseline="r-clean", nested=("imagenet-r",),
                # columns image, wnid, class_name
                hub=(HubSource("axiong/imagenet-r", ("test/test-*-of-00005.parquet",), "parquet", 5, 2.1),)),
    _clean("r"),
    DatasetSpec("a", "ImageNet-A", "A", "results-imagenet-a", "imagenet-a", 7_500, "wnid", subset="a",
                baseline="a-clean", nested=("imagenet-a",),
                # webdataset sNNNNNNN.jpg + .cls, cls 0..199 = position in the sorted 200 A wnids
                hub=(HubSource("clip-benchmark/wds_imagenet-a", ("test/*.tar",), "webdataset", 4, 0.7),)),
    _clean("a"),
)}


def selectable_datasets() -> tuple[str, ...]:
    """The datasets `--datasets` runs by default (baseline-only sets come with the set that needs them)."""
    return tuple(n for n, s in DATASETS.items() if not s.baseline_only)


def shift_datasets() -> tuple[str, ...]:
    """The datasets measured against a baseline (their diffs, and the report's robustness columns)."""
    return tuple(n for n, s in DATASETS.items() if s.baseline)


def published_cloud(dataset: str):
    """timm's whole published results CSV for `dataset` (every model it publishes, one row per model
    and test size): the cloud effective robustness is fitted on and the plots draw in grey."""
    from vitbench.catalog import published_all_results

    return published_all_results(check_dataset(dataset).csv)


def robustness_datasets() -> tuple[str, ...]:
    """The shift sets with images of their own (v2, sketch, r, a; not ReaL, which relabels
    ImageNet-val): the sets effective robustness is measured on."""
    return tuple(n for n in shift_datasets() if DATASETS[n].based_on is None)


def check_dataset(name: str) -> DatasetSpec:
    """The spec of `name`; an unknown name raises KeyError listing the known ones."""
    if name not in DATASETS:
        raise KeyError(f"Unknown dataset {name!r}. Available: {', '.join(DATASETS)}")
    return DATASETS[name]


def expand_datasets(names: Sequence[str]) -> list[str]:
    """Dataset names to run, in order, with the baseline-only set a dataset needs (r-clean for r)
    before it."""
    out: list[str] = []
    for n in names:
        spec = check_dataset(n)
        first = (spec.baseline,) if spec.baseline and DATASETS[spec.baseline].baseline_only else ()
        for m in first + (n,):
            if m not in out:
                out.append(m)
    return out


def hub_sources(name: str) -> tuple[HubSource, ...]:
    """The Hub repos holding `name`'s images, the default first: its own, or those of the dataset it
    is based on (real, r-clean and a-clean read ImageNet-val's)."""
    spec = check_dataset(name)
    return DATASETS[spec.based_on].hub if spec.based_on else spec.hub


def images_expected(name: str) -> int:
    """Images in a complete copy of the source `name` reads: its own count, or that of the dataset it
    is based on (r-clean reads all 50,000 ImageNet-val images, then keeps its 10,000)."""
    spec = check_dataset(name)
    return DATASETS[spec.based_on].n_expected if spec.based_on else spec.n_expected


def resolve_override(name: str, overrides: dict[str, str]) -> str | None:
    """The --data override for `name`: its own, else the one of the dataset it is based on."""
    spec = DATASETS[name]
    return overrides.get(name) or (overrides.get(spec.based_on) if spec.based_on else None)


def published_top1(dataset: str, checkpoint: str) -> float | None:
    """timm's published top-1 of `checkpoint` on `dataset` (its DatasetSpec's csv), or None when
    `dataset` is not a known dataset or timm publishes no figure for the checkpoint."""
    if dataset not in DATASETS:
        return None
    table = published_results(DATASETS[dataset].csv)
    return float(table.loc[checkpoint, "top1"]) if checkpoint in table.index else None


__all__ = ["DatasetSpec", "HubSource", "DATASETS", "selectable_datasets", "shift_datasets", "check_dataset",
           "expand_datasets", "resolve_override", "hub_sources", "images_expected", "published_top1",
           "robustness_datasets", "published_cloud"]
