"""The statistics vitbench reports, in one place: how sure a measured accuracy is, and whether two
checkpoints differ on the same images.

    wilson_interval(correct, n)      -> (lo, hi) in percent, the 95% Wilson score interval
    mcnemar(correct_a, correct_b)    -> (b, c, p): paired two-sided McNemar test (exact=True: always
                                        the exact binomial test)
    binomial_two_sided_p(k, n)       -> exact two-sided p of k successes in n fair coin flips
    paired_difference_interval(...)  -> (lo, hi) in points, 95% Newcombe interval of a paired difference
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


def binomial_two_sided_p(k: int, n: int) -> float:
    """Exact two-sided p-value of k successes in n trials under Binomial(n, 1/2):
    min(1, 2 * P(X <= min(k, n - k))), summed in exact integers (C(n, i+1) = C(n, i)(n-i)/(i+1)), so
    it holds at any n (50,000 discordant images: 0.2 s) and underflows only below 1e-308."""
    if n <= 0:
        return 1.0
    m = min(k, n - k)
    term = total = 1                                   # C(n, 0)
    for i in range(m):
        term = term * (n - i) // (i + 1)
        total += term
    return min(1.0, 2 * total / (1 << n))              # int / int: correctly rounded


def mcnemar(correct_a, correct_b, exact: bool = False) -> tuple[int, int, float]:
    """Paired McNemar test on two aligned boolean sequences: (b, c, two-sided p), where b = only A right,
    c = only B right. Exact binomial for b + c < 50, else chi-square with continuity correction (1 dof);
    `exact=True`: the exact binomial test at every b + c."""
    b = sum(1 for x, y in zip(correct_a, correct_b, strict=True) if x and not y)
    c = sum(1 for x, y in zip(correct_a, correct_b, strict=True) if y and not x)
    n = b + c
    if n == 0:
        return b, c, 1.0
    if exact or n < 50:
        return b, c, binomial_two_sided_p(b, n)
    chi2 = (abs(b - c) - 1) ** 2 / n
    return b, c, math.erfc(math.sqrt(chi2 / 2))


def paired_difference_interval(both: int, only_b: int, only_a: int, neither: int,
                               z: float = Z_95) -> tuple[float, float]:
    """95% interval of p_B - p_A, in points, for two classifiers scored on the same images: `both`
    right, only B right, only A right, `neither` right.

    Newcombe's hybrid score ("square-and-add") interval for paired proportions, method 10 of
    R. G. Newcombe, "Improved confidence intervals for the difference between binomial proportions
    based on paired data", Statistics in Medicine 17:2635-2650 (1998), as recommended in Fagerland,
    Lydersen & Laake, "Recommended tests and confidence intervals for paired binomial proportions",
    Statistics in Medicine 33:2850-2875 (2014): with (l1, u1), (l2, u2) the Wilson intervals of p_B
    and p_A, and phi their correlation (continuity-corrected: (AD - BC - n/2) when AD - BC > n/2,
    0 when 0 <= AD - BC <= n/2, AD - BC when negative, over sqrt of the four margins' product),

        lo = d - sqrt((p_B - l1)² - 2 phi (p_B - l1)(u2 - p_A) + (u2 - p_A)²)
        hi = d + sqrt((p_A - l2)² - 2 phi (p_A - l2)(u1 - p_B) + (u1 - p_B)²)

    Unlike the Wald interval it stays inside [-100, 100] and keeps its coverage near 0 and 100%.
    n == 0 -> (-100, 100)."""
    n = both + only_b + only_a + neither
    if n <= 0:
        return (-100.0, 100.0)
    p_b, p_a = (both + only_b) / n, (both + only_a) / n
    l1, u1 = (v / 100 for v in wilson_interval(both + only_b, n, z))
    l2, u2 = (v / 100 for v in wilson_interval(both + only_a, n, z))
    margins = (both + only_b) * (only_a + neither) * (both + only_a) * (only_b + neither)
    cross = both * neither - only_b * only_a
    if margins == 0 or 0 <= cross <= n / 2:
        phi = 0.0
    else:
        phi = (cross - n / 2 if cross > 0 else cross) / math.sqrt(margins)
    d = p_b - p_a
    lo = d - math.sqrt(max(0.0, (p_b - l1) ** 2 - 2 * phi * (p_b - l1) * (u2 - p_a) + (u2 - p_a) ** 2))
    hi = d + math.sqrt(max(0.0, (p_a - l2) ** 2 - 2 * phi * (p_a - l2) * (u1 - p_b) + (u1 - p_b) ** 2))
    return (100.0 * max(-1.0, lo), 100.0 * min(1.0, hi))


__all__ = ["Z_95", "wilson_interval", "mcnemar", "binomial_two_sided_p", "paired_difference_interval"]
