"""The statistics module: Wilson intervals and the paired McNemar test against reference values."""
from __future__ import annotations

import pytest

from vitbench.significance import mcnemar, wilson_interval

# ---------------------------------------------------------------------------- Wilson interval

def test_wilson_interval_known_values():
    # reference values: scipy.stats.binomtest(k, n).proportion_ci(method="wilson")
    lo, hi = wilson_interval(80, 100)
    assert lo == pytest.approx(71.117083, abs=1e-5) and hi == pytest.approx(86.663307, abs=1e-5)
    lo, hi = wilson_interval(40000, 50000)          # ImageNet-val sized: 80% +- 0.35
    assert lo == pytest.approx(79.647092, abs=1e-5) and hi == pytest.approx(80.348298, abs=1e-5)


def test_wilson_interval_edges():
    assert wilson_interval(0, 0) == (0.0, 100.0)
    lo, hi = wilson_interval(0, 10)
    assert lo == 0.0 and hi == pytest.approx(27.753280, abs=1e-5)     # never below 0
    lo, hi = wilson_interval(10, 10)
    assert hi == pytest.approx(100.0) and lo == pytest.approx(72.246720, abs=1e-5)
    for k, n in [(1, 3), (500, 1000), (7, 9)]:
        lo, hi = wilson_interval(k, n)
        assert lo < 100 * k / n < hi


# ---------------------------------------------------------------------------- paired test

def test_mcnemar():
    assert mcnemar([True, False], [True, False]) == (0, 0, 1.0)
    b, c, p = mcnemar([True] * 10 + [False] * 0, [False] * 10)       # exact: 2 * 0.5**10
    assert (b, c) == (10, 0) and p == pytest.approx(2 / 1024)
    b, c, p = mcnemar([True] * 60 + [False] * 40, [False] * 60 + [True] * 40)
    assert (b, c) == (60, 40) and p == pytest.approx(0.0577, abs=1e-3)   # chi2 = 19^2/100 = 3.61
