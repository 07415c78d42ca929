"""The benchmark table every bench script prints: measure, ours, baseline, ratio, target, met."""

from __future__ import annotations

HEADER = ("measure", "dsgen", "baseline (same run)", "ratio", "target", "met")


def print_table(rows: list, header: tuple[str, ...] = HEADER) -> None:
    """rows: (measure, ours, baseline, ratio, target, met: bool) tuples, printed as a Markdown table."""
    widths = [max(len(str(r[i])) for r in [*rows, header]) for i in range(5)]
    print("| " + " | ".join(h.ljust(w) for h, w in zip(header, [*widths, 3], strict=False)) + " |")
    print("|" + "|".join("-" * (w + 2) for w in [*widths, 3]) + "|")
    for r in rows:
        cells = [str(c).ljust(w) for c, w in zip(r[:5], widths, strict=True)] + ["yes" if r[5] else "NO "]
        print("| " + " | ".join(cells) + " |")
