from pathlib import Path

import numpy as np
import pytest

from anomaly_gan.data.camera import Intrinsics
from anomaly_gan.data.layouts import find_classes, find_scans, load_scan
from anomaly_gan.data.readers import read_cloud
from anomaly_gan.data.writers import LAYOUTS, write_scan
from tests.conftest import make_scan, mm_scan


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_round_trips(tmp_path: Path, layout: str) -> None:
    scan = mm_scan()
    write_scan(scan, tmp_path, layout)
    found = find_scans(tmp_path)
    assert len(found.refs) == 1 and not found.skipped
    back = load_scan(found.refs[0])
    if layout == "ply":  # a cloud is auto-framed unless the camera is known; with it, exact
        back.rgb, back.depth = read_cloud(found.refs[0].source, Intrinsics.default(64))
    assert back.shape == (64, 64)
    np.testing.assert_array_equal(back.valid, scan.valid)
    assert np.nanmax(np.abs(back.depth - scan.depth)) < 1.0  # 16-bit PNG rounds to whole mm
    np.testing.assert_array_equal(back.rgb[scan.valid], scan.rgb[scan.valid])


def test_seed_layout_keeps_8bit_depth(tmp_path: Path) -> None:
    scan = make_scan()
    write_scan(scan, tmp_path, "seed")
    back = load_scan(find_scans(tmp_path).refs[0])
    assert back.depth_unit == "8-bit"
    np.testing.assert_allclose(back.depth, np.round(scan.depth), equal_nan=True)


def test_class_root_and_natural_frame_order(tmp_path: Path) -> None:
    for cls in ("cylinder", "sphere"):
        for index in (2, 10, 1):
            write_scan(make_scan(index, cls), tmp_path / cls, "seed")
    assert list(find_classes(tmp_path)) == ["cylinder", "sphere"]
    ids = [r.id for r in find_scans(tmp_path / "sphere").refs]
    assert ids == ["00001", "00002", "00010"]
    assert len(find_scans(tmp_path).refs) == 6


def test_mvtec_test_tree_labels_and_masks(tmp_path: Path) -> None:
    good, bad = make_scan(0), make_scan(1)
    bad.gt = np.zeros(bad.shape, bool)
    bad.gt[30:34, 30:34] = True
    write_scan(good, tmp_path / "test" / "good", "mvtec")
    write_scan(bad, tmp_path / "test" / "dent", "mvtec")
    refs = find_scans(tmp_path).refs
    assert sorted(r.label for r in refs) == ["dent", "good"]
    dent = load_scan(next(r for r in refs if r.label == "dent"))
    np.testing.assert_array_equal(dent.gt, bad.gt)
    assert find_classes(tmp_path) == {tmp_path.name: tmp_path}


def test_discovery_does_not_decode(tmp_path: Path) -> None:
    """Listing 2,000 scans reads no pixel: files that are not even images are still listed."""
    for sub in ("rgb", "depth"):
        (tmp_path / sub).mkdir()
        for i in range(2000):
            (tmp_path / sub / f"{i}.png").write_bytes(b"x")
    assert len(find_scans(tmp_path).refs) == 2000


def test_one_file_of_a_pair_finds_its_partner(tmp_path: Path) -> None:
    for index in range(3):
        write_scan(make_scan(index), tmp_path, "seed")
    refs = find_scans(tmp_path / "Depth_Final" / "00001.png").refs
    assert len(refs) == 1 and refs[0].rgb == tmp_path / "RGB_Final" / "00001.png"
