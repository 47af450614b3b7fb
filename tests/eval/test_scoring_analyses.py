"""What the eval side adds for the analyses: A/R scored 1000-way beside the 200-class number (summed
over ranks), the top-1 confidence calibration is computed from (against torchmetrics on the full
probability matrix), and the backend settings (torch.compile with one static batch shape,
channels-last weights and inputs)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_calibration_error

from support import DUMMY_CONFIG, ColourModel, _Batches, class_colour, make_loader
from vitbench.analysis.calibration import ece
from vitbench.catalog import subset_indices
from vitbench.data.transforms import normalize_batch
from vitbench.eval import engine, evaluate
from vitbench.eval.distributed import World
from vitbench.eval.engine import Member, Pass, PassSettings
from vitbench.eval.scoring import EvalSpec, Scorer, prepare_model, top1_confidence

SPEC = EvalSpec(mean=DUMMY_CONFIG.mean, std=DUMMY_CONFIG.std)
A = subset_indices("a")
OUTSIDE = [c for c in range(1000) if c not in set(A)]


def _batches(x8: torch.Tensor, targets, batch: int = 4, start: int = 0) -> _Batches:
    """collate_eval-style batches of the uint8 images `x8` [N, 3, H, W], dataset indices from `start`."""
    t = torch.as_tensor(targets, dtype=torch.long)
    return _Batches([(x8[s:s + batch], t[s:s + batch], torch.arange(start + s, start + s + len(x8[s:s + batch])), [])
                     for s in range(0, len(x8), batch)])


def _solid(colours) -> torch.Tensor:
    """uint8 [N, 3, 32, 32] solid images of the given RGB colours."""
    rgb = torch.as_tensor(colours, dtype=torch.uint8)
    return rgb[:, :, None, None].expand(-1, -1, 32, 32).contiguous()


class Sharp(ColourModel):
    """The colour model at a lower temperature: random colours get top-1 confidences from ~0.2 to 1."""

    def forward(self, x):
        return 5.0 * super().forward(x)


def _probabilities(model, x8: torch.Tensor) -> torch.Tensor:
    """The full softmax matrix [N, 1000] of `model` on `x8`, computed here, outside the engine."""
    with torch.no_grad():
        return model(normalize_batch(x8, DUMMY_CONFIG.mean, DUMMY_CONFIG.std)).float().softmax(dim=1)


# ---------------------------------------------------------------------------- 1000-way A/R

def _a_spec() -> EvalSpec:
    return EvalSpec(mean=DUMMY_CONFIG.mean, std=DUMMY_CONFIG.std, subset=tuple(A), score_1000way=True)


def test_a_class_outside_the_subset_wins_1000_way_and_loses_200_way():
    """A boosted class outside A's 200 is everyone's argmax: 200-way all right, 1000-way all wrong;
    without the boost both count the same images."""
    classes = list(A[:6])
    pos = list(range(6))                                     # loader targets: positions in the subset
    boosted = evaluate(ColourModel(boost=(OUTSIDE[0],)), make_loader(classes, pos), _a_spec())
    assert (boosted.top1, boosted.top1_1000way) == (100.0, 0.0)
    plain = evaluate(ColourModel(), make_loader(classes, pos), _a_spec())
    assert (plain.top1, plain.top1_1000way) == (100.0, 100.0)
    # not asked for (a clean baseline, any set without its own 200-class images): None
    spec = EvalSpec(mean=DUMMY_CONFIG.mean, std=DUMMY_CONFIG.std, subset=tuple(A))
    assert evaluate(ColourModel(), make_loader(classes, pos), spec).top1_1000way is None
    assert evaluate(ColourModel(), make_loader([0, 1]), SPEC).top1_1000way is None


def test_1000_way_against_an_independent_argmax():
    """Images of A's classes, some coloured as a class outside A: the count equals the argmax of the
    full logits computed here; the 200-way top-1 of those images can still be right or wrong."""
    rng = np.random.default_rng(0)
    targets = rng.integers(0, 200, size=13)
    colour_of = [A[t] if k % 3 else OUTSIDE[int(rng.integers(0, 800))] for k, t in enumerate(targets)]
    x8 = _solid([class_colour(c) for c in colour_of])
    model = ColourModel()
    r = evaluate(model, _batches(x8, targets, batch=5), _a_spec())
    expected = (_probabilities(model, x8).argmax(1).numpy() == np.asarray(A)[targets]).mean() * 100
    assert r.top1_1000way == pytest.approx(expected) and 0 < expected < 100
    assert r.predictions.target.tolist() == [A[t] for t in targets]     # stored in 1000-class indices


def test_the_scorer_keeps_the_count_on_the_device():
    scorer = Scorer(_a_spec(), "cpu")
    logits = torch.zeros(2, 1000)
    logits[0, A[3]] = 1.0                                     # right 1000-way
    logits[1, OUTSIDE[0]], logits[1, A[1]] = 2.0, 1.0         # right 200-way only
    scorer.update(logits, torch.tensor([3, 1]), torch.arange(2))
    assert isinstance(scorer.right_1000way, torch.Tensor) and scorer.right_1000way.device.type == "cpu"
    assert scorer.count_1000way() == 1


def test_the_1000_way_count_is_summed_over_ranks(monkeypatch):
    """Two ranks played in one process: each finishes with its share's count in the payload, and rank
    0's result is the sum (not its own share)."""
    targets = list(range(8))
    colour_of = [A[t] if t in (0, 2, 4, 1) else OUTSIDE[t] for t in targets]   # rank 0: 0, 2, 4; rank 1: 1
    x8 = _solid([class_colour(c) for c in colour_of])
    sent: dict[str, list] = {"gather": [], "max": []}
    calls = {"gather": 0, "max": 0}

    def gather(world, obj):
        if world.rank == 1:
            sent["gather"].append(obj)
            return [obj, obj]
        other = sent["gather"][calls["gather"]]
        calls["gather"] += 1
        return [obj, other]

    def all_max(world, values):
        if world.rank == 1:
            sent["max"].append(list(values))
            return list(values)
        other = sent["max"][calls["max"]]
        calls["max"] += 1
        return [max(a, b) for a, b in zip(values, other, strict=True)]

    monkeypatch.setattr(engine, "all_gather", gather)
    monkeypatch.setattr(engine, "all_max", all_max)
    results = {}
    for rank in (1, 0):
        world = World(rank=rank, world_size=2)
        share = list(range(rank, 8, 2))
        loader = _Batches([(x8[share], torch.tensor([targets[i] for i in share]), torch.tensor(share), [])])
        member = Member("model", Scorer(_a_spec(), "cpu"), "model a", n_items=None)
        model = prepare_model(ColourModel(), "cpu", "fp32")
        results[rank] = Pass({"model": model}, [member], PassSettings(world=world, batch_size=4)).run(loader, 4)
    assert results[1] == []                                   # rank 0 alone gets the result
    r = results[0][0].result
    assert r.n == 8 and r.predictions.index.tolist() == list(range(8))
    assert r.top1_1000way == pytest.approx(100 * 4 / 8)       # 3 right on rank 0 + 1 on rank 1


