"""What the reports say about a checkpoint that comes from the catalog and the models, not from the
records: its family titles, pretraining data, Hub link and the text the HTML filter matches."""
from __future__ import annotations

import functools
from dataclasses import dataclass

from vitbench.catalog.registry import get_checkpoint, get_family, is_registered, list_families
from vitbench.report.tables import Row

HF_URL = "https://huggingface.co/{}"

__all__ = ["hub_url", "family_title", "facts", "by_family", "checkpoint_row", "Facts"]


def hub_url(name: str) -> str | None:
    """The checkpoint's Hub page (None for a name the registry does not know, or one with no Hub repo)."""
    return HF_URL.format(get_checkpoint(name).hf_hub_id) if is_registered(name) and get_checkpoint(name).hf_hub_id \
        else None


def family_title(name: str) -> str:
    """The catalog family of a checkpoint, as tables name it ('' for a name the registry does not know)."""
    return get_family(get_checkpoint(name).family).title if is_registered(name) else ""


@dataclass(frozen=True)
class Facts:
    family: str                    # the catalog family's title
    pretraining: str               # the data chain: 'ImageNet-21k → ImageNet-1k'
    img_size: str
    search: str                    # what the HTML filter matches, lower case


@functools.cache
def facts(name: str) -> Facts:
    """A checkpoint's name, catalog family and model family (what builds it), lineage, pretraining data
    and image size, as the HTML shows and filters them."""
    if not is_registered(name):
        return Facts("", "", "", name.lower())
    from vitbench.models import model_family

    cfg = get_checkpoint(name)
    chain = ([cfg.pretrain_dataset] if cfg.pretrain_dataset else []) + list(cfg.fine_tune_datasets)
    pre = " → ".join(chain) if chain else cfg.dataset
    fam = family_title(name)
    words = [name, fam, model_family(cfg.architecture).title, cfg.lineage, pre, f"{cfg.img_size} {cfg.img_size}px"]
    return Facts(fam, pre, str(cfg.img_size), " ".join(words).lower())


def by_family(names: list[str]) -> list[tuple[str, list[str]]]:
    """The checkpoints grouped by catalog family (its title), families in catalog order, names in the
    given order."""
    groups: dict[str, list[str]] = {}
    for name in names:
        groups.setdefault(get_checkpoint(name).family, []).append(name)
    return [(get_family(f).title, groups[f]) for f in list_families() if f in groups]


def checkpoint_row(name: str, cells, store, cls: str = "", search: str = "") -> Row:
    """A table row about checkpoint `name`: the HTML filter matches its facts (and `search`), the
    GMACs ceiling its stats record's GMACs."""
    s = store.stats.get(name)
    return Row(tuple(cells), " ".join(filter(None, [facts(name).search, search])), s.gmacs if s else None, cls)
