"""The cards' usage code runs: every ```python block of a rendered card is executed (random
weights; urlopen answered with a generated image), and the shapes the card states in its comments
are the shapes the code produces."""
import contextlib
import io
import re
import urllib.request

import pytest
from PIL import Image

import vitbench.models
from vitbench.report import render_reports

CARDS = [
    "vit_betwixt_patch16_rope_reg4_gap_256.sbb_in1k",    # seed 000: rope + registers
    "vit_relpos_base_patch16_clsgap_224.sw_in1k",        # seed 001: relpos, class token + gap
    "vit_base_patch16_384.augreg_in21k_ft_in1k",         # seed 004
    "google--vit-hybrid-base-bit-384",                   # seed 002: the transformers card
]


@pytest.fixture(scope="module")
def cards(tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    render_reports(tmp_path_factory.mktemp("results"), out)
    return out / "cards"


@pytest.fixture
def offline_usage(monkeypatch):
    """create_model(..., pretrained=True) builds random weights; urlopen returns a generated JPEG."""
    real = vitbench.models.create_model

    def create_model(name, pretrained=False, **kwargs):
        return real(name, **kwargs)

    def urlopen(url, *args, **kwargs):
        buf = io.BytesIO()
        Image.new("RGB", (500, 375), (120, 80, 40)).save(buf, "JPEG")
        buf.seek(0)
        return buf

    monkeypatch.setattr(vitbench.models, "create_model", create_model)
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)


def run_block(code: str) -> tuple[dict, str]:
    ns: dict = {}
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<card>", "exec"), ns)   # noqa: S102 - the card's own example code
    return ns, out.getvalue()


@pytest.mark.parametrize("card", CARDS)
def test_card_code_runs_and_its_shapes_are_true(card, cards, offline_usage):
    text = (cards / f"{card}.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert blocks, f"{card}: no python blocks"
    checked = 0
    for code in blocks:
        ns, printed = run_block(code)
        # comments like "# torch.Size([1, 640, 16, 16])" are what the block prints
        claimed = re.findall(r"#\s*(torch\.Size\(\[[\d, ]+\]\))", code)
        if claimed:
            assert printed.split() == " ".join(claimed).split(), card
            checked += 1
        # "a (1, 260, 640) shaped tensor" after forward_features is the unpooled token shape
        m = re.search(r"unpooled, a \((\d+), (\d+), (\d+)\) shaped tensor", code)
        if m:
            x = ns["transform"](ns["img"]).unsqueeze(0)
            assert tuple(ns["model"].forward_features(x).shape) == tuple(map(int, m.groups())), card
            assert tuple(ns["output"].shape) == (1, ns["model"].num_features), card
            checked += 1
    if card.startswith("google--"):
        assert "Predicted class:" in printed
    else:
        assert checked == 2, f"{card}: the feature-map and embedding shape claims were not found"
