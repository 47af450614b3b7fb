"""The eval datasets as one table: every fact about a dataset lives in its `DatasetSpec`, and cli,
runner, results, report and the catalog derive what they need from `DATASETS` (no module keeps its
own list of names, titles, baselines or CSV names).

    DATASETS["a"]            -> DatasetSpec (frozen)
    list(DATASETS)           -> every dataset, in report order (each baseline-only set after its shift set)
    selectable_datasets()    -> what `--datasets` offers by default: imagenet, real, v2, sketch, r, a
    shift_datasets()         -> the sets measured against a baseline: real, v2, sketch, r, a
    expand_datasets(["r"])   -> ["r-clean", "r"]          (baselines first)
    published_top1("a", checkpoint) -> timm's published top-1 (from the catalog's copy of its CSV), or None

This module is light (no torch), so the CLI can build its help from the table; the loading code is in
vitbench.data.datasets, which re-exports these names.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from vitbench.catalog import imagenet_synsets, published_results, subset_indices, subset_synsets


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
DATASETS: dict[str, DatasetSpec] = {s.name: s for s in (
    DatasetSpec("imagenet", "ImageNet-1k val", "IN-1k", "results-imagenet", "imagenet", 50_000, "imagenet",
                nested=_VAL_NESTED),
    DatasetSpec("real", "ImageNet-ReaL", "ReaL", "results-imagenet-real", "imagenet", 50_000, "imagenet",
                labels="real", based_on="imagenet", baseline="imagenet", nested=_VAL_NESTED, n_scored=46_837),
    DatasetSpec("v2", "ImageNetV2 matched-frequency", "V2", "results-imagenetv2-matched-frequency",
                "imagenetv2-matched-frequency", 10_000, "numbered", baseline="imagenet",
                nested=("imagenetv2-matched-frequency-format-val",)),
    DatasetSpec("sketch", "ImageNet-Sketch", "Sketch", "results-sketch", "imagenet-sketch", 50_889, "wnid",
                baseline="imagenet", nested=("sketch",)),
    DatasetSpec("r", "ImageNet-R", "R", "results-imagenet-r", "imagenet-r", 30_000, "wnid", subset="r",
                baseline="r-clean", nested=("imagenet-r",)),
    DatasetSpec("r-clean", "ImageNet-R clean (IN-val, R's 200 classes)", "R-clean", "results-imagenet-r-clean",
                "imagenet", 10_000, "imagenet", subset="r", based_on="imagenet", baseline_only=True,
                nested=_VAL_NESTED),
    DatasetSpec("a", "ImageNet-A", "A", "results-imagenet-a", "imagenet-a", 7_500, "wnid", subset="a",
                baseline="a-clean", nested=("imagenet-a",)),
    DatasetSpec("a-clean", "ImageNet-A clean (IN-val, A's 200 classes)", "A-clean", "results-imagenet-a-clean",
                "imagenet", 10_000, "imagenet", subset="a", based_on="imagenet", baseline_only=True,
                nested=_VAL_NESTED),
)}


def selectable_datasets() -> tuple[str, ...]:
    """The datasets `--datasets` runs by default (baseline-only sets come with the set that needs them)."""
    return tuple(n for n, s in DATASETS.items() if not s.baseline_only)


def shift_datasets() -> tuple[str, ...]:
    """The datasets measured against a baseline (their diffs, and the report's robustness columns)."""
    return tuple(n for n, s in DATASETS.items() if s.baseline)


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


__all__ = ["DatasetSpec", "DATASETS", "selectable_datasets", "shift_datasets", "check_dataset",
           "expand_datasets", "resolve_override", "published_top1"]
