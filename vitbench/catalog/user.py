"""Checkpoints users bring, beside the zoo: catalog files and names that load from somewhere.

    checkpoints:                                   # a user catalog (--catalog FILE, VITBENCH_CATALOG)
      - name: my_vit_small.ft_ep300                # arch.tag style; may not collide with a registered name
        architecture: vit_small_patch16_224        # a registered architecture, or `from: hf-hub:...|local-dir:...`
        weights: runs/exp7/checkpoint-300.pth      # a file, a folder, hf-hub:ORG/NAME[@REV]; a glob: one
                                                   #   checkpoint per file, named NAME-<file stem>
        ema: false                                 # a training checkpoint: its EMA weights when true
        data_config: {crop_pct: 0.9, interpolation: bicubic}   # the rest: the architecture's default
        claimed: {imagenet: 81.4}                  # what the author reports; the card checks it
        family: My fine-tunes                      # default: "Your checkpoints"

    hf-hub:ORG/NAME[@REVISION]   a Hub repo; read from the local HF cache first (works offline)
    local-dir:PATH               a local folder

A folder (or repo) is in timm's format (config.json with `architecture` and `pretrained_cfg`) or in
transformers' (config.json with `model_type` / `architectures`, preprocessor_config.json): the latter
registers with weights_format 'transformers', the registered architecture nearest its config's dims,
the data config its image processor gives and the head width of its id2label; its model is built
from its own config.json (vitbench.models.transformers_format).

A checkpoint from here is a `CheckpointCfg` like the zoo's: `list`, runs, records, CSVs and reports
treat it the same. Every error names the file and line (or the folder and config.json) and the field.
The catalog is the lowest floor: what it needs from above (the architectures vitbench has, the
dataset names, fetching a Hub file, reading a transformers folder) comes in a `Context`
(`vitbench.models.user_context()` makes it).
"""
from __future__ import annotations

import glob
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Collection

import yaml

USER_FAMILY = "Your checkpoints"
HUB, LOCAL = "hf-hub:", "local-dir:"
_ENTRY_KEYS = {"name", "architecture", "from", "weights", "ema", "data_config", "claimed", "family",
               "description", "papers", "datasets", "license"}
_DATA_KEYS = {"input_size", "crop_pct", "crop_mode", "interpolation", "mean", "std"}


class CatalogError(ValueError):
    """A user catalog entry or a checkpoint folder that cannot be registered; one line naming where."""


@dataclass(frozen=True)
class Context:
    """What loading user checkpoints needs from the floors above the catalog."""
    architectures: Collection[str]                          # the architectures vitbench can build
    img_size: Callable[[str], int]                          # an architecture's input size
    datasets: Collection[str]                               # dataset names a `claimed` entry may use
    fetch: Callable[[str, str, str | None], Path]           # (repo, file, revision) -> a local file
    # a transformers-format folder -> its facts: `architecture`, the data config fields (and
    # `resize_size`), `num_classes`, and the rest for CheckpointCfg.extra; ValueError naming the file
    read_transformers: Callable[[Path], dict]


def is_source_name(name: str) -> bool:
    return name.startswith((HUB, LOCAL))


def parse_hub(spec: str) -> tuple[str, str | None]:
    """'hf-hub:ORG/NAME@REV' -> ('ORG/NAME', 'REV'); no @REV -> revision None (main)."""
    repo, _, rev = spec[len(HUB):].partition("@")
    if repo.count("/") != 1 or not all(repo.split("/")):
        raise CatalogError(f"{spec!r}: expected hf-hub:ORG/NAME or hf-hub:ORG/NAME@REVISION")
    return repo, rev or None


# ---------------------------------------------------------------------------- defaults

def _architecture_default(architecture: str, zoo: dict, ctx: Context) -> dict:
    """The data config and head of an architecture, as timm's default pretrained config gives them: the
    first zoo checkpoint of that architecture, else timm's generic default."""
    for cfg in zoo.values():                # not its license: a user's weights are not the zoo's
        if cfg.architecture == architecture:
            return {f: getattr(cfg, f) for f in sorted(_DATA_KEYS) + ["num_classes"]}
    size = ctx.img_size(architecture)
    return {"input_size": (3, size, size), "crop_pct": 0.9, "crop_mode": "center", "interpolation": "bicubic",
            "mean": (0.5, 0.5, 0.5), "std": (0.5, 0.5, 0.5), "num_classes": 1000, "license": "unknown"}


