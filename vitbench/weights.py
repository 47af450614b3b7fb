"""Weights: find a checkpoint's weight file and load it strictly, with errors that say what to do.

Where weights come from, in order (`resolve_weights`):

1. an explicit `weights` path: a weight file, or a transformers folder (config.json + model.safetensors
   or pytorch_model.bin);
2. `weights_dir`: `<checkpoint>.safetensors|.pth|.bin` or a transformers folder `<checkpoint>/`; a Hub
   id such as `google/vit-hybrid-base-bit-384` may appear as `google--vit-hybrid-base-bit-384` or as the
   nested path `google/vit-hybrid-base-bit-384`;
3. the local Hugging Face cache (works with HF_HUB_OFFLINE=1), then the Hub itself.

Loading (`load_weights`) reads the file without running pickled code, applies the model family's
`checkpoint_filter_fn` (the one place keys are remapped) and checks every key and shape before
`load_state_dict(strict=True)`: a mismatch is an error naming the file and the keys, never a silent
partial load.
"""
from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn

from vitbench import hub
from vitbench.catalog.registry import safe_name
from vitbench.hub import hf_cache_dir, hub_offline

FILE_SUFFIXES = (".safetensors", ".pth", ".bin")        # looked for in a weights dir, in this order
TORCH_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt")        # read with torch.load(weights_only=True)
HUB_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")   # in a transformers folder / Hub repo
HUB_CONFIG_FILES = ("config.json", "preprocessor_config.json")  # transformers format; the first required
# training checkpoints (timm's train.py, DeiT's, Lightning-style) keep the model's weights under one of
# these entries, and the EMA weights, when there are any, under one of the second
MODEL_ENTRIES = ("state_dict", "model")
EMA_ENTRIES = ("state_dict_ema", "model_ema", "model_ema_state_dict")
_PREFIXES = ("module.", "_orig_mod.")                    # DataParallel / DDP, torch.compile
_SHOW = 10                                               # keys listed per kind of mismatch


@dataclass
class WeightsInfo:
    """Where a model's weights came from, as its records state it."""
    source: str                    # 'file' | 'weights-dir' | 'hf-cache' | 'hf-hub' | 'python'
    path: str | None               # resolved file (or transformers folder)
    sha256: str | None             # of the weight file
    entry: str | None = None       # the entry of a training checkpoint that was loaded ('state_dict_ema', ...)
    repo: str | None = None        # the Hub repo of weights from the HF cache or the Hub (None: a local path)
    revision: str | None = None    # that repo's commit sha (its HF cache snapshot)
    files: dict[str, str] | None = None   # sha256 of config.json / preprocessor_config.json read with them


class WeightsNotFoundError(FileNotFoundError):
    """No weights for a checkpoint anywhere vitbench looked; the message lists the places and the fixes."""


class WeightsLoadError(RuntimeError):
    """A weight file that cannot be read, or whose keys/shapes do not match the model."""


# ---------------------------------------------------------------------------- resolving

@dataclass(frozen=True)
class ResolvedWeights:
    path: Path          # the weight file, or a transformers folder
    source: str         # 'file' | 'weights-dir' | 'hf-cache' | 'hf-hub'

    @property
    def file(self) -> Path:
        """The weight file itself (inside the folder for a transformers folder)."""
        return _file_read(self.path)

    def sha256(self) -> str:
        return file_sha256(self.file)

    def info(self, entry: str | None = None) -> WeightsInfo:
        repo, revision = hub_snapshot(self.path)
        folder = self.path if self.path.is_dir() else self.path.parent if repo else None
        files = {f: file_sha256(folder / f) for f in HUB_CONFIG_FILES if folder and (folder / f).is_file()}
        return WeightsInfo(source=self.source, path=str(self.path), sha256=self.sha256(), entry=entry,
                           repo=repo, revision=revision, files=files or None)


def hub_snapshot(path: Path) -> tuple[str | None, str | None]:
    """(repo, revision) of a path inside an HF cache snapshot (`models--ORG--NAME/snapshots/<sha>/...`),
    else (None, None)."""
    parts = Path(path).parts
    for i in range(1, len(parts) - 1):
        if parts[i] == "snapshots" and parts[i - 1].startswith("models--"):
            return parts[i - 1][len("models--"):].replace("--", "/"), parts[i + 1]
    return None, None


