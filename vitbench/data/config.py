"""DataConfig: the eval preprocessing of one checkpoint, resolved only from its config.

Two sources: a timm pretrained config (`from_checkpoint`: timm's eval transform, crop_pct and
crop_mode) and a transformers `preprocessor_config.json` (`from_preprocessor_config`: what that image
processor class does, see `IMAGE_PROCESSORS`).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

# PIL resample codes as transformers' preprocessor_config.json writes them.
_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}

# crop modes of transformers' image processors (the rest are timm's): resize to `resize_size`
# (H, W) ignoring the aspect ratio, or the shortest edge to `resize_size` (S,); then transformers'
# center crop to input_size (see vitbench.data.transforms)
HF_CROP_MODES = ("hf_resize", "hf_shortest_edge")


@dataclass(frozen=True)
class DataConfig:
    input_size: tuple[int, int, int]     # (C, H, W)
    crop_pct: float                      # crop / resize (informative for the transformers modes)
    crop_mode: str                       # 'center' | 'squash' | 'border' (timm) | 'hf_resize' | 'hf_shortest_edge'
    interpolation: str                   # PIL filter name
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    resize_size: tuple[int, ...] | None = None   # the transformers modes' resize target: (H, W) or (S,)

    @property
    def img_size(self) -> int:
        return self.input_size[-1]

    def to_dict(self) -> dict:
        """The fields as a dict; `resize_size` only when set (timm's configs stay as they were)."""
        d = asdict(self)
        if d["resize_size"] is None:
            del d["resize_size"]
        return d

    @classmethod
    def from_checkpoint(cls, cfg) -> "DataConfig":
        return cls(
            input_size=tuple(cfg.input_size),
            crop_pct=float(cfg.crop_pct),
            crop_mode=cfg.crop_mode,
            interpolation=cfg.interpolation,
            mean=tuple(cfg.mean),
            std=tuple(cfg.std),
            # a transformers processor's resize target (a user's transformers folder registers it)
            resize_size=tuple(cfg.extra["resize_size"]) if cfg.extra.get("resize_size") else None,
        )

    @classmethod
    def from_preprocessor_config(cls, path: str | Path) -> "DataConfig":
        """A transformers `preprocessor_config.json`, read by its image processor class's rules."""
        path = Path(path)
        try:
            pp = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a readable preprocessor_config.json ({e})") from None
        return cls.from_image_processor(pp, where=str(path))

    @classmethod
    def from_image_processor(cls, pp: dict, where: str = "preprocessor_config.json") -> "DataConfig":
        """What the image processor `pp` (a preprocessor_config.json's dict) makes of an image.

        The processor class (`image_processor_type`, or the older `feature_extractor_type`) gives the
        steps and the defaults of keys left out (`IMAGE_PROCESSORS`). Its uint8 steps (convert to RGB,
        PIL resize, center crop) become the crop mode; its float steps, x * rescale_factor then
        (x - image_mean) / image_std, become the `mean`/`std` that vitbench's normalize_batch applies to
        x / 255: the same numbers when rescale_factor is 1/255 (the usual), else folded in exactly.
        """
        kind = pp.get("image_processor_type") or \
            str(pp.get("feature_extractor_type", "")).replace("FeatureExtractor", "ImageProcessor")
        if kind not in IMAGE_PROCESSORS:
            raise ValueError(f"{where}: image processor {kind or '(none named)'!r} is not supported "
                             f"(supported: {', '.join(IMAGE_PROCESSORS)})")
        rules = IMAGE_PROCESSORS[kind]
        if not pp.get("do_resize", True):
            raise ValueError(f"{where}: do_resize is false, so images keep their own sizes; vitbench "
                             f"evaluates batches of one size")
        size = _size_dict(pp.get("size", rules.size), rules.int_size_is_square)
        if "shortest_edge" in size:
            if not rules.shortest_edge:
                raise ValueError(f"{where}: {kind} resizes to a height and width, not a shortest edge ({size})")
            mode, resize_size = "hf_shortest_edge", (int(size["shortest_edge"]),)
        else:
            mode, resize_size = "hf_resize", (int(size["height"]), int(size["width"]))
        crop = rules.crop is not None and pp.get("do_center_crop", rules.crop)
        if crop:
            c = _size_dict(pp.get("crop_size", {"height": 224, "width": 224}), True)
            out = (int(c["height"]), int(c["width"]))
        elif mode == "hf_shortest_edge":
            raise ValueError(f"{where}: a shortest-edge resize without a center crop keeps each image's "
                             f"aspect ratio; vitbench evaluates batches of one size")
        else:
            out = resize_size
        mean, std = _fold_rescale(pp, rules)
        return cls(input_size=(3, *out), crop_pct=out[0] / resize_size[0], crop_mode=mode,
                   interpolation=_PIL_RESAMPLE[int(pp.get("resample", rules.resample))], mean=mean, std=std,
                   resize_size=resize_size)


# ------------------------------------------------------------------ transformers' image processors

_STANDARD = (0.5, 0.5, 0.5)                                   # IMAGENET_STANDARD_MEAN / _STD
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)              # OPENAI_CLIP_MEAN
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)              # OPENAI_CLIP_STD


