"""What every family reads the same way from a transformers-format checkpoint.

- config.json values: `num_labels`, `image_size`, `hidden_act`, the encoder dims (`encoder_kwargs`), in
  transformers' own semantics (a head as wide as id2label; `layer_norm_eps` as given, 1e-12 for ViT).
- the key remap each family's `checkpoint_filter_fn` applies to transformers' keys
  (`rename_transformers_keys`): regex rules to timm's names, the separate query/key/value projections
  of `{prefix}.encoder.layer.N.attention.attention` fused into timm's `blocks.N.attn.qkv` (a key
  projection without bias, BEiT's, gives timm's `q_bias`/`v_bias`), a few keys dropped, and an error
  for any key no rule knows, so nothing is silently lost.
"""
from __future__ import annotations

import math
import re

import torch

from vitbench.models.layers import ACT_LAYERS

Rules = list[tuple[str, str]]      # (regex on the transformers key, replacement giving timm's key)


# --------------------------------------------------------------------------------------- config.json

def num_labels(config: dict) -> int:
    """The head width transformers gives this config: len(id2label), else num_labels, else its default 2."""
    if config.get("id2label"):
        return len(config["id2label"])
    return int(config.get("num_labels", 2))


def image_size(config: dict, default: int = 224) -> int:
    """config.json's `image_size` (an int, or a square [H, W])."""
    size = config.get("image_size", default)
    if isinstance(size, (list, tuple)):
        if len(size) != 2 or size[0] != size[1]:
            raise ValueError(f"image_size {size}: only square inputs are supported")
        size = size[0]
    return int(size)


def act_layer(config: dict) -> str:
    """config.json's `hidden_act`, checked against the activations vitbench has."""
    act = config.get("hidden_act", "gelu")
    if act not in ACT_LAYERS:
        raise ValueError(f"hidden_act {act!r} is not supported (supported: {', '.join(ACT_LAYERS)})")
    return act


def mlp_ratio_for(width: int, dim: int) -> float:
    """The mlp_ratio whose int(dim * ratio) is exactly `width` (width / dim can land a hair below)."""
    ratio = width / dim
    while int(dim * ratio) < width:
        ratio = math.nextafter(ratio, math.inf)
    return ratio


def encoder_kwargs(config: dict, image_size_default: int = 224, patch_size_default: int = 16,
                   eps_default: float = 1e-12) -> dict:
    """The encoder dims every ViT-like family takes from config.json: width, depth, heads, patch and
    image size, LayerNorm eps, activation, head width. The MLP width is each family's own. The
    defaults are the config class's, for a key config.json leaves out (transformers writes them all)."""
    if int(config.get("num_channels", 3)) != 3:
        raise ValueError(f"num_channels {config['num_channels']}: vitbench evaluates RGB images (3 channels)")
    return dict(
        img_size=image_size(config, image_size_default),
        patch_size=int(config.get("patch_size", patch_size_default)),
        embed_dim=int(config["hidden_size"]),
        depth=int(config["num_hidden_layers"]),
        num_heads=int(config["num_attention_heads"]),
        norm_eps=float(config.get("layer_norm_eps", eps_default)),
        act_layer=act_layer(config),
        num_classes=num_labels(config),
    )


# ------------------------------------------------------------------------------------------- state dict

def qkv_pattern(prefix: str) -> str:
    """The separate q/k/v projection keys of transformers' ViT-style encoders under `prefix`."""
    return rf"^{re.escape(prefix)}\.encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)$"


# transformers' ViT layer (ViT, DeiT, BEiT, ViTHybrid): key within `encoder.layer.N.` -> within `blocks.N.`
VIT_LAYER: Rules = [
    (r"attention\.output\.dense\.", "attn.proj."),
    (r"intermediate\.dense\.", "mlp.fc1."),
    (r"output\.dense\.", "mlp.fc2."),
    (r"layernorm_before\.", "norm1."),
    (r"layernorm_after\.", "norm2."),
]


def encoder_rules(prefix: str, layer_rules: Rules = VIT_LAYER) -> Rules:
    """Rules for the embeddings, layers and final norm of a transformers encoder under `prefix` (`vit`,
    `deit`, `beit`, `dinov2`); `layer_rules` rename the keys within a layer (a replacement's groups
    count from \\2: \\1 is the layer index). q/k/v go through `qkv_pattern`, heads are the family's."""
    p = re.escape(prefix)
    return [
        (rf"^{p}\.embeddings\.cls_token$", "cls_token"),
        (rf"^{p}\.embeddings\.position_embeddings$", "pos_embed"),
        (rf"^{p}\.embeddings\.patch_embeddings\.projection\.", "patch_embed.proj."),
        *((rf"^{p}\.encoder\.layer\.(\d+)\." + key, r"blocks.\1." + new) for key, new in layer_rules),
        (rf"^{p}\.layernorm\.", "norm."),
    ]


def rename_transformers_keys(state_dict: dict[str, torch.Tensor], rules: Rules, qkv: str, family: str,
                             drop: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """transformers keys -> timm keys.

    rules: (regex, replacement), the first that matches renames the key.
    qkv: a regex with groups (block index, 'query'|'key'|'value', 'weight'|'bias'); the three weights
        become `blocks.N.attn.qkv.weight` (concatenated q, k, v), the biases `qkv.bias`, or `q_bias` and
        `v_bias` when the key projection has none.
    drop: regexes of keys with no use at inference (a mask token, a derived index buffer).
    A key that none of these match is a KeyError naming it.
    """
    out: dict[str, torch.Tensor] = {}
    parts: dict[tuple[str, str], dict[str, torch.Tensor]] = {}
    unknown = []
    for k, v in state_dict.items():
        m = re.match(qkv, k)
        if m:
            parts.setdefault((m[1], m[3]), {})[m[2]] = v
            continue
        if any(re.search(d, k) for d in drop):
            continue
        for pattern, repl in rules:
            new, n = re.subn(pattern, repl, k)
            if n:
                out[new] = v
                break
        else:
            unknown.append(k)
    if unknown:
        raise KeyError(f"transformers {family} checkpoint has keys with no native counterpart: {unknown[:5]}"
                       f"{' ...' if len(unknown) > 5 else ''}")
    for (block, kind), p in sorted(parts.items()):
        if kind == "bias" and set(p) == {"query", "value"}:        # BEiT: no key bias
            out[f"blocks.{block}.attn.q_bias"], out[f"blocks.{block}.attn.v_bias"] = p["query"], p["value"]
            continue
        if set(p) != {"query", "key", "value"}:
            raise KeyError(f"transformers {family} checkpoint: layer {block} attention {kind} lacks "
                           f"{sorted({'query', 'key', 'value'} - set(p))}")
        out[f"blocks.{block}.attn.qkv.{kind}"] = torch.cat([p["query"], p["key"], p["value"]], dim=0)
    return out
