"""The eval transform of a checkpoint, built only from its DataConfig; timm's numbers, exactly.

Geometry (timm `transforms_imagenet_eval`, with torchvision's PIL resize/crop rules):

    scale = (floor(H / crop_pct), floor(W / crop_pct))
    center: H == W -> shorter side to scale[0], the other side int(scale * long / short);
            H != W -> keep ratio so the *shorter-relative* side fits (timm uses bilinear here,
                      whatever the checkpoint's interpolation; we follow it)
            then center crop (H, W), offsets int(round((size - crop) / 2))
    squash: both sides to `scale`, then center crop
    border: keep ratio so the *longer-relative* side fits `scale`, then center crop or pad to
            (H, W) with fill round(255 * mean)

transformers' image processors (DataConfig.from_preprocessor_config), resize with PIL on the uint8
image, then center crop:

    hf_resize:        both sides to resize_size (H', W')            (ViT, DeiT, BEiT processors)
    hf_shortest_edge: the shorter side to S, the other int(S * long / short)   (BiT: DINOv2, ViTHybrid;
                      transformers' get_resize_output_image_size, default_to_square=False)
    center crop (transformers' rule): offsets floor((size - crop) / 2), where timm rounds half to even
            (they differ when size - crop is odd and its half rounds up, e.g. 35 -> 17 vs 18); an
            image smaller than the crop is zero-padded, ceil((crop - size) / 2) before it

Two halves, so the evaluator can ship uint8 to the device and normalize there:

    create_crop_transform(cfg)(img)      -> uint8 [3, H, W]      (mode -> RGB, resize, crop)
    normalize_batch(x, mean, std, dtype) -> float [B, 3, H, W]   (/255, (x - mean) / std)
    create_transform(cfg)(img)           == normalize_batch(crop(img)[None], ...)[0]
"""
from __future__ import annotations

import math
import warnings
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from vitbench.data.config import HF_CROP_MODES, DataConfig

PIL_FILTERS = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "box": Image.Resampling.BOX,
    "hamming": Image.Resampling.HAMMING,
    "lanczos": Image.Resampling.LANCZOS,
}
CROP_MODES = ("center", "squash", "border") + HF_CROP_MODES


# ---------------------------------------------------------------- any image mode -> RGB

def to_rgb(img: Image.Image) -> Image.Image:
    """RGB view of any PIL image. Alpha is dropped as PIL's `convert("RGB")` does (what timm
    does); 16/32-bit integer and float greyscale are rescaled to 8 bits rather than clipped."""
    if img.mode == "RGB":
        return img
    if img.mode.startswith("I;16"):
        a = np.asarray(img).astype(np.float64) / 257.0     # 65535 -> 255
        return Image.fromarray(np.clip(np.rint(a), 0, 255).astype(np.uint8)).convert("RGB")
    if img.mode in ("I", "F"):
        return Image.fromarray(_to_uint8(np.asarray(img))).convert("RGB")
    with warnings.catch_warnings():
        # "Palette images with Transparency expressed in bytes should be converted to RGBA"
        warnings.simplefilter("ignore", UserWarning)
        return img.convert("RGB")


def _to_uint8(a: np.ndarray) -> np.ndarray:
    """8-bit greyscale from a 32-bit int or float array of unknown range: floats in [0, 1] scale
    by 255, values already within [0, 255] stay, 16-bit range maps 65535 -> 255 (x / 257),
    anything else is stretched min..max."""
    is_float = a.dtype.kind == "f"
    a = a.astype(np.float64)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if is_float and lo >= 0 and hi <= 1:
        a = a * 255.0
    elif lo >= 0 and hi <= 255:
        pass
    elif lo >= 0 and hi <= 65535:
        a = a / 257.0
    else:
        a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------- geometry

