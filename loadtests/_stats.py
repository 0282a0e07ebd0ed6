"""Exact statistics for the load-test verdict: percentiles and their error bars.

Every figure the verdict judges comes with a 95 % confidence interval, so a
value that sits within measurement error of its limit is called inconclusive
rather than passed or failed by luck:

* a share of events (hit rate, error rate) gets a Wilson score interval, which
  stays inside 0..1 and behaves for 0 or n successes, unlike the normal
  approximation;
* a percentile of raw samples gets a distribution-free interval from order
  statistics: the number of samples below the true q-quantile is
  Binomial(n, q), so a pair of ranks whose binomial probability covers 95 %
  brackets the quantile whatever the latency distribution looks like.

Percentiles are nearest-rank: the q-percentile of n sorted values is the value
of rank ``ceil(q * n)``, always one of the measured values, never interpolated.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

#: The two-sided 95 % normal quantile.
Z95: Final = 1.959963984540054


def nearest_rank(sorted_values: Sequence[float], q: float) -> float:
    """Return the nearest-rank q-quantile of already sorted values.

    Args:
        sorted_values: The values, in ascending order.
        q: The quantile, 0 < q <= 1 (0.95 for p95).

    Raises:
        ValueError: No values, or q outside (0, 1].
    """
    if not sorted_values:
        raise ValueError("no values")
    if not 0 < q <= 1:
        raise ValueError(f"q must be in (0, 1], got {q}")
    rank = max(1, math.ceil(q * len(sorted_values) - 1e-9))
    return sorted_values[rank - 1]


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Return the Wilson score interval of a binomial proportion.

    Args:
        successes: Events counted (hits, errors ...).
        n: Trials (lookups, requests ...); more than 0.
        z: The normal quantile of the confidence level (95 % by default).

    Raises:
        ValueError: n is not positive, or successes is outside 0..n.
    """
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must be 0..{n}, got {successes}")
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # At 0 or n successes the bound is exactly 0 or 1; rounding would leave
    # a hair of difference, which a comparison with a limit must not see.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high


def _binomial_cdf_table(n: int, q: float) -> list[float]:
    """Return P(B <= k) for k = 0..n, B ~ Binomial(n, q), from log-space terms."""
    log_q, log_r = math.log(q), math.log1p(-q)
    log_n = math.lgamma(n + 1)
    cumulative = 0.0
    table = []
    for k in range(n + 1):
        log_pmf = (
            log_n
            - math.lgamma(k + 1)
            - math.lgamma(n - k + 1)
            + k * log_q
            + (n - k) * log_r
        )
        cumulative += math.exp(log_pmf)
        table.append(min(cumulative, 1.0))
    return table


def quantile_ranks(
    n: int, q: float, confidence: float = 0.95
) -> tuple[int | None, int | None]:
    """Return the 1-based ranks (lower, upper) bracketing the q-quantile.

    With B ~ Binomial(n, q) the number of samples below the true quantile, the
    interval ``[x(lower), x(upper)]`` covers it with probability
    ``P(lower <= B <= upper - 1)``, at least ``confidence``: each tail left out
    holds at most half of ``1 - confidence``.

    Returns:
        The ranks; a side is None when n is too small to bound it (the
        interval is open on that side).
    """
    if n <= 0:
        raise ValueError(f"n must be > 0, got {n}")
    if not 0 < q < 1:
        raise ValueError(f"q must be in (0, 1), got {q}")
    tail = (1 - confidence) / 2
    cdf = _binomial_cdf_table(n, q)
    # lower: the largest l with P(B <= l - 1) <= tail.
    lower: int | None = None
    for rank in range(1, n + 1):
        if cdf[rank - 1] <= tail:
            lower = rank
        else:
            break
    # upper: the smallest u with P(B <= u - 1) >= 1 - tail.
    upper: int | None = None
    for rank in range(1, n + 1):
        if cdf[rank - 1] >= 1 - tail:
            upper = rank
            break
    return lower, upper


def quantile_interval(
    sorted_values: Sequence[float], q: float, confidence: float = 0.95
) -> tuple[float, float]:
    """Return a distribution-free confidence interval of the q-quantile.

    Args:
        sorted_values: The samples, ascending.
        q: The quantile (0.95 for p95).
        confidence: Coverage of the interval.

    Returns:
        ``(low, high)``; ``-inf`` or ``inf`` on a side the sample is too small
        to bound (an upper bound of p95 at 95 % takes at least 72 samples).
    """
    lower, upper = quantile_ranks(len(sorted_values), q, confidence)
    low = -math.inf if lower is None else sorted_values[lower - 1]
    high = math.inf if upper is None else sorted_values[upper - 1]
    return low, high
