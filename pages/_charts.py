"""Altair charts of insight tables, built without Streamlit: clickable bars and heatmaps that fit their column,
histogram bin labels, count legends. The Insights page draws them; tests read their specs."""

from __future__ import annotations

from typing import Any

import altair as alt
import polars as pl

PICK = "pick"  # the name of every chart's point selection (the page reads the clicked row from it)
SMALL_HEIGHT = 260

LABEL_LIMIT = 140  # px: longer axis labels end in an ellipsis (the tooltip has the full text)


def fit(chart: alt.Chart, height: int) -> alt.Chart:
    """As wide as the column (only the width fits: `height` stays the plot's, legends and labels come on top)."""
    return chart.properties(width="container", height=height,
                            autosize=alt.AutoSizeParams(type="fit-x", contains="padding"))


def tooltip_columns(frame: pl.DataFrame) -> list[str]:
    return [c for c in frame.columns if c not in ("_row", "_order", "last")]


COUNT_FORMAT = ",~f"  # legends of counts: 20, 1,200 (d3's "~g" wrote 2e+1 once Vega cut its precision to the step)
ALL_LABELS_UP_TO = 40  # x labels a chart shows all of (rotated, they stay legible); beyond, Vega drops overlapping ones


def _hide_labels(frame: pl.DataFrame, x: str) -> bool:
    """Let Vega hide overlapping x labels only when there are too many to read anyway."""
    return frame.height > 0 and frame[x].n_unique() > ALL_LABELS_UP_TO


def short_number(x: float) -> str:
    """A bin edge in at most three significant digits, large values with k/M/G (35.1k, not 3.51e+04)."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(x) >= scale * 0.9995:  # what rounds up to the scale takes its suffix (1M, not 1e+03k)
            return f"{x / scale:.3g}{suffix}"
    return f"{x:.3g}"


def bar(frame: pl.DataFrame, x: str, y: str, compare: bool, horizontal: bool = False,
        sort: bool = True) -> alt.Chart:
    """A clickable bar chart as wide as its column; in comparison mode bars of the subsets stand side by side.

    Unsorted charts keep the frame's `_order` (histogram bins), so bars of two subsets line up bin by bin."""
    pick = alt.selection_point(name=PICK, fields=["_row"])
    enc: dict[str, Any] = {
        "color": alt.Color("subset:N", legend=alt.Legend(orient="top", labelLimit=LABEL_LIMIT)) if compare
        else alt.value("#4c78a8"),
        "opacity": alt.condition(pick, alt.value(1.0), alt.value(0.55)),
        "tooltip": tooltip_columns(frame),
    }
    if sort:
        order: Any = "-x" if horizontal else "-y"
    else:
        order = alt.EncodingSortField(field="_order", op="min") if "_order" in frame.columns else None
    axis = alt.Axis(labelLimit=LABEL_LIMIT) if horizontal else alt.Axis(labelAngle=-40, labelLimit=LABEL_LIMIT,
                                                                         labelOverlap=_hide_labels(frame, x))
    cat = alt.Y(f"{x}:N", sort=order, title=x, axis=axis) if horizontal else alt.X(f"{x}:N", sort=order, title=x,
                                                                                     axis=axis)
    val = alt.X(f"{y}:Q", title=y) if horizontal else alt.Y(f"{y}:Q", title=y)
    if compare:
        enc["yOffset" if horizontal else "xOffset"] = "subset:N"
    chart = alt.Chart(frame.to_pandas()).mark_bar().encode(cat, val, **enc).add_params(pick)
    height = max(SMALL_HEIGHT, 22 * frame[x].n_unique() * (2 if compare else 1)) if horizontal else SMALL_HEIGHT
    return fit(chart, min(height, 900))


def heat(frame: pl.DataFrame, x: str, y: str, value: str, x_order: list[str] | None = None) -> alt.Chart:
    """A clickable heatmap as wide as its column, a row of cells ~18 px high; long labels are cut. Columns are
    in `x_order` when given (small, medium, large), else sorted."""
    pick = alt.selection_point(name=PICK, fields=["_row"])
    rows_ = frame[y].n_unique() if frame.height else 1
    return fit(alt.Chart(frame.to_pandas()).mark_rect().encode(
        alt.X(f"{x}:O", sort=x_order or "ascending",
              axis=alt.Axis(labelAngle=-40, labelLimit=LABEL_LIMIT, labelOverlap=_hide_labels(frame, x))),
        alt.Y(f"{y}:O", axis=alt.Axis(labelLimit=LABEL_LIMIT)),
        alt.Color(f"{value}:Q", scale=alt.Scale(scheme="blues"), legend=alt.Legend(orient="top", format=COUNT_FORMAT)),
        stroke=alt.condition(pick, alt.value("black"), alt.value(None), empty=False),
        tooltip=tooltip_columns(frame),
    ).add_params(pick), min(700, max(SMALL_HEIGHT, 22 * rows_)))


def hist_frame(frame: pl.DataFrame, key: str | None = None) -> pl.DataFrame:
    """Histogram rows with a short `range` label (built in Python: polars 2.1 panicked on a filtered frame) and
    `_order`, the rank of (key, bin): the x order of the bars, the same bin of every subset at the same place."""
    labels = [f"{short_number(a)}–{short_number(b)}"
              for a, b in zip(frame["bin_start"].to_list(), frame["bin_end"].to_list(), strict=True)]
    order = pl.struct([key, "bin"] if key else ["bin"]).rank("dense").cast(pl.Int64)
    return frame.with_columns(pl.Series("range", labels, dtype=pl.String), order.alias("_order"))
