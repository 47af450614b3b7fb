"""DataConfig: the eval preprocessing of one checkpoint, resolved only from its config."""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

# PIL resample codes as transformers' preprocessor_config.json writes them.
_PIL_RESAMPLE = {0: "nearest", 1: "lanczos", 2: "bilinear", 3: "bicubic", 4: "box", 5: "hamming"}


@dataclass(frozen=True)
class DataConfig:
    input_size: tuple[int, int, int]     # (C, H, W)
    crop_pct: float
    crop_mode: str                       # 'center' | 'squash' | 'border'
    interpolation: str                   # PIL filter name
    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    @property
    def img_size(self) -> int:
        return self.input_size[-1]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_checkpoint(cls, cfg) -> "DataConfig":
        return cls(
            input_size=tuple(cfg.input_size),
            crop_pct=float(cfg.crop_pct),
            crop_mode=cfg.crop_mode,
            interpolation=cfg.interpolation,
            mean=tuple(cfg.mean),
            std=tuple(cfg.std),
        )

    @classmethod
    def from_preprocessor_config(cls, path: str | Path) -> "DataConfig":
        """A transformers `preprocessor_config.json` (resize shortest edge, center crop, normalize)."""
        path = Path(path)
        try:
            pp = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ValueError(f"{path}: not a readable preprocessor_config.json ({e})") from None
        crop = pp.get("crop_size") or pp.get("size")
        size = pp.get("size", {})
        crop_h = crop["height"] if isinstance(crop, dict) else int(crop)
        crop_w = crop["width"] if isinstance(crop, dict) else int(crop)
        short = size.get("shortest_edge", crop_h) if isinstance(size, dict) else int(size)
        do_crop = pp.get("do_center_crop", True)
        return cls(
            input_size=(3, crop_h, crop_w),
            crop_pct=crop_h / short if do_crop else 1.0,
            crop_mode="center" if do_crop else "squash",
            interpolation=_PIL_RESAMPLE.get(pp.get("resample", 3), "bicubic"),
            mean=tuple(pp.get("image_mean", (0.5, 0.5, 0.5))),
            std=tuple(pp.get("image_std", (0.5, 0.5, 0.5))),
        )


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