# ---------------------------------------------------------------------------- calibration

def _random_colours(rng, n: int):
    """n solid images of random colours (uint8 [n, 3, 32, 32]), the sharp model and its probabilities."""
    x8 = torch.as_tensor(rng.integers(0, 256, size=(n, 3)), dtype=torch.uint8)[:, :, None, None]
    x8 = x8.expand(-1, -1, 32, 32).contiguous()
    model = Sharp()
    return x8, model, _probabilities(model, x8)


def test_ece_of_the_stored_top1_equals_torchmetrics_on_the_full_matrix():
    """Random colours (confidences all over [0, 1]) and targets half the nearest class, half random:
    the ECE of the kept top-1 probability equals torchmetrics' on the full probability matrix."""
    rng = np.random.default_rng(1)
    n = 300
    x8, model, probs = _random_colours(rng, n)
    targets = probs.argmax(1).numpy().copy()
    flip = rng.random(n) < 0.5
    targets[flip] = rng.integers(0, 1000, size=int(flip.sum()))
    r = evaluate(model, _batches(x8, targets, batch=64), SPEC)
    prob, right = top1_confidence(r.predictions)
    expected = float(multiclass_calibration_error(probs, torch.as_tensor(targets), num_classes=1000, n_bins=15,
                                                  norm="l1"))
    assert abs(ece(prob, right) - expected) < 1e-6
    conf = probs.max(1).values.numpy()
    assert conf.min() < 0.3 and conf.max() > 0.95 and len(set(np.digitize(conf, np.linspace(0, 1, 16)))) >= 10


