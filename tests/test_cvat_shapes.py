"""Pure parts of the pull-back diff: CVAT's rounding tolerance, merging real edits into our rows, areas, printing."""

from __future__ import annotations

from dsgen_core.cvat_sync.shapes import Ann, area_after_edit, describe_move, merge_geometry, same_geometry


def _box(x: float, y: float, w: float, h: float, area: float | None = None) -> Ann:
    return Ann("car", "box", (x, y, w, h), area=area)


def _poly(points: list[float], area: float | None = None) -> Ann:
    xs, ys = points[0::2], points[1::2]
    return Ann("car", "polygon", (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)), [points], area=area)


def test_rounding_tolerance_is_half_a_hundredth_per_corner() -> None:
    ours = _box(10.125, 3.004999, 20.0049, 7.0)
    assert same_geometry(ours, _box(10.12, 3.0, 20.01, 7.0))  # what CVAT gives back: corners rounded
    assert same_geometry(ours, _box(10.13, 3.0, 20.0, 7.0))
    assert not same_geometry(ours, _box(10.1349, 3.0, 20.0, 7.0))  # 0.0099 px: a real edit
    # w alone may differ by up to 0.01 (both corners rounded), which a per-value 0.005 would call a move
    assert same_geometry(_box(0.004, 0.0, 0.002, 1.0), _box(0.0, 0.0, 0.01, 1.0))
    poly = [1.123456, 2.987654, 20.0, 2.5, 20.25, 19.995]
    assert same_geometry(_poly(poly), _poly([1.12, 2.99, 20.0, 2.5, 20.25, 20.0]))
    assert not same_geometry(_poly(poly), _poly([1.12, 2.99, 20.0, 2.5, 20.25, 20.01]))


def test_a_real_edit_takes_only_what_moved() -> None:
    ours = _box(10.123456, 3.987654, 20.0, 7.0, area=140.0)
    moved_x = merge_geometry(ours, _box(10.62, 3.99, 20.0, 7.0, area=147.0))
    assert moved_x.bbox == (10.62, 3.987654, 20.0, 7.0)  # y stays ours: it only differs by the rounding
    assert moved_x.area == 140.0  # a move keeps the area of our row (not CVAT's raster count)
    wider = merge_geometry(ours, _box(10.12, 3.99, 30.0, 7.0, area=217.0))
    assert wider.bbox[0] == 10.123456 and abs(wider.bbox[0] + wider.bbox[2] - 40.12) < 1e-9
    assert abs(wider.area - wider.bbox[2] * 7.0) < 1e-9  # our rows hold w x h: scaled with it
    raster = merge_geometry(_box(0.5, 0.5, 56.03, 33.72, area=1848.0), _box(0.5, 0.5, 60.0, 33.72, area=1980.0))
    assert abs(raster.area - 1848.0 * 60.0 / 56.03) < 1e-6  # our rows hold pixel counts: still scaled
    poly = [1.123456, 2.987654, 20.0, 2.5, 20.25, 19.995]
    edited = merge_geometry(_poly(poly), _poly([1.12, 2.99, 25.0, 2.5, 20.25, 20.0]))
    assert edited.polygons == [[1.123456, 2.987654, 25.0, 2.5, 20.25, 19.995]]
    assert area_after_edit(_box(0, 0, 2, 2), _box(0, 0, 3, 3), 9.5) == 9.5  # no area of ours: CVAT's


def test_a_move_prints_with_the_decimals_that_show_it() -> None:
    ours = _box(10.004, 3.331234, 20.0, 7.0)
    text = describe_move(ours, _box(9.998, 3.33, 20.0, 7.0))
    assert text == "[10.004, 3.331, 20.000, 7.000] → [9.998, 3.330, 20.000, 7.000]"
    assert describe_move(_box(10.12, 3.0, 5.0, 5.0), _box(10.62, 3.0, 5.0, 5.0)) == (
        "[10.12, 3.00, 5.00, 5.00] → [10.62, 3.00, 5.00, 5.00]")
    text = describe_move(_poly([0.0, 0.0, 10.0, 0.0, 5.0, 8.0]), _poly([0.0, 0.0, 10.0, 0.0, 5.0, 6.5]))
    assert text.endswith("; 1 of 3 points moved (up to 1.50 px)")
