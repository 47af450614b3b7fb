"""transformers-format classifiers (a folder with config.json, model.safetensors, preprocessor_config.json),
built from their own config.json and preprocessed by their own image processor's rules, against
transformers 4.46.3's outputs (tests/fixtures/golden/hf/, README there).

Measured here (fp32, CPU), max |delta| against transformers:

    class                                   logits   logits_real   pixel_values_real
    ViTForImageClassification               0        0             bit-exact (0 values differ)
    DeiTForImageClassificationWithTeacher   0        0             bit-exact
    BeitForImageClassification              3.6e-7   4.8e-7        bit-exact
    Dinov2ForImageClassification            0        0             bit-exact
    ViTHybridForImageClassification         2.4e-6 (up to 2.8e-6 on a busy CPU, test_models_hybrid.py); its
                                            golden has no real-image outputs

so the tests hold the pixel values to exact equality and the logits to 1e-4 (the golden rule).
"""
from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file, save_file

from support import GOLDEN, golden_input, golden_state_dict_from_manifest, golden_tensor, hf_golden_folder
from vitbench.data.config import DataConfig
from vitbench.data.transforms import create_crop_transform, normalize_batch
from vitbench.eval.engine import crop_key
from vitbench.models import create_from_transformers_folder, create_model
from vitbench.models.transformers_format import FORMATS, read_config

TOL = 1e-4
HF = GOLDEN / "hf"
IMAGES = GOLDEN / "preprocess" / "images"
CASES = ["vit-base-patch16-224", "deit-base-distilled-patch16-224", "beit-base-patch16-224",
         "dinov2-small-imagenet1k-1-layer"]
HYBRID = "vit-hybrid-base-bit-384"


def manifest(case: str) -> dict:
    return json.loads((HF / case / "manifest.json").read_text())


def golden(case: str) -> dict[str, torch.Tensor]:
    return load_file(str(HF / case / "golden_logits.safetensors"))


def write_folder(path, config: dict, preprocessor: dict | None, state_dict: dict[str, torch.Tensor]):
    """A transformers-format folder as the Hub holds one."""
    path.mkdir(parents=True)
    (path / "config.json").write_text(json.dumps(config))
    if preprocessor is not None:
        (path / "preprocessor_config.json").write_text(json.dumps(preprocessor))
    save_file(state_dict, str(path / "model.safetensors"))
    return path


def golden_folder(tmp_path, case: str):
    """The golden checkpoint `case`: its config files, and its golden weights under transformers' keys."""
    return hf_golden_folder(tmp_path / case, case)


def real_pixels(data_config: DataConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """(uint8 crops, normalized pixel values) of the two real images, as the eval pipeline makes them."""
    crop = create_crop_transform(data_config)
    crops = torch.stack([crop(Image.open(IMAGES / name)) for name in manifest(CASES[0])["real_images"]])
    return crops, normalize_batch(crops, data_config.mean, data_config.std)


# ------------------------------------------------------------------------------- golden parity

@pytest.fixture(scope="module", params=CASES)
def built(request, tmp_path_factory):
    case = request.param
    folder = golden_folder(tmp_path_factory.mktemp("hf"), case)
    return case, create_model(f"my-{case}", weights=folder).eval()


@torch.no_grad()
def test_golden_logits(built):
    case, model = built
    assert (model(golden_input((3, 224, 224))) - golden(case)["logits"]).abs().max().item() <= TOL


def test_processor_pixels_are_transformers_own(built):
    """The image processor's pixel values on the two real images, bit for bit, for all four classes
    (measured: 0 of 301,056 values differ, so also 0 uint8 levels before normalization)."""
    case, model = built
    crops, pixels = real_pixels(model.data_config)
    expected = golden(case)["pixel_values_real"]
    assert torch.equal(pixels, expected), (pixels - expected).abs().max()
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (model.data_config.mean, model.data_config.std))
    assert torch.equal(crops, ((expected * std + mean) * 255).round().to(torch.uint8))


@torch.no_grad()
def test_real_image_logits(built):
    case, model = built
    _, pixels = real_pixels(model.data_config)
    assert (model(pixels) - golden(case)["logits_real"]).abs().max().item() <= TOL


def test_folder_model_carries_its_facts(built):
    case, model = built
    assert model.transformers_class == manifest(case)["class"]
    assert model.weights_info.source == "file" and len(model.weights_info.sha256) == 64
    assert len(model.id2label) == model.num_classes == 1000 and model.id2label[7] == "LABEL_7"
    assert model.architecture is None and model.checkpoint_cfg is None


