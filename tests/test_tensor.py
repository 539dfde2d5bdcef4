import numpy as np

from anomaly_gan.data.scan import Scan
from anomaly_gan.data.tensor import DepthScale, array_to_scan, scan_to_array
from tests.conftest import make_scan, mm_scan


def test_round_trip_within_quantisation() -> None:
    scan = make_scan()
    scale = DepthScale.fit([scan, make_scan(1)])
    array = scan_to_array(scan, scale)
    assert array.shape == (4, 64, 64) and array.dtype == np.float32
    assert array.min() >= -1 and array.max() <= 1
    back = array_to_scan(array, scale)
    np.testing.assert_array_equal(back.rgb, scan.rgb)
    np.testing.assert_array_equal(back.valid, scan.valid)
    inside = (scan.depth > scale.near) & (scan.depth < scale.far)
    assert np.abs(back.depth - scan.depth)[inside].max() < 1e-3 * (scale.far - scale.near)


def test_depth_scale_is_shared_not_per_image() -> None:
    """A part 40 mm farther must look farther, not be stretched to the same range."""
    near, far = mm_scan("near"), mm_scan("far")
    far.depth = far.depth + 40
    scale = DepthScale.fit([near, far])
    d_near, d_far = scan_to_array(near, scale)[3], scan_to_array(far, scale)[3]
    inside = near.valid
    assert (d_near[inside] - d_far[inside]).mean() > 0.5  # nearer = larger value
    assert (d_near[~inside] == -1).all()


def test_resizes_larger_scans_nan_aware() -> None:
    big = Scan("big", np.full((128, 128, 3), 200, np.uint8), np.full((128, 128), np.nan, np.float32), "mm")
    big.depth[32:96, 32:96] = 900
    scale = DepthScale(800, 1000, "mm")
    array = scan_to_array(big, scale, size=64)
    assert array.shape == (4, 64, 64)
    assert np.isclose(array[3, 32, 32], 1 + (-1.8) * 0.5)
    assert array[3, 0, 0] == -1