_SHA_CACHE: dict[str, str] = {}


def sha_cache_file() -> Path:
    """Where weight hashes are kept between runs: $VITBENCH_CACHE/sha256.json, else
    $XDG_CACHE_HOME/vitbench/ (~/.cache/vitbench/)."""
    root = os.environ.get("VITBENCH_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "vitbench")
    return Path(root) / "sha256.json"


def _stored_hashes(path: Path) -> dict[str, str]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (following symlinks, as in the HF cache), cached by path, size and mtime,
    in memory and in `sha_cache_file()`, so a rerun does not read gigabytes of weights again (a file
    rewritten in place changes its mtime, and is hashed again)."""
    path = Path(path)
    st = path.stat()
    key = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"
    if key not in _SHA_CACHE:
        store = sha_cache_file()
        known = _stored_hashes(store)
        if key not in known:
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            known = {**_stored_hashes(store), key: h.hexdigest()}
            try:                                        # temp file + rename: readers never see half a file
                store.parent.mkdir(parents=True, exist_ok=True)
                tmp = store.with_name(f".{store.name}.{os.getpid()}.tmp")
                tmp.write_text(json.dumps(known, indent=0, sort_keys=True))
                os.replace(tmp, store)
            except OSError:
                pass                                    # a read-only home: the memory cache still holds
        _SHA_CACHE[key] = known[key]
    return _SHA_CACHE[key]


def is_transformers_folder(path: Path) -> bool:
    return path.is_dir() and (path / "config.json").is_file() and any(
        (path / f).is_file() for f in HUB_WEIGHT_FILES)


def weight_file(path: str | Path) -> Path:
    """The file to read for `path`: itself, or a transformers folder's model.safetensors/pytorch_model.bin."""
    path = Path(path)
    if not path.is_dir():
        return path
    for f in HUB_WEIGHT_FILES:
        if (path / f).is_file():
            return path / f
    present = sorted(p.name for p in path.iterdir())[:_SHOW]
    raise WeightsLoadError(
        f"{path}: a folder without {' or '.join(HUB_WEIGHT_FILES)} "
        f"(it holds: {', '.join(present) or 'nothing'}). "
        f"Point at a weight file, or at a transformers folder holding config.json and model.safetensors."
    )


def _checkpoint_source(name: str) -> tuple[str | None, str, str | None, str | None]:
    """(Hub repo, weights_format, revision, the checkpoint's own `weights`) of a registered checkpoint;
    (None, 'timm', None, None) for a bare architecture."""
    from vitbench.catalog.registry import get_checkpoint, is_registered

    if not is_registered(name):
        return None, "timm", None, None
    cfg = get_checkpoint(name)
    if cfg.weights and cfg.weights.startswith("hf-hub:"):
        repo, _, rev = cfg.weights[len("hf-hub:"):].partition("@")
        return repo, cfg.weights_format, rev or None, None
    return cfg.hf_hub_id or None, cfg.weights_format, None, cfg.weights


def _explicit(weights: Path) -> ResolvedWeights:
    if weights.is_file() or is_transformers_folder(weights):
        return ResolvedWeights(weights, "file")
    if weights.is_dir():
        has = [f for f in HUB_WEIGHT_FILES if (weights / f).is_file()]
        lacks = ", ".join(["config.json"] * (not (weights / "config.json").is_file())
                          + [" or ".join(HUB_WEIGHT_FILES)] * (not has))
        raise WeightsNotFoundError(
            f"{weights}: not a transformers folder, it lacks {lacks} (given explicitly as `weights`). "
            f"Point `weights` at a weight file, or at a folder holding config.json and model.safetensors.")
    raise WeightsNotFoundError(f"Weights file {weights} does not exist (given explicitly as `weights`).")


def _dir_stems(name: str, weights_dir: Path) -> list[Path]:
    """`<checkpoint>` in a weights dir; a Hub id as `org--name` and as the nested path `org/name`."""
    return [weights_dir / safe_name(name)] + ([weights_dir / name] if "/" in name else [])


def _from_weights_dir(name: str, weights_dir: Path, looked: list[str]) -> ResolvedWeights | None:
    stems = _dir_stems(name, weights_dir)
    for stem in stems:
        for p in [stem.with_name(stem.name + sfx) for sfx in FILE_SUFFIXES] + [stem]:
            if p.is_file() or is_transformers_folder(p):
                return ResolvedWeights(p, "weights-dir")
    shown = " or ".join(f"{s.relative_to(weights_dir)}{{{','.join(FILE_SUFFIXES)}}}" for s in stems)
    folders = " or ".join(f"{s.relative_to(weights_dir)}/" for s in stems)
    exists = "" if weights_dir.is_dir() else " (the folder does not exist)"
    looked.append(f"weights dir {weights_dir}{exists}: no {shown}, nor a folder {folders} holding "
                  f"config.json and {' or '.join(HUB_WEIGHT_FILES)}")
    return None


def _cached_file(repo_id: str, filename: str, cache_dir: Path, revision: str | None = None) -> Path | None:
    """A file of `repo_id` in the local HF cache: the `main` snapshot (or `revision`) first, then (no
    revision asked for) any other snapshot."""
    from huggingface_hub import try_to_load_from_cache

    try:
        found = try_to_load_from_cache(repo_id, filename, cache_dir=str(cache_dir), revision=revision)
    except Exception:   # a malformed repo id or cache entry is just "not cached"
        found = None
    if isinstance(found, str) and Path(found).is_file():
        return Path(found)
    if revision is not None:
        return None
    snapshots = cache_dir / f"models--{repo_id.replace('/', '--')}" / "snapshots"
    if snapshots.is_dir():
        hits = [p / filename for p in snapshots.iterdir() if (p / filename).is_file()]
        if hits:
            return max(hits, key=lambda p: p.stat().st_mtime)
    return None


def _from_hf_cache(repo_id: str, fmt: str, cache_dir: Path, looked: list[str],
                   revision: str | None = None) -> ResolvedWeights | None:
    for fname in HUB_WEIGHT_FILES:
        found = _cached_file(repo_id, fname, cache_dir, revision)
        if found is None:
            continue
        if fmt != "transformers":
            return ResolvedWeights(found, "hf-cache")
        if (found.parent / "config.json").is_file():
            return ResolvedWeights(found.parent, "hf-cache")
    looked.append(f"HF cache {cache_dir}: repo {repo_id} has no cached "
                  f"{' or '.join(HUB_WEIGHT_FILES)}{' with config.json' if fmt == 'transformers' else ''}")
    return None


def _from_hub(repo_id: str, fmt: str, cache_dir: Path, looked: list[str],
              revision: str | None = None) -> ResolvedWeights | None:
    """Download from the Hub; every failure becomes a line in `looked`, never an exception."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.utils import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
    )

    if hub_offline():
        looked.append(f"HF hub {repo_id}: not asked, offline (HF_HUB_OFFLINE=1)")
        return None
    unreachable = hub.HUB.unreachable()          # probed once per process
    if unreachable:
        looked.append(f"HF hub {repo_id}: unreachable ({unreachable})")
        return None
    def download(fname: str) -> Path:
        try:
            return Path(hf_hub_download(repo_id, fname, cache_dir=str(cache_dir), revision=revision))
        except LocalEntryNotFoundError:   # the connection failed and nothing is cached
            raise ConnectionError(f"no connection while fetching {fname}") from None

    try:
        missing = []
        for fname in HUB_WEIGHT_FILES:
            try:
                path = download(fname)
            except EntryNotFoundError:
                missing.append(fname)
                continue
            if fmt != "transformers":
                return ResolvedWeights(path, "hf-hub")
            try:
                download(HUB_CONFIG_FILES[0])
            except EntryNotFoundError:
                looked.append(f"HF hub {repo_id}: has {fname} but no config.json (transformers format)")
                return None
            try:
                download(HUB_CONFIG_FILES[1])
            except EntryNotFoundError:
                pass   # optional: vitbench takes preprocessing from its registry
            return ResolvedWeights(path.parent, "hf-hub")
    except RepositoryNotFoundError as e:   # also gated repos
        looked.append(f"HF hub {repo_id}: repository not found or not accessible ({type(e).__name__}; "
                      f"a gated or private repo needs `hf auth login`)")
        return None
    except Exception as e:   # network down, DNS, timeouts, HTTP 5xx: a clear line, not a traceback
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        reason = f"{type(e).__name__}: {first}" if first else type(e).__name__
        hub.HUB.mark_unreachable(reason)
        looked.append(f"HF hub {repo_id}: unreachable ({reason})")
        return None
    looked.append(f"HF hub {repo_id}: the repository has none of {', '.join(missing)}")
    return None


def _not_found_message(name: str, repo_id: str | None, looked: list[str]) -> str:
    places = "\n".join(f"  - {line}" for line in looked)
    fixes = [f"--weights-dir DIR holding DIR/{safe_name(name)}.safetensors (or .pth/.bin, or a "
             f"transformers folder DIR/{safe_name(name)}/ with config.json and model.safetensors)"]
    if repo_id:
        fixes.append(f"`hf download {repo_id}` (older clients: `huggingface-cli download {repo_id}`) "
                     f"on a machine with network, then copy the HF cache; it is used offline too")
    fixes.append("HF_HOME=DIR (or HF_HUB_CACHE=DIR/hub) pointing at an existing Hugging Face cache")
    fixes.append("an explicit file: create_model(name, weights=PATH)")
    # the first line stands alone (tables quote it): where it looked, in short
    short = "; ".join(line.split(":", 1)[0] for line in looked)
    return (f"No weights found for {name!r} ({short}). Looked in:\n{places}\nProvide weights with one of:\n"
            + "\n".join(f"  - {f}" for f in fixes))


def resolve_weights(name: str, weights: str | Path | None = None,
                    weights_dir: str | Path | None = None) -> ResolvedWeights:
    """Find checkpoint `name`'s weights: explicit `weights` (or a user checkpoint's own file or folder),
    then `weights_dir`, then the HF cache, then the Hub (a user checkpoint's hf-hub: repo and revision).

    Raises WeightsNotFoundError listing every place looked and how to provide the weights.
    """
    repo_id, fmt, revision, own = _checkpoint_source(name)
    if weights is not None or own is not None:
        return _explicit(Path(weights if weights is not None else own).expanduser())
    looked: list[str] = []
    if weights_dir is not None:
        found = _from_weights_dir(name, Path(weights_dir).expanduser(), looked)
        if found:
            return found
    else:
        looked.append("weights dir: none given (--weights-dir)")
    if repo_id is None:
        looked.append(f"HF cache / hub: not searched, {name!r} is not a registered checkpoint "
                      f"(a bare architecture has no Hub repo)")
        raise WeightsNotFoundError(_not_found_message(name, None, looked))
    cache_dir = hf_cache_dir()
    found = (_from_hf_cache(repo_id, fmt, cache_dir, looked, revision)
             or _from_hub(repo_id, fmt, cache_dir, looked, revision))
    if found:
        return found
    raise WeightsNotFoundError(_not_found_message(name, repo_id, looked))


def hub_file(repo_id: str, filename: str, revision: str | None = None) -> Path:
    """One file of a Hub repo: from the local HF cache (works offline), else downloaded (once).

    Raises:
        WeightsNotFoundError: not cached, and the Hub cannot be asked or has no such file (the message
            says which and how to fix it).
    """
    cache_dir = hf_cache_dir()
    found = _cached_file(repo_id, filename, cache_dir, revision)
    if found is not None:
        return found
    at = f"{repo_id}" + (f"@{revision}" if revision else "")
    looked = [f"HF cache {cache_dir}: no {filename} of {at}"]
    if not hub_offline():
        from huggingface_hub import hf_hub_download

        unreachable = hub.HUB.unreachable()          # probed once per process
        if not unreachable:
            try:
                return Path(hf_hub_download(repo_id, filename, revision=revision, cache_dir=str(cache_dir)))
            except Exception as e:  # noqa: BLE001 - gated, missing, no network: said in one line
                looked.append(f"HF hub: {type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}")
        else:
            looked.append(f"HF hub: unreachable ({unreachable})")
    else:
        looked.append("HF hub: not asked, offline (HF_HUB_OFFLINE=1)")
    raise WeightsNotFoundError(f"hf-hub:{at}: {filename} not found ({'; '.join(looked)}). Provide it with "
                               f"`hf download {repo_id}` on a machine with network (then copy the HF cache), "
                               f"or point HF_HUB_CACHE at a cache that has it")


# ---------------------------------------------------------------------------- reading

def _sniff(path: Path) -> str:
    """What a file that failed to load looks like, for the error message."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        return f"unreadable ({e})"
    text = head.lstrip()
    if size == 0:
        return "an empty file (0 bytes)"
    if head.startswith(b"version https://git-lfs"):
        return "a Git LFS pointer, not the weights (run `git lfs pull` or download the file itself)"
    if text[:1] in (b"<",) and b"html" in text[:200].lower():
        return f"an HTML page ({size} bytes), probably a saved error or login page"
    if text[:1] in (b"{", b"["):
        return f"JSON text ({size} bytes), not weights"
    if head[:4] == b"PK\x03\x04":
        return f"a zip archive ({size} bytes): a torch.save file; name it .pth"
    if head[:1] == b"\x80":
        return f"a pickle ({size} bytes): a torch.save file; name it .pth"
    if len(head) >= 10 and head[8:10] in (b'{"', b"{'"):
        n = int.from_bytes(head[:8], "little")
        return (f"a safetensors file of {size} bytes whose header promises {n} header bytes and data "
                f"beyond; truncated or corrupt (download it again)")
    if head[:6] == b"\x93NUMPY" or path.suffix == ".npz":
        return ("a NumPy archive (original JAX/big_vision weights); convert it with timm and save it as "
                "safetensors")
    return f"{size} bytes of unrecognised content starting {head[:16]!r}"


def _read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    try:
        return load_file(str(path), device="cpu")
    except Exception as e:
        raise WeightsLoadError(
            f"{path}: cannot read as safetensors ({type(e).__name__}: {e}). The file looks like "
            f"{_sniff(path)}.") from None


def _trainer_globals() -> list:
    """The harmless non-tensor types trainers store beside the weights, allowed by weights_only loading:
    timm's train.py saves its argparse.Namespace; numpy scalars and dtypes appear in saved metrics."""
    import argparse

    import numpy as np

    allowed = [argparse.Namespace, np.dtype]
    core = getattr(np, "_core", None) or getattr(np, "core", None)
    scalar = getattr(getattr(core, "multiarray", None), "scalar", None)
    allowed += [scalar] if scalar is not None else []
    allowed += [type(np.dtype(n)) for n in ("float64", "float32", "int64", "int32", "bool")]
    return allowed


def _read_torch(path: Path):
    try:
        with torch.serialization.safe_globals(_trainer_globals()):
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        text = str(e)
        if "weights only" in text.lower() or "weights_only" in text:
            found = re.search(r"Unsupported global: GLOBAL (\S+)", text)
            what = f"it references {found.group(1)}" if found else "it holds more than plain tensors"
            raise WeightsLoadError(
                f"{path}: refused: this pickle needs code to load ({what}). Running a checkpoint's "
                f"pickled code means trusting it completely. If you trust the file, convert it once: "
                f"`ckpt = torch.load('{path.name}', weights_only=False)`, then save its state dict (e.g. "
                f"ckpt['model']) with `safetensors.torch.save_file(sd, '{path.stem}.safetensors')` "
                f"and load the .safetensors instead.") from None
        first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
        raise WeightsLoadError(f"{path}: not a readable torch checkpoint ({first}); the file looks like "
                               f"{_sniff(path)}.") from None
    except Exception as e:
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise WeightsLoadError(f"{path}: not a readable torch checkpoint ({type(e).__name__}: {msg}); "
                               f"the file looks like {_sniff(path)}.") from None


def _is_tensor_dict(obj) -> bool:
    return isinstance(obj, dict) and bool(obj) and all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def _unwrap(obj, path: Path, ema: bool = False) -> tuple[dict[str, torch.Tensor], str | None]:
    """The state dict inside a torch checkpoint and the entry it came from: the file itself (None), its
    single model entry ('state_dict' or 'model'), or with `ema` its EMA entry. DDP's `module.` and
    torch.compile's `_orig_mod.` prefixes are taken off."""
    entry = None
    if not _is_tensor_dict(obj):
        if not isinstance(obj, dict):
            raise WeightsLoadError(f"{path}: holds a {type(obj).__name__}, not a state dict (a dict of "
                                   f"tensors).")
        keys = ", ".join(repr(k) for k in list(obj)[:_SHOW])
        wanted = EMA_ENTRIES if ema else MODEL_ENTRIES
        found = [k for k in wanted if _is_tensor_dict(obj.get(k))]
        if ema and not found:
            raise WeightsLoadError(f"{path}: `ema: true`, but the checkpoint has no EMA weights (none of "
                                   f"{', '.join(map(repr, EMA_ENTRIES))} holds tensors); its keys: {keys}.")
        if len(found) != 1:
            why = (f"both {found[0]!r} and {found[1]!r} hold weights; ambiguous" if found
                   else f"no {' or '.join(repr(k) for k in MODEL_ENTRIES)} entry holding tensors")
            raise WeightsLoadError(f"{path}: a dict that is not a state dict ({why}); its keys: {keys}. "
                                   f"Save the state dict you mean on its own as safetensors.")
        entry = found[0]
        obj = obj[entry]
    for prefix in _PREFIXES:
        if all(k.startswith(prefix) for k in obj):
            obj = {k[len(prefix):]: v for k, v in obj.items()}
    return dict(obj), entry


def _read_sharded(index: Path) -> dict[str, torch.Tensor]:
    shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    sd: dict[str, torch.Tensor] = {}
    for shard in shards:
        sd.update(_read_safetensors(index.parent / shard))
    return sd


def _file_read(path: Path) -> Path:
    """The file `read_state_dict(path)` reads (a sharded folder: its index)."""
    if path.is_dir() and not any((path / f).is_file() for f in HUB_WEIGHT_FILES):
        index = path / "model.safetensors.index.json"
        if index.is_file():
            return index
    return weight_file(path)


def read_state_dict(path: str | Path, ema: bool = False) -> dict[str, torch.Tensor]:
    """The state dict in a weight file or transformers folder (see `read_checkpoint`)."""
    return read_checkpoint(path, ema)[0]


def read_checkpoint(path: str | Path, ema: bool = False) -> tuple[dict[str, torch.Tensor], str | None]:
    """The state dict in a weight file, transformers folder or training checkpoint, read without running
    pickled code, and the training checkpoint's entry it came from (None: the file is the state dict).

    `.safetensors` via safetensors; `.pth`/`.pt`/`.bin`/`.ckpt` via torch.load(weights_only=True), which
    also accepts what trainers store beside the weights (optimizer state, an argparse.Namespace of the
    run's arguments) and still refuses a pickle that would run code; a folder reads its
    model.safetensors (or a sharded index) or pytorch_model.bin. `ema`: a training checkpoint's EMA
    weights instead of its model weights. Raises WeightsLoadError naming the file and what it holds
    when it is not a readable state dict.
    """
    path = Path(path)
    if not path.exists():
        raise WeightsNotFoundError(f"Weights file {path} does not exist.")
    path = _file_read(path)
    entry = None
    if path.name == "model.safetensors.index.json":
        return _read_sharded(path), None
    if path.suffix == ".safetensors":
        sd = _read_safetensors(path)
    elif path.suffix in TORCH_SUFFIXES:
        sd, entry = _unwrap(_read_torch(path), path, ema)
    else:
        known = ", ".join((".safetensors",) + TORCH_SUFFIXES)
        raise WeightsLoadError(f"{path}: unknown weight file type {path.suffix!r} (expected {known}); "
                               f"it looks like {_sniff(path)}.")
    if not sd:
        raise WeightsLoadError(f"{path}: holds no tensors.")
    if ema and entry is None:
        raise WeightsLoadError(f"{path}: `ema: true`, but the file is a plain state dict, not a training "
                               f"checkpoint with EMA weights.")
    return sd, entry


# ---------------------------------------------------------------------------- loading

def _head_keys(model: nn.Module) -> set[str]:
    """State-dict keys of the classifier head (via timm's `get_classifier()`, else a module named head)."""
    head = model.get_classifier() if hasattr(model, "get_classifier") else getattr(model, "head", None)
    if not isinstance(head, nn.Module):
        return set()
    for prefix, module in model.named_modules():
        if module is head:
            return {f"{prefix}.{k}" for k in head.state_dict()}
    return set()


def _checkpoint_classes(sd: dict[str, torch.Tensor], head_keys: set[str]) -> int | None:
    """The checkpoint's number of classes: dim 0 of its head weight (the model's head key, or head.weight)."""
    for key in sorted(k for k in head_keys if k.endswith("weight")) + ["head.weight"]:
        if key in sd and sd[key].ndim >= 1:
            return int(sd[key].shape[0])
    return None


def _listing(title: str, items: list[str]) -> str:
    shown = "\n".join(f"    {s}" for s in items[:_SHOW])
    more = f"\n    ... and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return f"  {title} ({len(items)}):\n{shown}{more}"


def check_state_dict(model: nn.Module, sd: dict[str, torch.Tensor], file: Path | str) -> None:
    """Raise WeightsLoadError unless `sd` has exactly the model's keys with the model's shapes."""
    model_sd = model.state_dict()
    missing = [k for k in model_sd if k not in sd]
    unexpected = [k for k in sd if k not in model_sd]
    mismatched = [f"{k}: checkpoint {tuple(sd[k].shape)}, model {tuple(v.shape)}"
                  for k, v in model_sd.items() if k in sd and tuple(sd[k].shape) != tuple(v.shape)]
    if not (missing or unexpected or mismatched):
        return
    head_keys = _head_keys(model)
    problem_keys = set(missing) | set(unexpected) | {m.split(":")[0] for m in mismatched}
    lines = [f"{file}: the checkpoint does not match {type(model).__name__}; nothing was loaded."]
    n_ckpt = _checkpoint_classes(sd, head_keys)
    n_model = getattr(model, "num_classes", None)
    if n_ckpt is not None and n_model is not None and n_ckpt != n_model and (
            problem_keys & (head_keys | {"head.weight", "head.bias"})):
        lines.append(f"  the checkpoint has {n_ckpt} classes, the model {n_model}: pass num_classes={n_ckpt}")
    if missing:
        lines.append(_listing("missing from the checkpoint", missing))
    if unexpected:
        lines.append(_listing("unexpected in the checkpoint", unexpected))
    if mismatched:
        lines.append(_listing("shape mismatches", mismatched))
    lines.append("  Check that the file is this checkpoint's (architecture and variant), "
                 "or that the family's checkpoint_filter_fn handles its layout.")
    raise WeightsLoadError("\n".join(lines))


def load_weights(model: nn.Module, path_or_dir: str | Path, ema: bool = False) -> Path:
    """Load a weight file or transformers folder into `model` strictly.

    The model family's `checkpoint_filter_fn(state_dict, model)`, when the model has one, remaps keys
    first; then every key and shape must match. A mismatch loads nothing.

    Args:
        model: the module to load into (usually made by `create_model`).
        path_or_dir: a `.safetensors`, `.pth`/`.pt`/`.bin`/`.ckpt` file (read without running pickled
            code; a training checkpoint's model entry), or a transformers folder holding one.
        ema: load a training checkpoint's EMA weights. The entry loaded is set as `model.weights_entry`.

    Returns:
        The weight file actually read.

    Raises:
        WeightsLoadError: the file cannot be read, the filter fails on it, or keys or shapes do not
            match (named, a head of another size saying which num_classes to pass).
    """
    path = Path(path_or_dir)
    sd, entry = read_checkpoint(path, ema)
    file = _file_read(path)
    filter_fn = getattr(model, "checkpoint_filter_fn", None)
    if callable(filter_fn):
        try:
            sd = filter_fn(sd, model)
        except WeightsLoadError:
            raise
        except Exception as e:
            raise WeightsLoadError(f"{file}: {type(model).__name__}.checkpoint_filter_fn failed on this "
                                   f"checkpoint ({type(e).__name__}: {e}).") from e
    check_state_dict(model, sd, file)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        raise WeightsLoadError(f"{file}: load_state_dict failed: {e}") from None
    model.weights_entry = entry
    return file


def load_pretrained(model: nn.Module, name: str, weights: str | Path | None = None,
                    weights_dir: str | Path | None = None) -> WeightsInfo:
    """Resolve checkpoint `name`'s weights and load them strictly; also sets `model.weights_info`."""
    from vitbench.catalog.registry import get_checkpoint, is_registered

    resolved = resolve_weights(name, weights=weights, weights_dir=weights_dir)
    load_weights(model, resolved.path, ema=is_registered(name) and get_checkpoint(name).ema)
    info = resolved.info(entry=model.weights_entry)
    model.weights_info = info
    return info


__all__ = [
    "WeightsInfo", "WeightsNotFoundError", "WeightsLoadError", "ResolvedWeights", "resolve_weights", "read_state_dict",
    "read_checkpoint", "load_weights", "load_pretrained", "check_state_dict", "file_sha256", "hf_cache_dir",
]
