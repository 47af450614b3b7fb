"""Packaged reference data: ImageNet class lists, the A/R 200-class subsets, the ReaL labels,
timm's published results/benchmark rows for the registered checkpoints (timm `results/*.csv`), and
timm's whole published cloud (`published_all/`: every model timm publishes, the effective-robustness
baseline's data)."""
from __future__ import annotations

import functools
import gzip
import json
from importlib import resources

_ROOT = resources.files(__name__)

def _lines(rel: str) -> list[str]:
    return [ln.strip() for ln in _ROOT.joinpath(rel).read_text().splitlines() if ln.strip()]


@functools.cache
def imagenet_synsets() -> tuple[str, ...]:
    """The 1000 ImageNet-1k wnids in class-index order."""
    return tuple(_lines("imagenet/imagenet_synsets.txt"))


@functools.cache
def imagenet_lemmas() -> tuple[str, ...]:
    """Human-readable class names ("tench, Tinca tinca"), in class-index order."""
    pairs = dict(ln.split("\t", 1) for ln in _lines("imagenet/imagenet_synset_to_lemma.txt"))
    return tuple(pairs[s] for s in imagenet_synsets())


@functools.cache
def subset_indices(name: str) -> tuple[int, ...]:
    """Indices into the 1000 classes of the 200-class subset of ImageNet-A ('a') or -R ('r')."""
    if name not in ("a", "r"):
        raise ValueError(f"no 200-class subset named {name!r}; expected 'a' or 'r'")
    return tuple(int(x) for x in _lines(f"imagenet/imagenet_{name}_indices.txt"))


@functools.cache
def subset_synsets(name: str) -> tuple[str, ...]:
    if name not in ("a", "r"):
        raise ValueError(f"no 200-class subset named {name!r}; expected 'a' or 'r'")
    return tuple(_lines(f"imagenet/imagenet_{name}_synsets.txt"))


@functools.cache
def real_labels() -> tuple[tuple[int, ...], ...]:
    """ImageNet-ReaL label sets, one per validation image in file order (ILSVRC2012_val_00000001..)."""
    raw = gzip.decompress(_ROOT.joinpath("imagenet/imagenet_real_labels.json.gz").read_bytes())
    return tuple(tuple(x) for x in json.loads(raw))


@functools.cache
def published_results(csv_stem: str):
    """timm's published results CSV `csv_stem` (e.g. 'results-imagenet', a DatasetSpec's `csv`) as a
    DataFrame indexed by model (read once; callers must not modify it).

    Raises:
        FileNotFoundError: no published CSV of that name is packaged.
    """
    import pandas as pd

    with _ROOT.joinpath(f"published/{csv_stem}.csv").open() as f:
        return pd.read_csv(f).set_index("model")


@functools.cache
def published_benchmarks() -> dict[str, "object"]:
    """timm's published benchmark CSVs by file stem, each a DataFrame indexed by architecture (read
    once; callers must not modify them)."""
    import pandas as pd

    out = {}
    for entry in sorted(_ROOT.joinpath("published").iterdir(), key=lambda p: p.name):
        if entry.name.startswith("benchmark-") and entry.name.endswith(".csv"):
            with entry.open() as f:
                out[entry.name[:-4]] = pd.read_csv(f).set_index("model")
    return out


@functools.cache
def published_all_results(csv_stem: str):
    """timm's complete results CSV `csv_stem` (a DatasetSpec's `csv`): every model timm publishes, one
    row per (model, img_size) (some models appear at two test sizes), as a DataFrame with a plain
    index (read once; callers must not modify it)."""
    import pandas as pd

    with _ROOT.joinpath(f"published_all/{csv_stem}.csv").open() as f:
        return pd.read_csv(f)


@functools.cache
def er_baseline_models() -> tuple[str, ...]:
    """The models of timm's cloud trained on ImageNet-1k alone (published_all/er_baseline.txt), the
    effective-robustness baseline's models, as the analysis issue lists them."""
    return tuple(_lines("published_all/er_baseline.txt"))
