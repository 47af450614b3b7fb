"""The statistics vitbench reports, in one place: how sure a measured accuracy is, and whether two
checkpoints differ on the same images.

    wilson_interval(correct, n)      -> (lo, hi) in percent, the 95% Wilson score interval
    mcnemar(correct_a, correct_b)    -> (b, c, p): paired two-sided McNemar test
"""
from __future__ import annotations

import math

Z_95 = 1.959963984540054   # standard-normal quantile for a two-sided 95% interval


def wilson_interval(correct: int, n: int, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a proportion correct/n, in percent (0..100). n == 0 -> (0, 100).

        centre = (p + z²/2n) / (1 + z²/n),  half = z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)
    """
    if n <= 0:
        return (0.0, 100.0)
    p = correct / n
    denom = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half))


def mcnemar(correct_a, correct_b) -> tuple[int, int, float]:
    """Paired McNemar test on two aligned boolean sequences: (b, c, two-sided p), where b = only A right,
    c = only B right. Exact binomial for b + c < 50, else chi-square with continuity correction (1 dof)."""
    b = sum(1 for x, y in zip(correct_a, correct_b, strict=True) if x and not y)
    c = sum(1 for x, y in zip(correct_a, correct_b, strict=True) if y and not x)
    n = b + c
    if n == 0:
        return b, c, 1.0
    if n < 50:
        k = min(b, c)
        p = 2 * sum(math.comb(n, i) for i in range(k + 1)) / 2 ** n
        return b, c, min(1.0, p)
    chi2 = (abs(b - c) - 1) ** 2 / n
    return b, c, math.erfc(math.sqrt(chi2 / 2))


__all__ = ["Z_95", "wilson_interval", "mcnemar"]