def _checkpoint(name: str, architecture: str, facts: dict, where: str, **extra):
    """A CheckpointCfg of a user checkpoint from its data/head facts and card facts."""
    from vitbench.catalog.registry import CheckpointCfg

    data = {k: tuple(v) if isinstance(v, list) else v for k, v in facts.items()}
    return CheckpointCfg(
        name=name, architecture=architecture, tag=name.split(".", 1)[1] if "." in name else "",
        lineage="user", hf_hub_id=extra.pop("hf_hub_id", ""), weights_format=extra.pop("weights_format", "timm"),
        source_url=None, license=str(data.pop("license", "unknown")), num_classes=int(data.pop("num_classes", 1000)),
        model_type="image-classification", library_name=extra.pop("library_name", "timm"),
        description=extra.pop("description", f"A checkpoint of `{architecture}` brought by the user ({where})."),
        dataset=extra.pop("dataset", "ImageNet-1k"), pretrain_dataset=None, fine_tune_datasets=(),
        original=where, papers=extra.pop("papers", ()), citations=(), family=extra.pop("family", USER_FAMILY),
        **{k: data[k] for k in sorted(_DATA_KEYS)}, **extra)


# ---------------------------------------------------------------------------- folders (local-dir:, hf-hub:)

def _read_config(folder: Path, where: str) -> dict:
    import json

    path = folder / "config.json"
    if not path.is_file():
        raise CatalogError(f"{where}: no config.json in {folder} (a timm-format folder holds config.json "
                           f"and model.safetensors or pytorch_model.bin)")
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise CatalogError(f"{path}: not readable JSON ({e})") from None


def from_config(name: str, folder: Path, where: str, zoo: dict, ctx: Context, **extra):
    """The CheckpointCfg of a folder: timm's config.json (`architecture` and `pretrained_cfg`: input_size,
    crop_pct, crop_mode, interpolation, mean, std, num_classes, license) or transformers' (`model_type`
    / `architectures`, read by `ctx.read_transformers`)."""
    config = _read_config(folder, where)
    if not config.get("architecture") and (config.get("model_type") or config.get("architectures")):
        return _from_transformers(name, folder, ctx, where, **extra)
    arch = config.get("architecture")
    if not arch:
        raise CatalogError(f"{folder / 'config.json'}: neither timm's format (`architecture`, `pretrained_cfg`) "
                           f"nor transformers' (`model_type`, `architectures`)")
    _check_architecture(arch, f"{folder / 'config.json'}: architecture", ctx)
    facts = _architecture_default(arch, zoo, ctx)
    pre = config.get("pretrained_cfg") or {}
    facts.update({k: pre[k] for k in _DATA_KEYS | {"license"} if pre.get(k) is not None})
    facts["num_classes"] = config.get("num_classes", pre.get("num_classes", facts["num_classes"]))
    extra.setdefault("extra", {})["model_args"] = dict(config.get("model_args") or {})
    return _checkpoint(name, arch, facts, where, **extra)


def _from_transformers(name: str, folder: Path, ctx: Context, where: str, **extra):
    """A transformers-format folder: built from its own config.json; the architecture it registers
    under is the nearest registered one (`extra['differs_from_architecture']` says how it differs)."""
    try:
        facts = dict(ctx.read_transformers(folder))
    except ValueError as e:
        raise CatalogError(str(e)) from None
    arch = facts.pop("architecture")
    data = {k: facts.pop(k) for k in sorted(_DATA_KEYS | {"num_classes"})}
    differs = ", ".join(f"{k} {v}" for k, v in (facts.get("differs_from_architecture") or {}).items())
    extra.setdefault("description", f"A transformers `{facts.get('transformers_class')}` checkpoint brought by the "
                                    f"user ({where}), built from its own config.json: "
                                    + (f"`{arch}` but for {differs}." if differs else f"a `{arch}`."))
    extra.setdefault("extra", {}).update(facts, config_dir=str(folder))
    return _checkpoint(name, arch, data, where, weights_format="transformers", library_name="transformers",
                       **extra)


def _check_architecture(arch: str, where: str, ctx: Context) -> None:
    from vitbench.catalog.registry import suggest

    known = sorted(ctx.architectures)
    if arch not in known:
        raise CatalogError(f"{where} {arch!r} is not an architecture vitbench has.{suggest(arch, known)} "
                           f"(`vitbench list` shows the registered checkpoints)")


