from pathlib import Path

import cv2
import numpy as np
import pytest

from anomaly_gan.data.defects import DEFECTS, inject, object_mask
from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.data.mesh_defects import MESH_DEFECTS, render_defective
from anomaly_gan.data.synth import SHAPES, render_scan, scan_rng
from anomaly_gan.data.synth_sets import inject_into, synthesise
from tests.conftest import make_scan


@pytest.mark.parametrize("shape", SHAPES)
def test_render_is_deterministic_and_framed_like_kinect(shape: str) -> None:
    a, b, c = make_scan(3, shape), make_scan(3, shape), make_scan(4, shape)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.depth, b.depth)
    assert not np.array_equal(a.rgb, c.rgb)
    assert 0.005 < a.valid.mean() < 0.6  # object on an empty background
    assert (a.rgb[~a.valid] == 0).all()
    assert 1 <= np.nanmin(a.depth) and np.nanmax(a.depth) <= 255


def test_dataset_same_for_any_worker_count(tmp_path: Path) -> None:
    one = list(synthesise(tmp_path / "a", "cylinder", 20, seed=5, defect_rate=0.3, workers=1))
    two = list(synthesise(tmp_path / "b", "cylinder", 20, seed=5, defect_rate=0.3, workers=2))
    assert [p.relative_to(tmp_path / "a") for p in one] == [p.relative_to(tmp_path / "b") for p in two]
    for p, q in zip(one, two, strict=True):
        assert p.read_bytes() == q.read_bytes()


@pytest.mark.parametrize("kind", DEFECTS)
def test_defect_masks_lie_on_the_object_or_the_defect(kind: str) -> None:
    for index in range(4):
        good = make_scan(index, SHAPES[index % 3])
        bad = inject(good, kind, np.random.default_rng(index))
        assert bad.label == kind and bad.gt.sum() >= 4
        assert not (bad.gt & ~object_mask(good) & ~object_mask(bad)).any()
        changed = (bad.rgb != good.rgb).any(axis=2) | (np.nan_to_num(bad.depth) != np.nan_to_num(good.depth))
        assert changed[bad.gt].mean() > 0.5  # the mask marks pixels that really changed


@pytest.mark.parametrize("kind", MESH_DEFECTS)
def test_mesh_defects_change_the_part_where_the_mask_says(kind: str) -> None:
    for index, shape in enumerate(SHAPES):
        good = render_scan(shape, scan_rng(0, shape, index), "g")
        bad = render_defective(shape, scan_rng(0, shape, index), "b", kind, np.random.default_rng(index))
        assert bad.label == kind and bad.gt.sum() >= 3, (shape, kind)
        depth = np.abs(np.nan_to_num(bad.depth) - np.nan_to_num(good.depth)) >= 1  # 8-bit depth levels
        changed = (np.abs(bad.rgb.astype(int) - good.rgb).max(axis=2) > 12) | (bad.valid != good.valid) | depth
        assert changed[bad.gt].mean() > 0.3, (shape, kind)  # the mask marks what the sensor shows changed
        near = cv2.dilate(bad.gt.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
        assert changed[~near].mean() < 0.02, (shape, kind)  # the same part, light and noise elsewhere


@pytest.mark.parametrize(("source", "kinds"), [("mesh", MESH_DEFECTS), ("image", tuple(DEFECTS))])
def test_defect_tree_is_mvtec_style(tmp_path: Path, source: str, kinds: tuple[str, ...]) -> None:
    list(synthesise(tmp_path, "rectangle", 40, defect_rate=0.5, source=source))
    refs = find_scans(tmp_path).refs
    labels = {r.label for r in refs}
    assert "good" in labels and labels - {"good"} <= set(kinds) and len(labels) > 2
    assert all(r.gt is not None for r in refs if r.label != "good")


def test_inject_into_real_layout_keeps_units(tmp_path: Path) -> None:
    list(synthesise(tmp_path / "good", "sphere", 10))
    refs = find_scans(tmp_path / "good").refs
    written = list(inject_into(refs, tmp_path / "out", rate=1.0))
    assert len(written) == 10
    scans = [s for _, s in iter_scans(find_scans(tmp_path / "out").refs)]
    assert all(s.label in DEFECTS and s.gt.any() and s.depth_unit == "8-bit" for s in scans)