def test_ece_of_real_counts_the_label_set_and_leaves_out_empty_sets():
    """ReaL: right when the top-1 is in the image's set; torchmetrics sees the same with a target
    chosen from the set (the top-1 when it is in it), and without the images whose set is empty."""
    rng = np.random.default_rng(2)
    n = 120
    x8, model, probs = _random_colours(rng, n)
    top1 = probs.argmax(1).numpy()
    sets = []
    for k in range(n):
        if k % 7 == 0:
            sets.append(())                                                     # not scored
        elif k % 2:
            sets.append((int(top1[k]), int((top1[k] + 5) % 1000)))              # right
        else:
            sets.append((int((top1[k] + 1) % 1000), int((top1[k] + 2) % 1000)))  # wrong
    spec = EvalSpec(mean=DUMMY_CONFIG.mean, std=DUMMY_CONFIG.std, label_sets=tuple(sets))
    r = evaluate(model, _batches(x8, [0] * n, batch=32), spec)
    prob, right = top1_confidence(r.predictions, spec.label_sets)
    keep = np.array([len(s) > 0 for s in sets])
    target = np.array([top1[k] if top1[k] in s else (s[0] if s else 0) for k, s in enumerate(sets)])
    expected = float(multiclass_calibration_error(probs[keep], torch.as_tensor(target[keep]), num_classes=1000,
                                                  n_bins=15, norm="l1"))
    assert len(prob) == keep.sum() == r.n_scored
    assert abs(ece(prob, right) - expected) < 1e-6


# ---------------------------------------------------------------------------- backends

def test_compile_pads_the_last_batch_to_one_static_shape(monkeypatch):
    """Under compile every forward sees the full batch (the last one padded), and the result is the
    eager one (the padded rows dropped)."""
    shapes = []

    class Spy(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            shapes.append(tuple(x.shape))
            return self.model(x)

    monkeypatch.setattr(engine, "compile_model", Spy)
    classes = [0, 3, 7, 11, 42, 99, 123, 500, 998, 999]
    eager = evaluate(ColourModel(), make_loader(classes, batch=4), SPEC)
    compiled = evaluate(ColourModel(), make_loader(classes, batch=4), SPEC, compile=True, batch_size=4)
    assert shapes == [(4, 3, 32, 32)] * 3                   # 4 + 4 + 2 (padded to 4)
    assert compiled.n == 10 and compiled.top1 == eager.top1 == 100.0
    assert np.array_equal(compiled.predictions.top5_idx, eager.predictions.top5_idx)
    assert np.array_equal(compiled.predictions.top5_prob, eager.predictions.top5_prob)


def test_channels_last_weights_and_inputs():
    seen = []

    class Probe(ColourModel):
        def forward(self, x):
            seen.append(x.is_contiguous(memory_format=torch.channels_last) and not x.is_contiguous())
            return super().forward(x)

    r = evaluate(Probe(), make_loader([0, 5, 9, 300, 301]), SPEC, channels_last=True)
    assert r.top1 == 100.0 and seen and all(seen)
    conv = prepare_model(torch.nn.Conv2d(3, 8, 4, 4), "cpu", "fp32", channels_last=True)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
