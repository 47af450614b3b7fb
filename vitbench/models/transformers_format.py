"""transformers-format classifiers, built from their own config.json on vitbench's families.

A folder as the Hub holds one: `config.json`, `model.safetensors` (or `pytorch_model.bin`) and
`preprocessor_config.json`. config.json's `model_type` picks a row of `FORMATS`: the transformers
classes it builds, the vitbench family whose constructor and `checkpoint_filter_fn` (the one place
keys are remapped) it uses, and the family's function from config.json to constructor arguments. The
sizes are the config's own (no architecture is looked up by name), so a custom width or depth builds.

    create_from_transformers_folder(folder) -> model with .data_config, .id2label, .weights_info
    checkpoint_facts(folder) -> what the catalog registers for it (a user's `local-dir:`/`hf-hub:` folder):
                                the nearest registered architecture, data config, head, class

The data config is what the folder's image processor does (DataConfig.from_preprocessor_config).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch.nn as nn

from vitbench.data.config import DataConfig
from vitbench.models import beit, deit, vision_transformer, vision_transformer_hybrid
from vitbench.models._builder import ModelFamily

__all__ = ["TransformersFormat", "FORMATS", "read_config", "build_from_transformers_config",
           "build_from_transformers_folder", "create_from_transformers_folder", "checkpoint_facts",
           "nearest_architecture"]


@dataclass(frozen=True)
class TransformersFormat:
    """How vitbench builds the classifiers of one transformers `model_type`."""
    classes: tuple[str, ...]                 # transformers classes (config.json `architectures`); the first is
                                             # assumed when the config names none
    family: ModelFamily                         # constructor + checkpoint_filter_fn
    config_to_kwargs: Callable[[dict], dict]  # config.json -> the constructor's arguments
    processor: str                           # the image processor class when there is no preprocessor_config.json
    sized_by_processor: bool = False         # input size from the processor, positions resized (DINOv2); else
                                             # config.json's image_size, which the processor must produce


FORMATS: dict[str, TransformersFormat] = {
    "vit": TransformersFormat(("ViTForImageClassification",), vision_transformer.FAMILY,
                              vision_transformer.hf_vit_config_to_kwargs, "ViTImageProcessor"),
    "deit": TransformersFormat(tuple(deit.HF_CLASSES), deit.FAMILY, deit.hf_deit_config_to_kwargs,
                               "DeiTImageProcessor"),
    "beit": TransformersFormat(("BeitForImageClassification",), beit.FAMILY, beit.hf_beit_config_to_kwargs,
                               "BeitImageProcessor"),
    "dinov2": TransformersFormat(("Dinov2ForImageClassification",), vision_transformer.FAMILY,
                                 vision_transformer.hf_dinov2_config_to_kwargs, "BitImageProcessor",
                                 sized_by_processor=True),
    "vit-hybrid": TransformersFormat(("ViTHybridForImageClassification",), vision_transformer_hybrid.FAMILY,
                                     vision_transformer_hybrid.hf_config_to_kwargs, "ViTHybridImageProcessor"),
}


def _supported() -> str:
    return ", ".join(f"{c} ({t})" for t, f in FORMATS.items() for c in f.classes)


def read_config(path: str | Path) -> tuple[dict, TransformersFormat, str]:
    """config.json (or the folder holding it) -> (its dict, its FORMATS row, the transformers class).

    A config whose model_type or architectures vitbench does not build is a one-line ValueError
    naming the file and the supported classes.
    """
    path = Path(path)
    path = path / "config.json" if path.is_dir() else path
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise ValueError(f"{path}: not a readable transformers config.json ({e})") from None
    model_type, archs = config.get("model_type"), config.get("architectures") or []
    fmt = FORMATS.get(model_type)
    classes = [a for a in archs if fmt is not None and a in fmt.classes]
    if fmt is None or (archs and not classes):
        named = f"model_type {model_type!r}" + (f" ({', '.join(archs)})" if archs else "")
        raise ValueError(f"{path}: {named} is not supported; vitbench builds {_supported()}")
    return config, fmt, (classes or list(fmt.classes))[0]


def build_from_transformers_config(config: dict, fmt: TransformersFormat, data_config: DataConfig,
                                   num_classes: int | None = None, cfg=None, where: str = "config.json",
                                   **overrides) -> nn.Module:
    """The model config.json describes, without weights; `overrides` replace constructor arguments.

    The model gets `checkpoint_filter_fn` (its family's), `data_config`, `checkpoint_cfg` (cfg: a
    registered checkpoint's CheckpointCfg, or None) and `architecture` (cfg's, or None: built from
    the config, not a registered architecture).
    """
    kwargs = fmt.config_to_kwargs(config)
    if fmt.sized_by_processor:
        kwargs["img_size"] = data_config.img_size
    elif "img_size" not in overrides and tuple(data_config.input_size[1:]) != (kwargs["img_size"],) * 2:
        raise ValueError(f"{where}: image_size {kwargs['img_size']}, but the image processor makes "
                         f"{data_config.input_size[1]}x{data_config.input_size[2]} inputs")
    kwargs.update(overrides)
    if num_classes is not None:
        kwargs["num_classes"] = num_classes
    model = fmt.family.make(**kwargs)
    model.architecture = cfg.architecture if cfg is not None else None
    model.checkpoint_cfg = cfg
    model.checkpoint_filter_fn = fmt.family.checkpoint_filter_fn
    model.data_config = data_config
    return model


def folder_data_config(folder: str | Path, fmt: TransformersFormat, cfg=None) -> DataConfig:
    """A folder's data config: its preprocessor_config.json by the image processor's rules; without
    one, cfg's (a registered checkpoint), else the defaults of the format's image processor."""
    preprocessor = Path(folder) / "preprocessor_config.json"
    if preprocessor.is_file():
        return DataConfig.from_preprocessor_config(preprocessor)
    if cfg is not None:
        return DataConfig.from_checkpoint(cfg)
    return DataConfig.from_image_processor({"image_processor_type": fmt.processor}, where=str(preprocessor))


def build_from_transformers_folder(folder: str | Path, num_classes: int | None = None, cfg=None,
                                   **overrides) -> nn.Module:
    """The classifier of a transformers-format folder, without its weights (random init): what
    `create_from_transformers_folder` loads into, and what counting and timing build."""
    folder = Path(folder).expanduser()
    config, fmt, cls = read_config(folder)
    config = {**config, "architectures": [cls]}
    model = build_from_transformers_config(config, fmt, folder_data_config(folder, fmt, cfg), num_classes, cfg,
                                           where=str(folder / "config.json"), **overrides)
    if config.get("id2label"):
        model.id2label = {int(k): v for k, v in config["id2label"].items()}
    model.transformers_class = cls
    return model


def create_from_transformers_folder(folder: str | Path, num_classes: int | None = None, cfg=None,
                                    source: str = "file", **overrides) -> nn.Module:
    """Build the classifier of a transformers-format folder and load its weights strictly.

    The model carries `data_config` (from preprocessor_config.json; without one, cfg's, else the
    defaults of the format's image processor), `id2label` (config.json's, keys as ints),
    `transformers_class` and `weights_info` (source, folder, sha256 of the weight file and of the
    config files, the Hub repo and revision of a folder in the HF cache).
    num_classes / overrides: as for `build_from_transformers_config`.
    """
    from vitbench.weights import ResolvedWeights, load_weights

    folder = Path(folder).expanduser()
    model = build_from_transformers_folder(folder, num_classes, cfg, **overrides)
    load_weights(model, folder)
    model.weights_info = ResolvedWeights(folder, source).info()
    return model


# ------------------------------------------------------------------------------- as a catalog checkpoint

# the constructor arguments that make two models the same architecture (the rest: eps, activation, head)
STRUCTURE = ("embed_dim", "depth", "num_heads", "mlp_ratio", "patch_size", "img_size")
_NOT_SETTINGS = set(STRUCTURE) | {"num_classes", "norm_eps", "act_layer"}


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and abs(float(a) - float(b)) < 1e-6
    return a == b


def nearest_architecture(fmt: TransformersFormat, kwargs: dict) -> tuple[str, dict]:
    """The registered architecture of the format's family closest to constructor arguments `kwargs`,
    and the structural arguments (`STRUCTURE`) in which `kwargs` differ from it ({} when it is exactly
    that architecture). Closest: fewest structural differences, then fewest differing settings (a
    setting of the architecture the config does not state counts as one), then name order."""
    def score(arch: str) -> tuple:
        spec = fmt.family.archs[arch].kwargs()
        differs = sum(not _same(spec.get(k), kwargs.get(k)) for k in STRUCTURE)
        settings = sum(k not in kwargs or not _same(spec[k], kwargs[k]) for k in spec if k not in _NOT_SETTINGS)
        return differs, settings, arch

    arch = min(fmt.family.archs, key=score)
    spec = fmt.family.archs[arch].kwargs()
    return arch, {k: kwargs.get(k) for k in STRUCTURE if not _same(spec.get(k), kwargs.get(k))}


def checkpoint_facts(folder: str | Path) -> dict:
    """What registering a transformers-format folder as a checkpoint needs (the catalog reads it through
    `catalog.user.Context.read_transformers`): the nearest registered architecture and how the config
    differs from it, the data config its image processor gives, the head width (id2label), the
    transformers class. A config this module does not build: a one-line ValueError naming the file."""
    folder = Path(folder).expanduser()
    config, fmt, cls = read_config(folder)
    data_config = folder_data_config(folder, fmt)
    kwargs = fmt.config_to_kwargs({**config, "architectures": [cls]})
    if fmt.sized_by_processor:
        kwargs["img_size"] = data_config.img_size
    arch, differs = nearest_architecture(fmt, kwargs)
    return {**data_config.to_dict(), "architecture": arch, "num_classes": kwargs["num_classes"],
            "transformers_class": cls, "differs_from_architecture": differs}