@dataclass(frozen=True)
class ImageProcessorRules:
    """What a transformers image processor class does, and its defaults for keys a config leaves out."""
    size: dict                       # default `size`
    int_size_is_square: bool         # a bare int `size` means (size, size); else the shortest edge
    shortest_edge: bool              # whether it takes a `shortest_edge` size (else height/width only)
    resample: int                    # default PIL resample code
    crop: bool | None                # default do_center_crop; None: the class has no center crop step
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def _squash(side: int, resample: int, crop: bool | None) -> ImageProcessorRules:
    """A processor that resizes to height x width (ViT, DeiT, BEiT), IMAGENET_STANDARD mean and std."""
    return ImageProcessorRules({"height": side, "width": side}, True, False, resample, crop, _STANDARD, _STANDARD)


_BIT = ImageProcessorRules({"shortest_edge": 224}, False, True, 3, True, _CLIP_MEAN, _CLIP_STD)
IMAGE_PROCESSORS: dict[str, ImageProcessorRules] = {
    "ViTImageProcessor": _squash(224, 2, None),           # bilinear, no center crop at all
    "DeiTImageProcessor": _squash(256, 3, True),          # bicubic, then crop_size (224 by default)
    "BeitImageProcessor": _squash(256, 3, True),
    "BitImageProcessor": _BIT,                             # DINOv2's
    "ViTHybridImageProcessor": _BIT,
}


def _size_dict(size, int_is_square: bool) -> dict:
    """transformers' get_size_dict for the forms configs hold: a dict, an int, or [H, W]."""
    if isinstance(size, dict):
        return size
    if isinstance(size, (list, tuple)):
        return {"height": int(size[0]), "width": int(size[1])}
    return {"height": int(size), "width": int(size)} if int_is_square else {"shortest_edge": int(size)}


def _per_channel(v) -> tuple[float, float, float]:
    """A mean or std as 3 floats (configs may hold one number for all channels)."""
    return tuple(float(x) for x in v) if isinstance(v, (list, tuple)) else (float(v),) * 3


def _fold_rescale(pp: dict, rules: ImageProcessorRules) -> tuple[tuple, tuple]:
    """(mean, std) such that (x / 255 - mean) / std is the processor's (x * f - M) / S, with f the
    rescale factor (1 when do_rescale is false) and M, S its mean and std (0, 1 when do_normalize is false)."""
    normalize = pp.get("do_normalize", True)
    m = _per_channel(pp.get("image_mean", rules.mean)) if normalize else (0.0,) * 3
    s = _per_channel(pp.get("image_std", rules.std)) if normalize else (1.0,) * 3
    f = float(pp.get("rescale_factor", 1 / 255)) if pp.get("do_rescale", True) else 1.0
    if f == 1 / 255:
        return m, s
    k = 255 * f                                      # x * f == (x / 255) * k
    return tuple(v / k for v in m), tuple(v / k for v in s)


def resolve_data_config(name_or_model) -> DataConfig:
    """The eval preprocessing of a checkpoint: what `create_transform` takes.

    Args:
        name_or_model: a registered checkpoint name, a transformers folder (its
            preprocessor_config.json), a model made by `create_model` (its `data_config`), or a
            DataConfig (returned as it is).

    Returns:
        DataConfig: input_size, crop_pct, crop_mode, interpolation, mean and std.

    Raises:
        UnknownModelError: a name that is not registered.
        TypeError: an object that carries no data config.
    """
    from vitbench.catalog.registry import get_checkpoint

    if isinstance(name_or_model, DataConfig):
        return name_or_model
    if isinstance(name_or_model, (str, Path)):
        p = Path(name_or_model)
        if p.is_dir() and (p / "preprocessor_config.json").is_file():
            return DataConfig.from_preprocessor_config(p / "preprocessor_config.json")
        return DataConfig.from_checkpoint(get_checkpoint(str(name_or_model)))
    cfg = getattr(name_or_model, "data_config", None)
    if isinstance(cfg, DataConfig):
        return cfg
    raise TypeError(
        f"resolve_data_config: cannot find a data config on {type(name_or_model).__name__}; pass a "
        "registered checkpoint name, a transformers folder, or a model made by vitbench.create_model"
    )