def test_data_configs():
    """Each processor's own steps: ViT and BEiT squash to `size` (no crop), DeiT squashes to 256 then
    center-crops 224, DINOv2's BitImageProcessor takes the shortest edge to 256 then center-crops 224."""
    got = {case: DataConfig.from_preprocessor_config(HF / case / "preprocessor_config.json") for case in CASES}
    assert {c: (d.crop_mode, d.resize_size, d.input_size, d.interpolation) for c, d in got.items()} == {
        "vit-base-patch16-224": ("hf_resize", (224, 224), (3, 224, 224), "bilinear"),
        "deit-base-distilled-patch16-224": ("hf_resize", (256, 256), (3, 224, 224), "bicubic"),
        "beit-base-patch16-224": ("hf_resize", (224, 224), (3, 224, 224), "bilinear"),
        "dinov2-small-imagenet1k-1-layer": ("hf_shortest_edge", (256,), (3, 224, 224), "bicubic"),
    }
    hybrid = DataConfig.from_preprocessor_config(HF / HYBRID / "preprocessor_config.json")
    assert (hybrid.crop_mode, hybrid.resize_size, hybrid.input_size) == ("hf_shortest_edge", (384,), (3, 384, 384))
    # a transformers squash is not timm's squash: the engine decodes them apart
    timm_squash = DataConfig((3, 224, 224), 1.0, "squash", "bilinear", (0.5,) * 3, (0.5,) * 3)
    assert crop_key(got["vit-base-patch16-224"]) != crop_key(timm_squash)
    assert "resize_size" not in timm_squash.to_dict() and got["vit-base-patch16-224"].to_dict()["resize_size"]


@torch.no_grad()
def test_hybrid_through_the_table(tmp_path):
    """The ViTHybrid row of the table: built from its config.json, logits as transformers'."""
    folder = tmp_path / HYBRID
    folder.mkdir()
    for f in ("config.json", "preprocessor_config.json"):
        shutil.copy(HF / HYBRID / f, folder / f)
    entries = json.loads((HF / HYBRID / "manifest.json").read_text())["state_dict"]
    save_file(golden_state_dict_from_manifest(entries), str(folder / "model.safetensors"))
    model = create_from_transformers_folder(folder).eval()
    assert model.transformers_class == "ViTHybridForImageClassification" and model.norm.eps == 1e-12
    assert (model(golden_input((3, 384, 384))) - golden(HYBRID)["logits"]).abs().max().item() <= TOL


# ------------------------------------------------------------------------------- custom sizes

def scaled(case: str, dims: dict[int, int], depth: int, rename=lambda k: k) -> dict[str, torch.Tensor]:
    """The golden manifest's state dict at another size: each dim looked up once in `dims`, layers
    from `depth` on dropped, keys passed through `rename`."""
    out = {}
    for key, entry in manifest(case)["state_dict"].items():
        m = re.search(r"\.layer\.(\d+)\.", key)
        if m and int(m[1]) >= depth:
            continue
        key = rename(key)
        out[key] = golden_tensor(key, [dims.get(d, d) for d in entry["shape"]])
    return out


CUSTOM = {
    # width 28 with an MLP of 61: 61 / 28 * 28 lands below 61, which mlp_ratio_for corrects
    "vit-base-patch16-224": (dict(hidden_size=28, num_attention_heads=4, intermediate_size=61), {768: 28, 3072: 61}),
    "deit-base-distilled-patch16-224": (dict(hidden_size=96, num_attention_heads=3, intermediate_size=200),
                                        {768: 96, 3072: 200}),
    "beit-base-patch16-224": (dict(hidden_size=64, num_attention_heads=4, intermediate_size=128),
                              {768: 64, 3072: 128, 12: 4}),
    "dinov2-small-imagenet1k-1-layer": (dict(hidden_size=96, num_attention_heads=2, mlp_ratio=2),
                                        {384: 96, 768: 192, 1536: 192}),
}


@pytest.mark.parametrize("case", CASES)
@torch.no_grad()
def test_custom_size_builds_and_loads(case, tmp_path):
    changes, dims = CUSTOM[case]
    config = {**json.loads((HF / case / "config.json").read_text()), **changes, "num_hidden_layers": 1}
    preprocessor = json.loads((HF / case / "preprocessor_config.json").read_text())
    folder = write_folder(tmp_path / "custom", config, preprocessor, scaled(case, dims, depth=1))
    model = create_model("custom", weights=folder).eval()
    assert (model.embed_dim, len(model.blocks)) == (changes["hidden_size"], 1)
    assert model.blocks[0].mlp.fc1.out_features == dims.get(3072, dims.get(1536))
    out = model(torch.randn(1, 3, 224, 224))
    assert out.shape == (1, 1000) and torch.isfinite(out).all()


