"""Association statistics for contingency tables (numpy only; no scipy in the stack)."""

from __future__ import annotations

import math

import numpy as np


def chi2(table: np.ndarray) -> tuple[float, int, int]:
    """Pearson's chi-squared of a contingency table (rows × columns of counts): (chi2, dof, n).

    Empty rows and columns are dropped first; they carry no information and would divide by zero."""
    t = np.asarray(table, dtype=float)
    if t.ndim != 2 or t.size == 0:
        return 0.0, 0, int(t.sum()) if t.size else 0
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0]
    n = float(t.sum())
    if n == 0 or min(t.shape) < 2:
        return 0.0, 0, int(n)
    expected = np.outer(t.sum(axis=1), t.sum(axis=0)) / n
    return float(((t - expected) ** 2 / expected).sum()), (t.shape[0] - 1) * (t.shape[1] - 1), int(n)


def cramers_v(table: np.ndarray) -> float:
    """Cramér's V in [0, 1] (no bias correction): sqrt(chi2 / (n · (min(r, c) − 1))); 0 when undefined."""
    t = np.asarray(table, dtype=float)
    t = t[t.sum(axis=1) > 0][:, t.sum(axis=0) > 0] if t.ndim == 2 and t.size else t
    value, _, n = chi2(t)
    k = min(t.shape) - 1 if t.ndim == 2 and t.size else 0
    if n == 0 or k <= 0:
        return 0.0
    return float(min(1.0, math.sqrt(value / (n * k))))


def imbalance_ratio(counts: list[int]) -> float | None:
    """Largest over smallest non-zero class count; None with fewer than one present class."""
    present = [c for c in counts if c > 0]
    return max(present) / min(present) if present else None
