"""The interface every vitbench ViT family shares (timm's): forward = forward_features -> forward_head.

A family subclasses `ViTBase`, builds `blocks`, `norm`, `fc_norm` and `head`, sets `num_classes`,
`global_pool` ('avg' | 'token' | ''), `embed_dim`, `num_prefix_tokens`, `patch_size`, and defines
`_tokens(x) -> (tokens, rope)`: the patch tokens with prefix tokens and positions, plus the rotary
tables the blocks need (None without rope). Every block is called as `blk(x, rope)`; `rope` may be a
list with one entry per block (RoPE-Mixed learns frequencies per block), block i then gets rope[i].
"""
from __future__ import annotations

import torch
import torch.nn as nn


def take_indices(depth: int, indices: int | list[int]) -> list[int]:
    """Block indices to return: int n -> the last n blocks; a list -> those (negative from the end)."""
    if isinstance(indices, int):
        if not 0 < indices <= depth:
            raise ValueError(f"indices={indices}: need 1..{depth} blocks")
        return list(range(depth - indices, depth))
    if not indices or not all(-depth <= i < depth for i in indices):
        raise ValueError(f"indices={indices!r}: block indices must be in [-{depth}, {depth})")
    return [i % depth for i in indices]


def block_ctx(ctx, i: int):
    """What block i gets of `_tokens`' ctx: one shared value, or its own entry of a per-block list."""
    return ctx[i] if isinstance(ctx, list) else ctx


class ViTBase(nn.Module):
    def _tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, object]:
        raise NotImplementedError

    # -- head
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int) -> None:
        """A new head of `num_classes` (0: none, so forward returns the pooled features)."""
        self.num_classes = num_classes
        width = getattr(self, "head_hidden_size", self.embed_dim)      # what pool() hands the head
        self.head = nn.Linear(width, num_classes) if num_classes > 0 else nn.Identity()

    # -- forward
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x, ctx = self._tokens(x)
        for i, blk in enumerate(self.blocks):
            x = blk(x, block_ctx(ctx, i))
        return self.norm(x)                                   # (B, prefix + N, C)

    def pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.global_pool == "avg":
            return x[:, self.num_prefix_tokens:].mean(dim=1)  # (B, C), prefix tokens left out
        if self.global_pool == "token":
            return x[:, 0]
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.fc_norm(self.pool(x))
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def forward_intermediates(self, x: torch.Tensor, indices: int | list[int] = 1) -> list[torch.Tensor]:
        """Outputs of the chosen blocks (int n: the last n) as (B, C, H', W') maps, prefix tokens dropped."""
        take = take_indices(len(self.blocks), indices)
        B, _, H, W = x.shape
        gh, gw = H // self.patch_size, W // self.patch_size
        x, ctx = self._tokens(x)
        out = []
        for i, blk in enumerate(self.blocks[:max(take) + 1]):
            x = blk(x, block_ctx(ctx, i))
            if i in take:
                y = x[:, self.num_prefix_tokens:]                                   # (B, H'*W', C)
                out.append(y.reshape(B, gh, gw, -1).permute(0, 3, 1, 2).contiguous())  # (B, C, H', W')
        return out