@torch.no_grad()
def test_dinov2_swiglu(tmp_path):
    """use_swiglu_ffn: weights_in packs [gate | value], SiLU, width (int(hidden * 2/3) + 7) // 8 * 8."""
    case = "dinov2-small-imagenet1k-1-layer"
    config = {**json.loads((HF / case / "config.json").read_text()), "num_hidden_layers": 1, "use_swiglu_ffn": True}
    gated = (int(384 * 4 * 2 / 3) + 7) // 8 * 8                             # 1024
    sd = scaled(case, {1536: 2 * gated}, depth=1, rename=lambda k: k.replace("mlp.fc1", "mlp.weights_in"))
    sd = {k.replace("mlp.fc2", "mlp.weights_out"): v for k, v in sd.items()}
    sd["dinov2.encoder.layer.0.mlp.weights_out.weight"] = golden_tensor("w_out", (384, gated))
    folder = write_folder(tmp_path / "swiglu", config, None, sd)
    mlp = create_from_transformers_folder(folder).blocks[0].mlp
    x = torch.randn(5, 384)
    w_in, b_in = sd["dinov2.encoder.layer.0.mlp.weights_in.weight"], sd["dinov2.encoder.layer.0.mlp.weights_in.bias"]
    gate, value = (x @ w_in.T + b_in).chunk(2, dim=-1)
    expected = (torch.nn.functional.silu(gate) * value) @ sd["dinov2.encoder.layer.0.mlp.weights_out.weight"].T \
        + sd["dinov2.encoder.layer.0.mlp.weights_out.bias"]
    assert torch.allclose(mlp(x), expected, atol=1e-6)


def _beit(tmp_path, name: str, rename=lambda k: k, extra: dict | None = None, **config_changes):
    """A one-layer BEiT of width 64 with config changes; its state dict is the same golden tensors
    under keys passed through `rename` (plus `extra`)."""
    case = "beit-base-patch16-224"
    config = {**json.loads((HF / case / "config.json").read_text()), "num_hidden_layers": 1, **config_changes,
              "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128}
    sd = {rename(k): v for k, v in scaled(case, {768: 64, 3072: 128, 12: 4}, depth=1).items()}
    sd.update(extra or {})
    return create_from_transformers_folder(write_folder(tmp_path / name, config, None, sd)).eval(), sd


@torch.no_grad()
def test_beit_options(tmp_path):
    """BEiT's shared bias table adds to the scores as each block's own would; the absolute position
    table adds to the tokens; without mean pooling the class token is read after a final norm."""
    x = torch.randn(1, 3, 224, 224)
    per_block, sd = _beit(tmp_path, "per_block")
    table = sd["beit.encoder.layer.0.attention.attention.relative_position_bias.relative_position_bias_table"]
    shared, _ = _beit(tmp_path, "shared", rename=lambda k: k.replace(
        "layer.0.attention.attention.relative_position_bias", "relative_position_bias"),
        use_relative_position_bias=False, use_shared_relative_position_bias=True)
    assert shared.rel_pos_bias.relative_position_bias_table.equal(table) and shared.blocks[0].attn.grid is None
    assert torch.allclose(shared(x), per_block(x), atol=1e-6)

    pos = torch.zeros(1, 197, 64)
    absolute, _ = _beit(tmp_path, "abs", extra={"beit.embeddings.position_embeddings": pos},
                        use_absolute_position_embeddings=True)
    assert torch.allclose(absolute(x), per_block(x), atol=1e-6)

    cls_pooled, sd = _beit(tmp_path, "cls", rename=lambda k: k.replace("beit.pooler.layernorm", "beit.layernorm"),
                           use_mean_pooling=False)
    tokens = cls_pooled.forward_features(x)                                   # final norm applied
    assert torch.allclose(cls_pooled(x), cls_pooled.head(tokens[:, 0]), atol=1e-6)
    assert isinstance(cls_pooled.fc_norm, torch.nn.Identity)


@torch.no_grad()
def test_deit_without_teacher(tmp_path):
    """DeiTForImageClassification: the distillation token is in the sequence, the class token alone
    is classified (`classifier`)."""
    case = "deit-base-distilled-patch16-224"
    config = {**json.loads((HF / case / "config.json").read_text()), "num_hidden_layers": 1,
              "architectures": ["DeiTForImageClassification"]}
    sd = {k.replace("cls_classifier", "classifier"): v
          for k, v in scaled(case, {}, depth=1).items() if not k.startswith("distillation_classifier")}
    model = create_from_transformers_folder(write_folder(tmp_path / "deit", config, None, sd)).eval()
    x = torch.randn(1, 3, 224, 224)
    assert model.head_dist is None and model.num_prefix_tokens == 2
    assert torch.allclose(model(x), model.head(model.forward_features(x)[:, 0]), atol=1e-6)
    assert model.data_config.resize_size == (256, 256)      # DeiTImageProcessor's defaults, no preprocessor file


# ------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("config", [
    {"model_type": "swin", "architectures": ["SwinForImageClassification"]},
    {"model_type": "vit", "architectures": ["ViTForMaskedImageModeling"]},
    {"architectures": ["SomethingElse"]},
])
def test_unsupported_config_is_one_clear_line(tmp_path, config):
    folder = write_folder(tmp_path / "unsupported", config, None, {"w": torch.zeros(1)})
    with pytest.raises(ValueError) as e:
        create_model("unsupported", weights=folder)
    msg = str(e.value)
    assert "\n" not in msg and str(folder / "config.json") in msg and "is not supported" in msg
    assert all(cls in msg for fmt in FORMATS.values() for cls in fmt.classes)


