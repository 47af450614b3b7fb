"""The effective-robustness plot at the zoo's size (vitbench.analysis.plots): which checkpoints get a
number in the key, a distinct colour and shape per family past the palette, and the crowded plot
written deterministically."""
from __future__ import annotations

import dataclasses
import struct

from vitbench.analysis.plots import (
    FAMILY_COLOURS,
    MAX_NUMBERED,
    RobustnessPoint,
    _style,
    published_points,
    robustness_plot,
)
from vitbench.catalog.registry import list_models
from vitbench.report.facts import family_title


def points(n: int, measured: int = 0, families: int = 3) -> list[RobustnessPoint]:
    return [RobustnessPoint(f"m{i:03d}", f"family {i % families}", "v2", 80.0 + 0.01 * i, 70.0, measured=i < measured)
            for i in range(n)]


def test_few_checkpoints_are_all_numbered():
    style = _style(points(MAX_NUMBERED, measured=2))
    assert sorted(style.number) == [f"m{i:03d}" for i in range(MAX_NUMBERED)] and not style.measured_only


def test_many_checkpoints_number_only_the_measured_ones():
    style = _style(points(MAX_NUMBERED + 1, measured=3))
    assert style.number == {"m000": 1, "m001": 2, "m002": 3} and style.measured_only
    assert _style(points(2 * MAX_NUMBERED, measured=MAX_NUMBERED + 1)).number == {}     # too many: none


def test_every_family_its_own_colour_and_shape():
    n = 2 * len(FAMILY_COLOURS) + 3
    style = _style(points(n, families=n))
    assert len({(style.colour[f], style.marker[f]) for f in style.colour}) == n


def test_zoo_sized_plot_is_written_and_deterministic(tmp_path):
    published = published_points({n: family_title(n) for n in list_models()})
    measured = [dataclasses.replace(p, measured=True, shift_top1=p.shift_top1 + 0.4) for p in published]
    assert len({p.checkpoint for p in published}) > MAX_NUMBERED
    first = robustness_plot(tmp_path / "a.png", published + measured).read_bytes()
    assert first == robustness_plot(tmp_path / "b.png", published + measured).read_bytes()
    assert struct.unpack(">II", first[16:24]) == (1700, 1240)          # the size of every ER plot