def scale_size(cfg: DataConfig) -> tuple[int, int]:
    """(h, w) the image is scaled to before the crop: floor(img_size / crop_pct) per side."""
    _, h, w = cfg.input_size
    return math.floor(h / cfg.crop_pct), math.floor(w / cfg.crop_pct)


def resized_size(width: int, height: int, cfg: DataConfig) -> tuple[int, int]:
    """(width, height) of an image of this size after the resize step, before the crop."""
    if cfg.crop_mode == "hf_resize":
        h, w = cfg.resize_size
        return w, h
    if cfg.crop_mode == "hf_shortest_edge":
        size = cfg.resize_size[0]
        short, long = (width, height) if width <= height else (height, width)
        new_long = int(size * long / short)
        return (size, new_long) if width <= height else (new_long, size)
    sh, sw = scale_size(cfg)
    if cfg.crop_mode == "squash":
        return sw, sh
    if cfg.crop_mode == "border" or sh != sw:
        # timm ResizeKeepRatio: longest=1 for border (fit inside), 0 for non-square center (cover)
        rh, rw = height / sh, width / sw
        ratio = max(rh, rw) if cfg.crop_mode == "border" else min(rh, rw)
        return round(width / ratio), round(height / ratio)
    # torchvision Resize(int): shorter side to `sh`, the other truncated
    short, long = (width, height) if width <= height else (height, width)
    new_long = int(sh * long / short)
    return (sh, new_long) if width <= height else (new_long, sh)


def _center_crop_or_pad(img: Image.Image, out_h: int, out_w: int, fill=0) -> Image.Image:
    """torchvision/timm center crop; an image smaller than the crop is padded (left/top get the
    floor half of the padding) with `fill` first."""
    w, h = img.size
    if out_w > w or out_h > h:
        pad_l = (out_w - w) // 2 if out_w > w else 0
        pad_t = (out_h - h) // 2 if out_h > h else 0
        pad_r = (out_w - w + 1) // 2 if out_w > w else 0
        pad_b = (out_h - h + 1) // 2 if out_h > h else 0
        canvas = Image.new(img.mode, (w + pad_l + pad_r, h + pad_t + pad_b), fill)
        canvas.paste(img, (pad_l, pad_t))
        img, (w, h) = canvas, canvas.size
        if (w, h) == (out_w, out_h):
            return img
    top = int(round((h - out_h) / 2.0))
    left = int(round((w - out_w) / 2.0))
    return img.crop((left, top, left + out_w, top + out_h))


