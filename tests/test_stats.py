"""Model statistics: hand-computed MAC/activation counts, decomposition-proof attention, and agreement
with timm's published benchmark rows (tests/fixtures/published_benchmarks.csv) for every architecture."""
import csv
import json

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.nn.attention import SDPBackend, sdpa_kernel

from support import FIXTURES
from vitbench.stats import OpCounter, Stats, count_model, count_stats, stats_main

PUBLISHED = FIXTURES / "published_benchmarks.csv"
TINY = "vit_tiny_patch16_224.augreg_in21k_ft_in1k"


def _count(module: nn.Module, *inputs, device="cpu") -> OpCounter:
    module = module.to(device)
    inputs = [x.to(device) for x in inputs]
    counter = OpCounter()
    with torch.no_grad(), counter:
        module(*inputs)
    return counter


# ---------------------------------------------------------------------------- hand-computed

@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_linear_macs(device):
    c = _count(nn.Linear(64, 32), torch.zeros(2, 10, 64), device=device)
    assert c.macs == {"linear": 2 * 10 * 64 * 32}          # bias adds are not MACs
    assert c.acts == {"linear": 2 * 10 * 32}


def test_linear_without_bias_and_2d_input():
    c = _count(nn.Linear(16, 8, bias=False), torch.zeros(5, 16))
    assert c.macs == {"linear": 5 * 16 * 8} and c.acts == {"linear": 5 * 8}


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_conv_macs(device):
    c = _count(nn.Conv2d(3, 8, 3, padding=1), torch.zeros(1, 3, 8, 8), device=device)
    assert c.acts == {"conv": 8 * 8 * 8}
    assert c.macs == {"conv": (8 * 8 * 8) * 3 * 3 * 3}     # out elements * C_in * kh * kw