def source_checkpoint(name: str, zoo: dict, ctx: Context):
    """The CheckpointCfg of an `hf-hub:ORG/NAME[@REV]` or `local-dir:PATH` name."""
    if name.startswith(LOCAL):
        folder = Path(name[len(LOCAL):]).expanduser()
        if not folder.is_dir():
            raise CatalogError(f"{name}: {folder} is not a folder")
        return from_config(name, folder, f"local folder {folder}", zoo, ctx, weights=str(folder.resolve()))
    repo, rev = parse_hub(name)
    config = ctx.fetch(repo, "config.json", rev)
    if _is_transformers(config):           # its image processor's settings, when the repo has them
        try:
            ctx.fetch(repo, "preprocessor_config.json", rev)
        except CatalogError:
            pass                           # none: the processor's defaults, as transformers takes them
    return from_config(name, config.parent, f"Hub repo {repo}" + (f"@{rev}" if rev else ""), zoo, ctx,
                       hf_hub_id=repo, weights=name)


def _is_transformers(config: Path) -> bool:
    import json

    try:
        data = json.loads(config.read_text())
    except (OSError, ValueError):
        return False                       # from_config says what is wrong with it
    return isinstance(data, dict) and "architecture" not in data and "model_type" in data


# ---------------------------------------------------------------------------- catalog files

def _lines(text: str) -> list[int]:
    """The 1-based line of each entry of the file's `checkpoints` list (for messages)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return []
    for key, value in getattr(root, "value", []):
        if getattr(key, "value", None) == "checkpoints" and isinstance(value, yaml.SequenceNode):
            return [item.start_mark.line + 1 for item in value.value]
    return []


def load_catalog(path: str | Path, zoo: dict, ctx: Context) -> list:
    """The checkpoints of one user catalog file (CatalogError naming the file, line and field)."""
    path = Path(path).expanduser()
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise CatalogError(f"--catalog {path}: cannot read it ({e.strerror or e})") from None
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        start, mark = getattr(e, "context_mark", None), getattr(e, "problem_mark", None)
        at = f":{(start or mark).line + 1}" if (start or mark) is not None else ""
        what = " ".join(str(x) for x in (getattr(e, "context", None), getattr(e, "problem", None)) if x) or str(e)
        seen = f" at line {mark.line + 1}" if start is not None and mark is not None else ""
        raise CatalogError(f"{path}{at}: not valid YAML ({what}{seen})") from None
    entries = data.get("checkpoints") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise CatalogError(f"{path}: expected a `checkpoints:` list of entries (name, architecture, weights, ...)")
    lines = _lines(text)
    out = []
    for i, raw in enumerate(entries):
        where = f"{path}:{lines[i]}" if i < len(lines) else f"{path} (entry {i + 1})"
        out += [replace(c, extra={**c.extra, "catalog": str(path)}) for c in _entry(raw, where, path.parent, zoo, ctx)]
    return out


def _entry(raw, where: str, base: Path, zoo: dict, ctx: Context) -> list:
    if not isinstance(raw, dict) or not raw.get("name"):
        raise CatalogError(f"{where}: each entry needs a `name`")
    name = str(raw["name"])
    at = f"{where}: entry {name!r}"
    unknown = sorted(set(raw) - _ENTRY_KEYS)
    if unknown:
        raise CatalogError(f"{at}: unknown field(s) {unknown}; known: {', '.join(sorted(_ENTRY_KEYS))}")
    if name in zoo:
        raise CatalogError(f"{at}: the name collides with a registered checkpoint; choose another "
                           f"(e.g. {name.split('.')[0]}.my_tag)")
    if is_source_name(name) or "/" in name:
        raise CatalogError(f"{at}: a name is `arch.tag` style, without '/' or a hf-hub:/local-dir: prefix")
    card = {"description": raw.get("description"), "family": raw.get("family") or USER_FAMILY,
            "dataset": raw.get("datasets") or "ImageNet-1k"}
    card = {k: str(v) if not isinstance(v, list) else ", ".join(map(str, v)) for k, v in card.items() if v}
    papers = _papers(raw.get("papers"), at)
    claimed = _claimed(raw.get("claimed"), at, ctx)
    ema = bool(raw.get("ema", False))
    if raw.get("from"):
        src = str(raw["from"])
        if not is_source_name(src):
            raise CatalogError(f"{at}: field 'from': expected hf-hub:ORG/NAME[@REV] or local-dir:PATH, got {src!r}")
        if src.startswith(LOCAL) and not Path(src[len(LOCAL):]).expanduser().is_absolute():
            src = LOCAL + str((base / src[len(LOCAL):]).resolve())
        base_cfg = source_checkpoint(src, zoo, ctx)
        own = {k: v for k, v in card.items() if k != "dataset"} | ({"papers": papers} if papers else {})
        return [replace(base_cfg, name=name, claimed=claimed, ema=ema, original=where, **own,
                        **({"license": str(raw["license"])} if raw.get("license") else {}))]
    arch = raw.get("architecture")
    if not arch:
        raise CatalogError(f"{at}: needs `architecture` (a registered architecture) or `from` (hf-hub:/local-dir:)")
    _check_architecture(str(arch), f"{at}: field 'architecture':", ctx)
    facts = _architecture_default(str(arch), zoo, ctx)
    dc = raw.get("data_config") or {}
    bad = sorted(set(dc) - _DATA_KEYS) if isinstance(dc, dict) else ["(not a mapping)"]
    if bad:
        raise CatalogError(f"{at}: field 'data_config': unknown {bad}; known: {', '.join(sorted(_DATA_KEYS))}")
    facts.update(dc)
    if raw.get("license"):
        facts["license"] = raw["license"]
    weights = raw.get("weights")
    if not weights:
        raise CatalogError(f"{at}: needs `weights` (a file, a folder or hf-hub:ORG/NAME)")
    files = _weight_files(str(weights), base, at)
    if not glob.has_magic(str(weights)):
        return [_checkpoint(name, str(arch), facts, where, weights=files[0][1], ema=ema, claimed=claimed,
                            papers=papers, **card)]
    # a glob: one checkpoint per file, in the files' natural order, the series the report plots
    return [_checkpoint(f"{name}-{stem}", str(arch), facts, where, weights=w, ema=ema, claimed=claimed,
                        papers=papers, extra={"series": name}, **card) for stem, w in files]


def _weight_files(weights: str, base: Path, at: str) -> list[tuple[str, str]]:
    """(stem, file or hf-hub spec) of an entry's `weights`; a glob gives one per file, in name order."""
    if weights.startswith(HUB):
        parse_hub(weights)
        return [("", weights)]
    path = Path(weights).expanduser()
    path = path if path.is_absolute() else base / path
    if glob.has_magic(str(path)):
        found = sorted(glob.glob(str(path)), key=natural_key)
        if not found:
            raise CatalogError(f"{at}: field 'weights': no file matches {path}")
        return [(Path(f).stem, str(Path(f).resolve())) for f in found]
    if not path.exists():
        raise CatalogError(f"{at}: field 'weights': {path} does not exist")
    return [(path.stem, str(path.resolve()))]


