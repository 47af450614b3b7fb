"""The eval transform: timm's resize + crop bit for bit, the crop modes, every image mode."""
import json
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import vitbench
from support import FIXTURES
from vitbench.data.config import DataConfig
from vitbench.data.transforms import (
    create_crop_transform,
    create_transform,
    normalize_batch,
    resized_size,
    scale_size,
    to_rgb,
)

PRE = FIXTURES / "golden" / "preprocess"
INDEX = json.loads((PRE / "index.json").read_text())
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def cfg(size=224, crop_pct=0.875, mode="center", interp="bicubic", mean=MEAN, std=STD) -> DataConfig:
    h, w = (size, size) if isinstance(size, int) else size
    return DataConfig((3, h, w), crop_pct, mode, interp, mean, std)


def rand_image(w=40, h=30, mode="RGB", seed=0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).convert(mode)


def hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).numpy()


# ---------------------------------------------------------------- golden: timm's own crops

@pytest.mark.parametrize("image", INDEX["images"])
def test_crop_matches_timm_exactly(image):
    img = Image.open(PRE / "images" / image)
    stem = image.rsplit(".", 1)[0]
    for c in INDEX["configs"]:
        dc = cfg(c["img_size"], c["crop_pct"], "center", c["interpolation"])
        assert min(resized_size(*img.size, dc)) == c["resize_to"], c["tag"]
        assert scale_size(dc) == (c["resize_to"],) * 2
        out = create_crop_transform(dc)(img)
        assert out.dtype == torch.uint8 and out.shape == (3, c["img_size"], c["img_size"])
        expected = np.array(Image.open(PRE / "expected" / f"{stem}__{c['tag']}.png").convert("RGB"))
        assert np.array_equal(hwc(out), expected), f"{image} {c['tag']}"


def test_golden_set_is_complete():
    assert len(INDEX["images"]) == 18 and len(INDEX["configs"]) == 5 and len(INDEX["configs_all"]) == 19
    assert len(list((PRE / "expected").glob("*.png"))) == 90 + 3 * 15   # 3 images x the 15 configs not among the five


@pytest.mark.parametrize("c", INDEX["configs_all"], ids=lambda c: c["tag"])
def test_every_zoo_data_config_matches_timm(c):
    """All 19 data configs of the zoo (squash and 0.875 bilinear included): timm's uint8 crop of each of
    the 18 images, compared by the sha256 of its H x W x 3 RGB bytes (and by pixels where a PNG is kept)."""
    import hashlib

    dc = cfg(tuple(c["input_size"][1:]), c["crop_pct"], c["crop_mode"], c["interpolation"])
    transform = create_crop_transform(dc)
    for image, digest in c["sha256"].items():
        img = Image.open(PRE / "images" / image)
        crop = np.ascontiguousarray(hwc(transform(img)))
        expected_png = PRE / "expected" / f"{image.rsplit('.', 1)[0]}__{c['tag']}.png"
        if expected_png.is_file():
            assert np.array_equal(crop, np.array(Image.open(expected_png).convert("RGB"))), f"{image} {c['tag']}"
        assert hashlib.sha256(crop.tobytes()).hexdigest() == digest, f"{image} {c['tag']}"


def test_every_registered_checkpoint_uses_a_golden_data_config():
    """No checkpoint is evaluated with a data config whose crops were not checked against timm's."""
    checked = {(tuple(c["input_size"]), c["crop_pct"], c["crop_mode"], c["interpolation"]) for c in INDEX["configs_all"]}
    for name in vitbench.list_models():
        dc = vitbench.resolve_data_config(name)
        assert (tuple(dc.input_size), dc.crop_pct, dc.crop_mode, dc.interpolation) in checked, name


# ---------------------------------------------------------------- normalize

def test_create_transform_is_crop_then_normalize():
    dc = cfg(32, 0.9, interp="bilinear")
    img = rand_image(50, 37)
    u8 = create_crop_transform(dc)(img)
    x = create_transform(dc)(img)
    ref = (u8.float() / 255 - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1)
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32)
    assert torch.allclose(x, ref, atol=1e-6)
    assert torch.equal(normalize_batch(u8[None], MEAN, STD)[0], x)


def test_normalize_batch_dtype_and_checks():
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    y = normalize_batch(x, MEAN, STD, dtype=torch.bfloat16)
    assert y.dtype == torch.bfloat16 and y.shape == x.shape
    assert torch.allclose(y.float(), normalize_batch(x, MEAN, STD), atol=0.05)
    with pytest.raises(TypeError, match="uint8"):
        normalize_batch(x.float(), MEAN, STD)


def test_public_export_and_pickle():
    t = vitbench.create_transform(cfg(16))
    t2 = pickle.loads(pickle.dumps(t))
    img = rand_image()
    assert torch.equal(t(img), t2(img))
    assert "CropTransform" in repr(t)


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="crop_mode"):
        create_crop_transform(cfg(mode="zoom"))
    with pytest.raises(ValueError, match="interpolation"):
        create_crop_transform(cfg(interp="cubic"))


