"""The checkpoint registry: every checkpoint vitbench knows.

Two sources, each fact in one place:
- `catalog/timm_pretrained.json`: timm's pretrained config of every zoo checkpoint (input_size,
  crop_pct, crop_mode, interpolation, mean, std, num_classes, hf_hub_id, license), as timm 1.0.31
  states it (copied from the reference; never edited by hand).
- `catalog/checkpoints.yaml` and `catalog/zoo/*.yaml`: which checkpoints are registered, with the
  card facts of their lineage (description, papers, datasets, origin). A timm checkpoint's YAML entry
  may not restate a pretrained-config fact; a transformers-format checkpoint states its own.

A checkpoint is `arch.tag` (timm's naming; the tag names the data lineage) or, for a
transformers-format checkpoint, its Hub id. Its `CheckpointCfg` carries everything downstream
stages need: the weight source, the eval data config and the facts a model card prints.
"""
from __future__ import annotations

import difflib
import fnmatch
import functools
from dataclasses import dataclass, field
from importlib import resources

import yaml


class UnknownModelError(KeyError):
    """An unknown checkpoint or architecture name; the message suggests the closest names."""

    def __str__(self) -> str:  # KeyError would quote the whole message
        return str(self.args[0])


@dataclass(frozen=True)
class Paper:
    key: str
    title: str
    url: str
    bibtex: str


@dataclass(frozen=True)
class CheckpointCfg:
    name: str                        # registry key: `arch.tag`, or a Hub id for transformers format
    architecture: str                # model builder name (see vitbench.models)
    tag: str                         # data lineage tag (`augreg2_in21k_ft_in1k`), '' for Hub-id names
    lineage: str
    # -- weight source
    hf_hub_id: str
    weights_format: str              # 'timm' (timm state-dict keys) or 'transformers' (ViTHybrid folder)
    source_url: str | None           # the original release the Hub weights were ported from
    license: str
    # -- input & data
    input_size: tuple[int, int, int]
    crop_pct: float
    crop_mode: str                   # 'center' | 'squash' | 'border'
    interpolation: str               # PIL filter name: 'bicubic' | 'bilinear' | ...
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    # -- head
    num_classes: int
    # -- card facts
    model_type: str
    library_name: str
    description: str
    dataset: str
    pretrain_dataset: str | None
    original: str
    papers: tuple[Paper, ...]
    citations: tuple[Paper, ...]
    size_table: str | None = None    # name of a size table the card prints ('sbb'), if any
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def img_size(self) -> int:
        return self.input_size[-1]


_LIST_FIELDS = {"input_size", "mean", "std"}
_CARD_ONLY = {"papers", "citations"}
# timm's pretrained-config facts: for a timm checkpoint these come from timm_pretrained.json only
PRETRAINED_FIELDS = ("input_size", "crop_pct", "crop_mode", "interpolation", "mean", "std", "num_classes",
                     "hf_hub_id", "license")


@functools.cache
def timm_pretrained() -> dict[str, dict]:
    """timm's pretrained config of every zoo checkpoint, by `arch.tag`."""
    import json

    return json.loads(resources.files("vitbench.catalog").joinpath("timm_pretrained.json").read_text())


def _pretrained_facts(name: str, raw: dict, lineage: dict) -> dict:
    """The pretrained-config facts of timm checkpoint `name`, from timm_pretrained.json alone."""
    restated = sorted(f for f in PRETRAINED_FIELDS if f in raw or f in lineage)
    if restated:
        raise ValueError(f"catalog: timm checkpoint {name!r} restates {restated}; these come from "
                         f"timm_pretrained.json (one place per fact)")
    try:
        ref = timm_pretrained()[name]
    except KeyError:
        raise ValueError(f"catalog: timm checkpoint {name!r} is not in timm_pretrained.json") from None
    return {f: ref[f] for f in PRETRAINED_FIELDS}


def _build(name: str, raw: dict, catalog: dict) -> CheckpointCfg:
    lineage_name = raw.get("lineage")
    if lineage_name not in catalog["lineages"]:
        raise ValueError(f"catalog: checkpoint {name!r} names unknown lineage {lineage_name!r}")
    lineage = catalog["lineages"][lineage_name]
    merged = {**catalog["defaults"], **lineage, **raw}
    if merged.get("weights_format", "timm") == "timm":
        merged.update(_pretrained_facts(name, raw, lineage))
    bib = catalog["bibliography"]

    def papers(keys):
        missing = [k for k in keys if k not in bib]
        if missing:
            raise ValueError(f"catalog: checkpoint {name!r} cites unknown bibliography keys {missing}")
        return tuple(Paper(key=k, **bib[k]) for k in keys)

    if "." in name and "/" not in name:
        architecture, tag = name.split(".", 1)
    else:
        architecture, tag = merged["architecture"], ""
    values = {k: tuple(v) if k in _LIST_FIELDS else v for k, v in merged.items()}
    known = set(CheckpointCfg.__dataclass_fields__)
    extra = {k: v for k, v in values.items() if k not in known and k not in ("architecture",)}
    kwargs = {k: v for k, v in values.items() if k in known and k not in _CARD_ONLY}
    kwargs.update(
        name=name,
        architecture=architecture,
        tag=tag,
        lineage=lineage_name,
        hf_hub_id=merged.get("hf_hub_id") or f"timm/{name}",
        source_url=merged.get("source_url"),
        papers=papers(merged.get("papers", [])),
        citations=papers(merged.get("citations", [])),
        extra=extra,
    )
    return CheckpointCfg(**kwargs)


def _load_catalog() -> dict:
    """checkpoints.yaml merged with every catalog/zoo/*.yaml (each may add bibliography, lineages and
    checkpoints; a name defined twice is an error)."""
    root = resources.files("vitbench.catalog")
    catalog = yaml.safe_load(root.joinpath("checkpoints.yaml").read_text())
    zoo = root.joinpath("zoo")
    parts = sorted((p for p in zoo.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name) \
        if zoo.is_dir() else []
    for part in parts:
        extra = yaml.safe_load(part.read_text()) or {}
        for section in ("bibliography", "lineages", "checkpoints"):
            clash = sorted(set(extra.get(section) or {}) & set(catalog.setdefault(section, {})))
            if clash:
                raise ValueError(f"catalog: zoo/{part.name} redefines {section} {clash}")
            catalog[section].update(extra.get(section) or {})
    return catalog


@functools.cache
def _catalog() -> dict[str, CheckpointCfg]:
    catalog = _load_catalog()
    return {name: _build(name, raw or {}, catalog) for name, raw in catalog["checkpoints"].items()}


def suggest(name: str, choices, n: int = 3) -> str:
    """The "Did you mean" part of an unknown-name error."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.4)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def list_models(pattern: str = "*") -> list[str]:
    """Registered checkpoint names matching a shell-style `pattern`, in catalog order."""
    return [n for n in _catalog() if fnmatch.fnmatchcase(n, pattern)]


def get_checkpoint(name: str) -> CheckpointCfg:
    """The registered checkpoint `name`; an unknown name raises UnknownModelError with suggestions."""
    try:
        return _catalog()[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown model {name!r}.{suggest(name, _catalog())} "
            f"Run `vitbench list` for all {len(_catalog())} registered checkpoints."
        ) from None


def is_registered(name: str) -> bool:
    return name in _catalog()