def _hf_center_crop(img: Image.Image, out_h: int, out_w: int) -> Image.Image:
    """transformers' center_crop on the uint8 image: offsets floor((size - crop) / 2); along an axis
    shorter than the crop, the image is placed ceil((crop - size) / 2) into a zero canvas."""
    w, h = img.size
    if out_w > w or out_h > h:
        canvas = Image.new(img.mode, (max(w, out_w), max(h, out_h)), 0)
        canvas.paste(img, (-(-(out_w - w) // 2) if out_w > w else 0, -(-(out_h - h) // 2) if out_h > h else 0))
        img, (w, h) = canvas, canvas.size
    top, left = (h - out_h) // 2, (w - out_w) // 2
    return img.crop((left, top, left + out_w, top + out_h))


def pil_to_uint8_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> uint8 [3, H, W], a channels-first view of one copy of the pixels (the
    collate's stack lays out the batch, so a .contiguous() here would be a second copy)."""
    return torch.from_numpy(np.array(img, dtype=np.uint8, copy=True)).permute(2, 0, 1)


class CropTransform:
    """Mode -> RGB, resize, center crop (or pad): PIL image -> uint8 [3, H, W]. Picklable."""

    def __init__(self, cfg: DataConfig):
        if cfg.crop_mode not in CROP_MODES:
            raise ValueError(f"crop_mode {cfg.crop_mode!r}: expected one of {CROP_MODES}")
        if cfg.interpolation not in PIL_FILTERS:
            raise ValueError(f"interpolation {cfg.interpolation!r}: expected one of {tuple(PIL_FILTERS)}")
        if not cfg.crop_pct > 0:
            raise ValueError(f"crop_pct must be > 0, got {cfg.crop_pct}")
        self.cfg = cfg
        self.hf = cfg.crop_mode in HF_CROP_MODES
        if self.hf:
            want = 2 if cfg.crop_mode == "hf_resize" else 1
            if cfg.resize_size is None or len(cfg.resize_size) != want:
                raise ValueError(f"crop_mode {cfg.crop_mode!r} needs resize_size of {want} value(s), "
                                 f"got {cfg.resize_size}")
            self.resample = PIL_FILTERS[cfg.interpolation]
        else:
            sh, sw = scale_size(cfg)
            # timm's non-square center mode builds ResizeKeepRatio without passing the interpolation
            square_center = cfg.crop_mode == "center" and sh == sw
            self.resample = PIL_FILTERS[cfg.interpolation if cfg.crop_mode != "center" or square_center
                                        else "bilinear"]
        self.fill = tuple(round(255 * m) for m in cfg.mean) if cfg.crop_mode == "border" else 0

    def crop_pil(self, img: Image.Image) -> Image.Image:
        img = to_rgb(img)
        size = resized_size(*img.size, self.cfg)
        if size != img.size:
            img = img.resize(size, self.resample)
        _, h, w = self.cfg.input_size
        if self.hf:
            return _hf_center_crop(img, h, w)
        return _center_crop_or_pad(img, h, w, self.fill)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return pil_to_uint8_tensor(self.crop_pil(img))

    def __repr__(self) -> str:
        c = self.cfg
        resize = tuple(c.resize_size) if self.hf else scale_size(c)
        return (f"CropTransform(input_size={tuple(c.input_size)}, crop_pct={c.crop_pct}, "
                f"crop_mode={c.crop_mode!r}, interpolation={c.interpolation!r}, resize={resize})")


def normalize_batch(x: torch.Tensor, mean: Sequence[float], std: Sequence[float],
                    dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """uint8 [B, 3, H, W] (or [3, H, W]) -> (x / 255 - mean) / std, on x's device. The arithmetic
    is fp32 (as torchvision's ToTensor + Normalize), cast to `dtype` at the end."""
    if x.dtype != torch.uint8:
        raise TypeError(f"normalize_batch expects uint8 images, got {x.dtype}")
    shape = (-1, 1, 1)
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(shape)
    y = x.to(torch.float32, memory_format=torch.contiguous_format).div_(255.0).sub_(m).div_(s)
    return y if dtype == torch.float32 else y.to(dtype)


class EvalTransform:
    """PIL image -> normalized float32 [3, H, W] (crop, then normalize). Picklable."""

    def __init__(self, cfg: DataConfig):
        self.crop = CropTransform(cfg)
        self.mean, self.std = tuple(cfg.mean), tuple(cfg.std)

    def __call__(self, img: Image.Image) -> torch.Tensor:
        return normalize_batch(self.crop(img), self.mean, self.std)

    def __repr__(self) -> str:
        return f"EvalTransform({self.crop!r}, mean={self.mean}, std={self.std})"


def create_crop_transform(data_config: DataConfig) -> CropTransform:
    """PIL image -> uint8 [3, H, W]: the resize and crop of the eval transform."""
    return CropTransform(data_config)


def create_transform(data_config: DataConfig) -> EvalTransform:
    """timm's eval transform for a data config: resize the shorter side to floor(img_size / crop_pct)
    with the config's interpolation (PIL), center crop (or squash / border, by crop_mode), to [0, 1],
    normalize.

    Args:
        data_config: from `resolve_data_config` (or a model's `data_config`).

    Returns:
        A picklable callable: PIL image (any mode; converted to RGB) -> float32 tensor [3, H, W].
    """
    return EvalTransform(data_config)