# ---------------------------------------------------------------- crop modes

def test_squash_resizes_both_sides():
    img = rand_image(40, 30)
    dc = cfg(28, 0.875, mode="squash")           # scale 32 x 32, crop 28
    out = hwc(create_crop_transform(dc)(img))
    ref = np.array(img.resize((32, 32), Image.Resampling.BICUBIC).crop((2, 2, 30, 30)))
    assert np.array_equal(out, ref)


def test_border_fits_longest_side_and_pads_with_mean():
    img = rand_image(40, 30)
    dc = cfg(32, 1.0, mode="border", interp="bilinear")  # 40x30 -> 32x24, pad 4 rows top/bottom
    assert resized_size(40, 30, dc) == (32, 24)
    out = hwc(create_crop_transform(dc)(img))
    fill = [round(255 * m) for m in MEAN]
    assert out.shape == (32, 32, 3)
    assert (out[:4] == fill).all() and (out[28:] == fill).all()
    ref = np.array(img.resize((32, 24), Image.Resampling.BILINEAR))
    assert np.array_equal(out[4:28], ref)


def test_border_with_crop_pct_below_one_crops_after_padding():
    dc = cfg(32, 0.8, mode="border")             # scale 40: 40x30 stays, crop 32 of width, pad height
    out = hwc(create_crop_transform(dc)(rand_image(40, 30)))
    assert out.shape == (32, 32, 3)
    assert (out[0] == [round(255 * m) for m in MEAN]).all()


def test_center_crop_offsets_round_half_to_even():
    # torchvision's int(round((h - th) / 2)): 41 - 32 = 9 -> round(4.5) = 4, not 5
    img = rand_image(32, 41)
    out = hwc(create_crop_transform(cfg(32, 1.0))(img))
    assert np.array_equal(out, np.array(img)[4:36])


def test_non_square_center_keeps_ratio():
    # timm's ResizeKeepRatio path: shorter-relative side fits, then crop (24, 32)
    dc = cfg((24, 32), 1.0)
    assert resized_size(40, 40, dc) == (32, 32)
    assert create_crop_transform(dc)(rand_image(40, 40)).shape == (3, 24, 32)


def test_crop_pct_above_one_pads_with_zero():
    out = hwc(create_crop_transform(cfg(20, 2.0))(rand_image(40, 30)))  # scale 10 -> 13x10, pad
    assert out.shape == (20, 20, 3) and (out[:5] == 0).all()


# ---------------------------------------------------------------- image modes

IDENTITY = cfg((30, 40), 1.0)                    # 40x30 in, same size out: no resampling


@pytest.mark.parametrize("mode", ["L", "LA", "P", "PA", "RGBA", "CMYK", "1", "YCbCr"])
def test_modes_convert_like_pil(mode):
    img = rand_image(mode="RGBA" if mode == "PA" else mode)
    if mode == "PA":
        img = rand_image().convert("P").convert("PA")
    if mode == "RGBA":
        a = np.array(img)
        a[..., 3] = 0                            # fully transparent: alpha is dropped, not composited
        img = Image.fromarray(a, "RGBA")
    out = hwc(create_crop_transform(IDENTITY)(img))
    assert np.array_equal(out, np.array(img.convert("RGB")))


def test_sixteen_bit_is_scaled_not_clipped():
    v = np.linspace(0, 65535, 40 * 30).reshape(30, 40).astype(np.uint16)
    img = Image.fromarray(v)
    assert img.mode.startswith("I;16")
    out = hwc(create_crop_transform(IDENTITY)(img))
    ref = np.rint(v / 257.0).astype(np.uint8)
    assert np.array_equal(out[..., 0], ref) and np.array_equal(out[..., 2], ref)
    assert 100 < out[15, 20, 0] < 150            # mid-grey stays mid-grey


def test_int32_and_float_modes():
    v = np.linspace(0, 65535, 40 * 30).reshape(30, 40)
    img_i = Image.fromarray(v.astype(np.int32))
    assert img_i.mode == "I"
    out = hwc(create_crop_transform(IDENTITY)(img_i))
    assert np.array_equal(out[..., 0], np.rint(v.astype(np.int32) / 257.0).astype(np.uint8))

    small = (np.arange(40 * 30).reshape(30, 40) % 201).astype(np.int32)   # already 8-bit range
    assert np.array_equal(np.array(to_rgb(Image.fromarray(small)))[..., 0], small.astype(np.uint8))

    img_f = Image.fromarray((v / 65535).astype(np.float32))
    assert img_f.mode == "F"
    out = hwc(create_crop_transform(IDENTITY)(img_f))
    assert out[..., 1].min() == 0 and out[..., 1].max() == 255


def test_bilevel_and_greyscale_outputs_are_rgb():
    for mode in ("1", "L"):
        out = create_crop_transform(cfg(16, 0.9))(rand_image(mode=mode))
        assert out.shape == (3, 16, 16)
        assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])
