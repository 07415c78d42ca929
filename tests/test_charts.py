"""The Insights page's chart builders (pages/_charts.py): readable bin labels, count legends, x labels kept."""

from __future__ import annotations

import polars as pl
import pytest

from pages._charts import ALL_LABELS_UP_TO, COUNT_FORMAT, bar, heat, hist_frame, short_number


@pytest.mark.parametrize(("value", "text"), [
    (0, "0"), (0.5, "0.5"), (12.3456, "12.3"), (999.4, "999"), (999.5, "1k"), (1234, "1.23k"), (35123, "35.1k"),
    (999_999, "1M"), (2.5e9, "2.5G"), (-4567, "-4.57k"),
])
def test_short_number_never_writes_an_exponent_for_large_values(value, text):
    assert short_number(value) == text


def test_histogram_ranges_read_as_short_numbers():
    frame = pl.DataFrame({"bin": [0, 1], "bin_start": [35123.0, 36000.0], "bin_end": [36000.0, 36877.0]})
    assert hist_frame(frame)["range"].to_list() == ["35.1k–36k", "36k–36.9k"]


def _cells(n: int) -> pl.DataFrame:
    names = [f"class {k}" for k in range(n)]
    return pl.DataFrame({"a": names, "b": names, "images": list(range(n)), "_row": list(range(n))})


def test_heatmap_legend_formats_counts_and_keeps_every_label_of_a_readable_axis():
    spec = heat(_cells(16), "a", "b", "images").to_dict()
    assert spec["encoding"]["color"]["legend"]["format"] == COUNT_FORMAT
    assert spec["encoding"]["x"]["axis"]["labelOverlap"] is False
    crowded = heat(_cells(ALL_LABELS_UP_TO + 1), "a", "b", "images").to_dict()
    assert crowded["encoding"]["x"]["axis"]["labelOverlap"] is True


def test_bar_keeps_every_bin_label():
    spec = bar(_cells(20), "a", "images", compare=False, sort=False).to_dict()
    assert spec["encoding"]["x"]["axis"]["labelOverlap"] is False


def test_heatmap_columns_follow_a_given_order():
    frame = pl.DataFrame({"bucket": ["large", "medium", "small"], "category": ["car"] * 3, "n": [1, 2, 3]})
    assert heat(frame, "bucket", "category", "n", ["small", "medium", "large"]).to_dict()["encoding"]["x"]["sort"] == [
        "small", "medium", "large"]
    assert heat(frame, "bucket", "category", "n").to_dict()["encoding"]["x"]["sort"] == "ascending"