def test_grouped_strided_conv_macs():
    c = _count(nn.Conv2d(8, 16, 3, stride=2, groups=4), torch.zeros(2, 8, 9, 9))
    out = 2 * 16 * 4 * 4
    assert c.acts == {"conv": out}
    assert c.macs == {"conv": out * (8 // 4) * 9}


class _SDPA(nn.Module):
    def forward(self, q, k, v):
        return F.scaled_dot_product_attention(q, k, v)


class _ExplicitAttention(nn.Module):
    def forward(self, q, k, v):
        attn = (q @ k.transpose(-2, -1) * q.shape[-1] ** -0.5).softmax(-1)
        return attn @ v


B, H, N, D = 2, 3, 5, 4
ATTN_MACS = 2 * B * H * N * N * D                          # q @ k^T and attn @ v
ATTN_ACTS = B * H * N * N + B * H * N * D                  # attention matrix + result


@pytest.mark.parametrize("path", ["fused", "math", "meta", "explicit"])
def test_attention_counted_once_on_every_path(path):
    """Fused SDPA op, SDPA decomposed to bmm (MATH kernel, meta device) and explicit matmuls agree."""
    q, k, v = (torch.randn(B, H, N, D) for _ in range(3))
    module = _ExplicitAttention() if path == "explicit" else _SDPA()
    device = "meta" if path == "meta" else "cpu"
    if path == "math":
        with sdpa_kernel(SDPBackend.MATH):
            c = _count(module, q, k, v)
    else:
        c = _count(module, q, k, v, device=device)
    assert c.macs == {"attn": ATTN_MACS}
    assert c.acts == {"attn": ATTN_ACTS}


def test_outer_product_is_not_attention():
    """A batched product with inner dim 1 (RoPE-Mixed's positions x per-head frequencies) counts in the
    totals, as timm's do, but not as attention."""
    pos, freqs = torch.randn(7, 1), torch.randn(4, 3, 1, 5)
    c = _count(_MatMul(), pos, freqs)
    assert c.total_macs == 4 * 3 * 7 * 5 and c.total_acts == 4 * 3 * 7 * 5
    assert c.macs["attn"] == 0 and c.acts["attn"] == 0


class _MatMul(nn.Module):
    def forward(self, a, b):
        return a @ b


def test_attention_with_different_kv_length():
    q, k, v = torch.randn(1, 2, 3, 8), torch.randn(1, 2, 7, 8), torch.randn(1, 2, 7, 6)
    c = _count(_SDPA(), q, k, v)
    assert c.macs == {"attn": 1 * 2 * 3 * 7 * 8 + 1 * 2 * 3 * 7 * 6}


class _TinyViT(nn.Module):
    """One block of a ViT, small enough to count by hand."""

    def __init__(self, img=32, patch=8, dim=16, heads=2):
        super().__init__()
        from vitbench.models.layers import Attention, Mlp, PatchEmbed

        self.img_size = img
        self.patch_embed = PatchEmbed(img, patch, 3, dim)
        self.attn = Attention(dim, heads)
        self.mlp = Mlp(dim, 4 * dim)
        self.head = nn.Linear(dim, 10)

    def forward(self, x):
        x = self.patch_embed(x)
        x = x + self.attn(x)
        x = x + self.mlp(x)
        return self.head(x.mean(1))


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_stats_of_a_hand_built_vit(device):
    model = _TinyViT().to(device)
    s = count_model(model, device=device)
    n, d = (32 // 8) ** 2, 16
    conv = n * d * (3 * 8 * 8)
    linear = n * (3 * d * d + d * d + 8 * d * d) + d * 10
    attn = 2 * n * n * d                                   # summed over heads: H * N*N*(d/H) * 2
    assert s == Stats(
        param_count=sum(p.numel() for p in model.parameters()),
        gmacs=(conv + linear + attn) / 1e9,
        gmacs_no_attn=(conv + linear) / 1e9,
        macts=(n * d + n * (3 * d + d + 4 * d + d) + 10 + 2 * n * n + n * d) / 1e6,
        img_size=32,
        macts_no_attn=(n * d + n * (3 * d + d + 4 * d + d) + 10) / 1e6,   # q@k^T and attn@v outputs left out
    )


# ---------------------------------------------------------------------------- published rows

def _published_rows() -> dict[str, dict]:
    with PUBLISHED.open() as f:
        return {r["model"]: r for r in csv.DictReader(f)}


def _architectures() -> list[str]:
    from vitbench.models import list_architectures

    return list_architectures()


@pytest.mark.parametrize("arch", _architectures())
def test_matches_timm_published_benchmark(arch):
    """Every registered architecture has timm's published row, and its counts match it."""
    row = _published_rows().get(arch)
    assert row is not None, f"{arch}: no row in timm's published benchmark CSV"
    s = count_stats(arch)
    assert s.img_size == int(row["infer_img_size"])
    assert round(s.param_count / 1e6, 2) == float(row["param_count"])
    assert s.gmacs == pytest.approx(float(row["infer_gmacs"]), rel=0.01)
    assert s.macts == pytest.approx(float(row["infer_macts"]), rel=0.01)
    # tighter than the 1% bar: equal at the published 2-decimal rounding (1 unit of slack for ties)
    assert abs(round(s.gmacs, 2) - float(row["infer_gmacs"])) <= 0.011
    assert abs(round(s.macts, 2) - float(row["infer_macts"])) <= 0.011
    assert s.gmacs_no_attn < s.gmacs


@pytest.mark.parametrize("name, params, gmacs, macts", [
    ("vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k", 60.2, 15.5, 18.1),   # seed 000
    ("vit_base_patch16_384.augreg_in21k_ft_in1k", 86.9, 49.4, 48.3),        # seed 004
])
def test_matches_the_seed_model_cards(name, params, gmacs, macts):
    """The cards' Model Stats: params, GMACs and activations without the attention matmuls."""
    s = count_stats(name)
    assert (round(s.param_count / 1e6, 1), round(s.gmacs_no_attn, 1), round(s.macts_no_attn, 1)) == (
        params, gmacs, macts)


def test_norms_are_counted_like_timm():
    """LayerNorm with an affine weight: 5 per element; without: 4 (fvcore's convention, timm's numbers)."""
    x = torch.zeros(1, 7, 16)
    for affine, per_element in ((True, 5), (False, 4)):
        counter = _count(nn.LayerNorm(16, elementwise_affine=affine), x)
        assert counter.macs["norm"] == 7 * 16 * per_element and counter.acts["norm"] == 0
    gn = _count(nn.GroupNorm(4, 8), torch.zeros(1, 8, 5, 5))
    assert gn.macs["norm"] == 8 * 5 * 5 * 5


def test_model_instance_counts_like_its_name():
    """A real CPU forward of a built model counts the same as the meta-device count of its name."""
    from vitbench.models import create_model

    with torch.no_grad():
        model = create_model(TINY)
    assert count_stats(model) == count_stats(TINY)


# ---------------------------------------------------------------------------- the CLI stage

def test_stats_main_json_and_records(tmp_path, capsys):
    from vitbench.records import read_record, stats_path

    assert stats_main([TINY], as_json=True, results_dir=tmp_path) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["checkpoint"] for r in rows] == [TINY]
    assert rows[0]["architecture"] == "vit_tiny_patch16_224"
    assert rows[0]["img_size"] == 224 and rows[0]["param_count"] == 5_717_416
    assert rows[0]["gmacs"] == pytest.approx(1.26, rel=0.01)
    assert rows[0]["gmacs_no_attn"] < rows[0]["gmacs"]
    assert rows[0]["provenance"]["device"] == "cpu"
    rec = read_record(stats_path(tmp_path, TINY))
    assert rec.kind == "stats" and rec.gmacs == rows[0]["gmacs"]


def test_stats_main_table_and_failure(capsys):
    assert stats_main([TINY, "no_such_model.x"]) == 1
    out = capsys.readouterr()
    assert "vit_tiny_patch16_224" in out.out and "GMACs" in out.out
    assert "no_such_model.x" in out.err


def test_a_record_counted_under_other_rules_is_recounted(tmp_path):
    """Resume keeps a stats record only if it was counted with today's COUNT_RULES."""
    from dataclasses import replace

    from vitbench.records import read_record, stats_path, write_record
    from vitbench.run.resume import stats_current
    from vitbench.stats import COUNT_RULES, measure

    path = stats_path(tmp_path, TINY)
    stale = replace(measure(TINY), gmacs=0.0, macts_no_attn=None, count_rules=COUNT_RULES - 1)
    write_record(path, stale)
    assert not stats_current(read_record(path))
    assert stats_main([TINY], results_dir=tmp_path) == 0
    rec = read_record(path)
    assert stats_current(rec) and rec.gmacs == pytest.approx(1.2584, abs=1e-4) and rec.macts_no_attn