def _papers(raw, at: str) -> tuple:
    """An entry's `papers`: a list of URLs or of {title, url} mappings (the card lists them)."""
    from vitbench.catalog.registry import Paper

    if raw is None:
        return ()
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        title, url = (item.get("title"), item.get("url")) if isinstance(item, dict) else (None, item)
        if not isinstance(url, str) or not url:
            raise CatalogError(f"{at}: field 'papers': expected a list of URLs or of {{title, url}}, got {item!r}")
        out.append(Paper(key=url, title=str(title or url), url=url, bibtex=""))
    return tuple(out)


def natural_key(text: str) -> list:
    """Sort key that orders numbers by value: checkpoint-2 before checkpoint-10."""
    return [(0, int(t), "") if t.isdigit() else (1, 0, t) for t in re.split(r"(\d+)", text)]


def _claimed(raw, at: str, ctx: Context) -> tuple[tuple[str, float], ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise CatalogError(f"{at}: field 'claimed': expected {{dataset: top-1 percent}}, e.g. {{imagenet: 81.4}}")
    out = []
    for ds, v in raw.items():
        if ds not in ctx.datasets:
            raise CatalogError(f"{at}: field 'claimed': unknown dataset {ds!r}; known: {', '.join(ctx.datasets)}")
        try:
            out.append((str(ds), float(v)))
        except (TypeError, ValueError):
            raise CatalogError(f"{at}: field 'claimed': {ds}: {v!r} is not a number (top-1 in percent)") from None
    return tuple(out)


def catalog_paths(flags: list[str] | None = None) -> list[Path]:
    """The user catalogs to load: VITBENCH_CATALOG (a path list) then each --catalog FILE."""
    env = [p for p in os.environ.get("VITBENCH_CATALOG", "").split(os.pathsep) if p]
    return [Path(p) for p in env + list(flags or [])]
