"""The benchmark table every bench script prints: measure, ours, baseline, ratio, target, met."""

from __future__ import annotations

HEADER = ("measure", "dsgen", "baseline (same run)", "ratio", "target", "met")


def print_table(rows: list, header: tuple[str, ...] = HEADER) -> None:
    """rows: tuples as long as `header`, the last cell the met flag (bool), printed as a Markdown table."""
    n = len(header) - 1
    widths = [max(len(str(r[i])) for r in [*rows, header]) for i in range(n)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, [*widths, 3], strict=True)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in [*widths, 3]) + "|")
    for r in rows:
        cells = [str(c).ljust(w) for c, w in zip(r[:n], widths, strict=True)] + ["yes" if r[n] else "NO "]
        print("| " + " | ".join(cells) + " |")
