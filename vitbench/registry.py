"""The checkpoint registry: every checkpoint vitbench knows, loaded from `catalog/checkpoints.yaml`.

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


def _build(name: str, raw: dict, catalog: dict) -> CheckpointCfg:
    lineage_name = raw.get("lineage")
    if lineage_name not in catalog["lineages"]:
        raise ValueError(f"catalog: checkpoint {name!r} names unknown lineage {lineage_name!r}")
    merged = {**catalog["defaults"], **catalog["lineages"][lineage_name], **raw}
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


@functools.cache
def _catalog() -> dict[str, CheckpointCfg]:
    text = resources.files("vitbench.catalog").joinpath("checkpoints.yaml").read_text()
    catalog = yaml.safe_load(text)
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
