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
Every checkpoint belongs to one `FamilyCfg` (the catalog's `families`): the group a card compares it
with, and what the report says about the family as a whole.
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
class SizeRow:
    size: str                        # a size word, a key of the models' size table (vitbench.models)
    timm_orig: bool                  # the size originates in timm
    depth_note: str | None = None    # printed after the depth ('parallel')


@dataclass(frozen=True)
class CardText:
    """Prose of a transformers-style card, for a family whose card is not timm's."""
    heading: str                     # the card's title; '{size}' becomes the architecture's size word
    short_name: str                  # how the prose names the model ('ViT-Hybrid')
    about: str                       # the "Model description" paragraph


@dataclass(frozen=True)
class FamilyCfg:
    name: str                        # key in the catalog's `families`
    title: str                       # the family's name in tables
    # match (see `matches`): these checkpoints, else architectures matching one of these shell
    # patterns ('deit3_*'), else checkpoints of these lineages
    checkpoints: tuple[str, ...]
    architectures: tuple[str, ...]
    lineages: tuple[str, ...]
    papers: tuple[Paper, ...]        # the papers that define the family
    size_table_intro: str | None = None
    size_table: tuple[SizeRow, ...] = ()   # printed on each member's card, in this order
    card_text: CardText | None = None

    def matches(self, name: str, architecture: str, lineage: str) -> tuple[bool, bool, bool]:
        """Whether it matches by checkpoint name, by architecture pattern, by lineage (in precedence order:
        the most specific rule that any family meets decides, so `deit3_*` beats DeiT's lineage)."""
        return (name in self.checkpoints, any(fnmatch.fnmatchcase(architecture, p) for p in self.architectures),
                lineage in self.lineages)


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
    dataset: str                     # what the classifier is trained on last (from the tag)
    pretrain_dataset: str | None     # from the tag, unless the lineage names a more exact one
    fine_tune_datasets: tuple[str, ...]   # the fine-tuning chain, in order ('ImageNet-12k', 'ImageNet-1k')
    original: str
    papers: tuple[Paper, ...]
    citations: tuple[Paper, ...]
    family: str                      # its FamilyCfg's name (get_family)
    # -- a checkpoint the user brings (vitbench.catalog.user); the zoo's leave these as they are
    weights: str | None = None       # its weights: a file, a folder or hf-hub:ORG/NAME[@REV]; None: hf_hub_id
    ema: bool = False                # a training checkpoint: load its EMA weights
    claimed: tuple[tuple[str, float], ...] = ()   # (dataset, top-1 %) the author reports
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


@dataclass(frozen=True)
class TagData:
    """What a tag says about a checkpoint's data (the catalog's `tag_tokens`)."""
    pretrain_dataset: str | None
    fine_tune_datasets: tuple[str, ...]
    dataset: str


def parse_tag(tag: str, tokens: dict, where: str = "") -> TagData:
    """The datasets a tag names: the data tokens before `ft` are the pretraining, those after it the
    fine-tuning chain; without `ft` the one data token is what it was trained on. ValueError for an
    unknown token or a tag that names no dataset or two pretraining datasets."""
    data, other = tokens.get("datasets") or {}, tokens.get("other") or {}
    where = where or f"tag {tag!r}"
    parts = tag.split("_")
    unknown = [t for t in parts if t != "ft" and t not in data and t not in other]
    if unknown or parts.count("ft") > 1:
        raise ValueError(f"catalog: {where}: tag {tag!r} has unknown tokens {unknown or ['ft (twice)']}; add "
                         f"each to `tag_tokens` in checkpoints.yaml, under `datasets` (with the dataset it "
                         f"names) or `other` (a token that names no data)")
    split = parts.index("ft") if "ft" in parts else 0
    before = [data[t] for t in parts[:split] if t in data]
    after = tuple(data[t] for t in parts[split:] if t in data)
    if not after or len(before) > 1 or ("ft" not in parts and len(after) > 1):
        raise ValueError(f"catalog: {where}: tag {tag!r} does not read as [pretraining data]_ft_<dataset>..."
                         f" or <dataset>: data tokens {before} before `ft`, {list(after)} after")
    if "ft" not in parts:
        return TagData(pretrain_dataset=None, fine_tune_datasets=(), dataset=after[0])
    return TagData(pretrain_dataset=before[0] if before else None, fine_tune_datasets=after, dataset=after[-1])


# card facts a tag implies; the catalog states one only where it says something the tag does not
_TAG_FIELDS = ("dataset", "pretrain_dataset", "fine_tune_datasets")


def _tag_facts(name: str, tag: str, merged: dict, explicit: dict, catalog: dict) -> dict:
    """The checkpoint's dataset facts from its tag (a Hub-id name: its lineage's `data_tag`); a fact
    the catalog states explicitly wins only where it differs from the tag's (ImageNet-21k-P)."""
    data_tag = tag or merged.get("data_tag")
    if not data_tag:
        raise ValueError(f"catalog: checkpoint {name!r} has no tag; give its lineage a `data_tag` "
                         f"(how timm would tag it, e.g. in21k_ft_in1k)")
    derived = parse_tag(data_tag, catalog.get("tag_tokens") or {}, f"checkpoint {name!r}")
    facts = {}
    for f in _TAG_FIELDS:
        value = getattr(derived, f)
        if f in explicit:
            stated = tuple(explicit[f]) if isinstance(explicit[f], list) else explicit[f]
            if stated == value:
                raise ValueError(f"catalog: checkpoint {name!r} states {f}: {explicit[f]!r}, which its tag "
                                 f"{data_tag!r} already implies; remove the line (facts the tag implies "
                                 f"are derived, not typed)")
            value = stated
        facts[f] = value
    return facts


def _papers(keys, bib: dict, where: str) -> tuple[Paper, ...]:
    missing = [k for k in keys if k not in bib]
    if missing:
        raise ValueError(f"catalog: {where} cites unknown bibliography keys {missing}")
    return tuple(Paper(key=k, **bib[k]) for k in keys)


_MATCH_KEYS = {"lineages", "checkpoints", "architectures"}
_FAMILY_KEYS = {"title", "match", "papers", "size_table", "card_text"}


def _family(name: str, raw: dict, catalog: dict) -> FamilyCfg:
    where = f"family {name!r}"
    unknown = set(raw) - _FAMILY_KEYS
    match = raw.get("match") or {}
    unknown |= set(match) - _MATCH_KEYS
    if unknown or "title" not in raw or not match:
        raise ValueError(f"catalog: {where} needs `title` and `match` ({', '.join(sorted(_MATCH_KEYS))}); "
                         f"unknown keys: {sorted(unknown) or 'none'}")
    table = raw.get("size_table") or {}
    try:
        rows = tuple(SizeRow(**r) for r in table.get("rows", []))
        card_text = CardText(**raw["card_text"]) if raw.get("card_text") else None
    except TypeError as e:
        raise ValueError(f"catalog: {where}: {e}") from None
    return FamilyCfg(name=name, title=raw["title"], checkpoints=tuple(match.get("checkpoints", ())),
                     architectures=tuple(match.get("architectures", ())),
                     lineages=tuple(match.get("lineages", ())),
                     papers=_papers(raw.get("papers", []), catalog["bibliography"], where),
                     size_table_intro=table.get("intro"), size_table=rows, card_text=card_text)


def _family_of(name: str, architecture: str, lineage: str, families: dict[str, FamilyCfg]) -> str:
    """The family a checkpoint belongs to: the one met by the most specific rule any family meets."""
    hits = {f.name: f.matches(name, architecture, lineage) for f in families.values()}
    for level, rule in enumerate(("checkpoint name", "architecture pattern", "lineage")):
        found = [f for f, h in hits.items() if h[level]]
        if len(found) == 1:
            return found[0]
        if found:
            raise ValueError(f"catalog: checkpoint {name!r} matches families {found} by {rule}; "
                             f"make their `match` rules exclusive")
    raise ValueError(f"catalog: checkpoint {name!r} (architecture {architecture!r}, lineage {lineage!r}) "
                     f"matches no family; add it to a family's `match` in `families`")


def _build(name: str, raw: dict, catalog: dict, families: dict[str, FamilyCfg]) -> CheckpointCfg:
    lineage_name = raw.get("lineage")
    if lineage_name not in catalog["lineages"]:
        raise ValueError(f"catalog: checkpoint {name!r} names unknown lineage {lineage_name!r}")
    lineage = catalog["lineages"][lineage_name]
    merged = {**catalog["defaults"], **lineage, **raw}
    if merged.get("weights_format", "timm") == "timm":
        merged.update(_pretrained_facts(name, raw, lineage))
    bib, where = catalog["bibliography"], f"checkpoint {name!r}"

    if "." in name and "/" not in name:
        architecture, tag = name.split(".", 1)
    else:
        architecture, tag = merged["architecture"], ""
    explicit = {k: v for k, v in {**lineage, **raw}.items() if k in _TAG_FIELDS}
    merged.update(_tag_facts(name, tag, merged, explicit, catalog))
    values = {k: tuple(v) if k in _LIST_FIELDS else v for k, v in merged.items()}
    known = set(CheckpointCfg.__dataclass_fields__)
    extra = {k: v for k, v in values.items() if k not in known and k not in ("architecture", "data_tag")}
    kwargs = {k: v for k, v in values.items() if k in known and k not in _CARD_ONLY}
    kwargs.update(
        name=name,
        architecture=architecture,
        tag=tag,
        lineage=lineage_name,
        hf_hub_id=merged.get("hf_hub_id") or f"timm/{name}",
        source_url=merged.get("source_url"),
        papers=_papers(merged.get("papers", []), bib, where),
        citations=_papers(merged.get("citations", []), bib, where),
        family=_family_of(name, architecture, lineage_name, families),
        extra=extra,
    )
    return CheckpointCfg(**kwargs)


def _load_catalog() -> dict:
    """checkpoints.yaml merged with every catalog/zoo/*.yaml (each may add bibliography, lineages,
    families and checkpoints; a name defined twice is an error)."""
    root = resources.files("vitbench.catalog")
    catalog = yaml.safe_load(root.joinpath("checkpoints.yaml").read_text())
    zoo = root.joinpath("zoo")
    parts = sorted((p for p in zoo.iterdir() if p.name.endswith(".yaml")), key=lambda p: p.name) \
        if zoo.is_dir() else []
    for part in parts:
        extra = yaml.safe_load(part.read_text()) or {}
        for section in ("bibliography", "lineages", "families", "checkpoints"):
            clash = sorted(set(extra.get(section) or {}) & set(catalog.setdefault(section, {})))
            if clash:
                raise ValueError(f"catalog: zoo/{part.name} redefines {section} {clash}")
            catalog[section].update(extra.get(section) or {})
    return catalog


def parse_catalog(catalog: dict) -> tuple[dict[str, CheckpointCfg], dict[str, FamilyCfg]]:
    """Checkpoints and families from the merged catalog (ValueError naming what is wrong)."""
    families = {name: _family(name, raw or {}, catalog) for name, raw in catalog.get("families", {}).items()}
    checkpoints = {name: _build(name, raw or {}, catalog, families) for name, raw in catalog["checkpoints"].items()}
    return checkpoints, families


@functools.cache
def _parsed() -> tuple[dict[str, CheckpointCfg], dict[str, FamilyCfg]]:
    return parse_catalog(_load_catalog())


# Checkpoints users bring (vitbench.catalog.user): catalog files registered by `register_catalog`, and
# hf-hub:/local-dir: names registered when first asked for. Filled at run time, never replaced.
_USER: dict[str, CheckpointCfg] = {}


def _catalog() -> dict[str, CheckpointCfg]:
    return {**_parsed()[0], **_USER} if _USER else _parsed()[0]


def register_catalog(path, ctx) -> list[str]:
    """Register the checkpoints of a user catalog file (`ctx`: a `catalog.user.Context`, which
    `vitbench.models.register_catalog` supplies); returns their names.

    Raises:
        CatalogError: the file cannot be read or an entry is wrong (file, line and field named), or a
            name collides with a registered checkpoint.
    """
    from vitbench.catalog.user import CatalogError, load_catalog

    cfgs = load_catalog(path, _parsed()[0], ctx)
    for cfg in cfgs:
        if cfg.name in _USER and _USER[cfg.name] != cfg:
            raise CatalogError(f"{cfg.original}: entry {cfg.name!r} is registered already by {_USER[cfg.name].original}")
    _USER.update({c.name: c for c in cfgs})
    return [c.name for c in cfgs]


def register_source(name: str, ctx) -> CheckpointCfg:
    """Register an `hf-hub:ORG/NAME[@REV]` or `local-dir:PATH` name (read its config.json once)."""
    from vitbench.catalog.user import source_checkpoint

    if name not in _USER:
        _USER[name] = source_checkpoint(name, _parsed()[0], ctx)
    return _USER[name]


def list_families() -> list[str]:
    """Family names, in catalog order (the families of user checkpoints last)."""
    zoo = list(_parsed()[1])
    return zoo + list(dict.fromkeys(c.family for c in _USER.values() if c.family not in zoo))


def get_family(name: str) -> FamilyCfg:
    """The catalog family `name` (a CheckpointCfg's `family`); a user checkpoint's family is its title."""
    families = _parsed()[1]
    if name not in families and any(c.family == name for c in _USER.values()):
        return FamilyCfg(name=name, title=name, checkpoints=(), architectures=(), lineages=(), papers=())
    if name not in families:
        raise UnknownModelError(f"Unknown family {name!r}.{suggest(name, families)} Known: {', '.join(families)}")
    return families[name]


def suggest(name: str, choices, n: int = 3) -> str:
    """The "Did you mean" part of an unknown-name error."""
    close = difflib.get_close_matches(name, list(choices), n=n, cutoff=0.4)
    return f" Did you mean: {', '.join(close)}?" if close else ""


def list_models(pattern: str = "*") -> list[str]:
    """Registered checkpoint names.

    Args:
        pattern: a shell-style pattern (fnmatch, case-sensitive): 'vit_*rope*', 'deit3_*'.

    Returns:
        The matching names (`arch.tag`, or a registered Hub id), in catalog order.
    """
    return [n for n in _catalog() if fnmatch.fnmatchcase(n, pattern)]


def get_checkpoint(name: str) -> CheckpointCfg:
    """The pretrained config of a registered checkpoint.

    Args:
        name: a registered checkpoint name (`arch.tag`, or a registered Hub id).

    Returns:
        CheckpointCfg: its architecture, input and data settings, head, weight source, license,
        papers and card facts.

    Raises:
        UnknownModelError: `name` is not registered (the message suggests the closest names).
    """
    try:
        return _catalog()[name]
    except KeyError:
        raise UnknownModelError(
            f"Unknown model {name!r}.{suggest(name, _catalog())} "
            f"Run `vitbench list` for all {len(_catalog())} registered checkpoints."
        ) from None


def is_registered(name: str) -> bool:
    """Whether `name` is a zoo checkpoint or a user checkpoint registered in this process (an
    hf-hub:/local-dir: name registers when `get_checkpoint` first resolves it)."""
    return name in _catalog()


def safe_name(checkpoint: str) -> str:
    """A checkpoint name as a file name: a Hub id's '/' becomes '--', as the HF cache writes it."""
    return checkpoint.replace("/", "--")