def test_unsupported_image_processor_names_the_file(tmp_path):
    path = tmp_path / "preprocessor_config.json"
    path.write_text(json.dumps({"image_processor_type": "ConvNextImageProcessor"}))
    with pytest.raises(ValueError, match=r"preprocessor_config\.json: image processor 'ConvNextImageProcessor'"):
        DataConfig.from_preprocessor_config(path)


def test_read_config_defaults_the_class(tmp_path):
    """A config.json without `architectures` (as the hybrid's) is its model_type's first class."""
    config, fmt, cls = read_config(HF / HYBRID)
    assert cls == "ViTHybridForImageClassification" and fmt is FORMATS["vit-hybrid"]


# ------------------------------------------------------------------------------- processor rules

def _hf_config(**pp) -> DataConfig:
    return DataConfig.from_image_processor({"image_processor_type": "BitImageProcessor", "size": {"shortest_edge": 256},
                                            "crop_size": {"height": 224, "width": 224}, **pp})


def test_center_crop_offsets_floor_as_transformers():
    """transformers crops at floor((size - crop) / 2); timm rounds half to even: a 291-wide image
    (already 256 high, so not resized) starts its crop at column 33, where timm's would start at 34."""
    columns = np.tile(np.arange(291, dtype=np.uint8), (256, 1))
    img = Image.fromarray(np.stack([columns] * 3, axis=-1))
    crop = create_crop_transform(_hf_config())(img)
    assert crop.shape == (3, 224, 224) and crop[0, 0, :3].tolist() == [33, 34, 35]


def test_center_crop_pads_ceil_as_transformers():
    """An image smaller than the crop is zero-padded with ceil((crop - size) / 2) before it."""
    cfg = DataConfig.from_image_processor({"image_processor_type": "DeiTImageProcessor",
                                           "size": {"height": 5, "width": 5}, "crop_size": {"height": 8, "width": 8}})
    crop = create_crop_transform(cfg)(Image.new("RGB", (5, 5), (200, 200, 200)))
    rows = crop[0].sum(dim=1) > 0
    assert rows.tolist() == [False, False, True, True, True, True, True, False]


def test_rescale_and_normalize_fold_into_mean_std():
    """(x * rescale_factor - mean) / std as normalize_batch's (x / 255 - mean') / std'; the usual
    1/255 keeps the config's numbers as they are."""
    x = torch.arange(256, dtype=torch.uint8).view(1, 1, 1, 256).expand(1, 3, 1, 256)
    cfg = _hf_config(rescale_factor=1 / 127.5, image_mean=[1, 1, 1], image_std=[1, 1, 1])
    assert torch.allclose(normalize_batch(x, cfg.mean, cfg.std), x.float() / 127.5 - 1, atol=1e-6)
    raw = _hf_config(do_rescale=False, do_normalize=False)
    assert torch.allclose(normalize_batch(x, raw.mean, raw.std), x.float(), atol=1e-4)
    assert _hf_config().mean == (0.48145466, 0.4578275, 0.40821073)         # BitImageProcessor's default


def test_legacy_feature_extractor_config():
    """Older Hub configs: `feature_extractor_type` and int sizes (square for ViT/DeiT, shortest edge for BiT)."""
    deit = DataConfig.from_image_processor({"feature_extractor_type": "DeiTFeatureExtractor", "size": 256,
                                            "crop_size": 224, "resample": 3, "do_center_crop": True})
    assert (deit.crop_mode, deit.resize_size, deit.input_size) == ("hf_resize", (256, 256), (3, 224, 224))
    bit = DataConfig.from_image_processor({"image_processor_type": "BitImageProcessor", "size": 256, "crop_size": 224})
    assert (bit.crop_mode, bit.resize_size) == ("hf_shortest_edge", (256,))
