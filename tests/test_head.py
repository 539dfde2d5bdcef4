"""Object-centred frame, simulated defects, the segmentation head and format-1 compatibility."""

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from anomaly_gan.bundle.meta import BundleError
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.data import simulate as simulate_module
from anomaly_gan.data.defects import inject
from anomaly_gan.data.framing import CropBox, Framing, crop, locate, uncrop
from anomaly_gan.data.simulate import KINDS, kinds_without, simulate
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.train.head import defective_batch, jitter
from anomaly_gan.train.refresh import recalibrate, retrain_head
from tests.conftest import make_scan, tiny_config, write_class


def test_crop_and_map_back_round_trip_a_mask_exactly() -> None:
    scan = make_scan(0)
    scan.gt = np.zeros(scan.shape, bool)
    scan.gt[30:34, 25:29] = True
    box = CropBox(top=14, left=10, side=32)  # enlarged exactly 2x into the 64x64 frame
    framed = crop(scan, box)
    enlarged = cv2.resize(framed.gt.astype(np.float32), (64, 64), interpolation=cv2.INTER_NEAREST)
    back = uncrop(enlarged[None], box, scan.shape, nearest=True)[0] > 0.5
    np.testing.assert_array_equal(back, scan.gt)


def test_object_frame_centres_the_object_and_pads_past_the_edge() -> None:
    scan = make_scan(1)
    box = locate(scan, Framing())
    ys, xs = np.nonzero(scan.valid)
    assert box.top <= ys.min() and box.left <= xs.min()
    assert box.top + box.side > ys.max() and box.left + box.side > xs.max()
    assert box.side < 64  # the object is enlarged
    assert locate(scan, Framing("full")) == CropBox(0, 0, 64)
    fixed = locate(scan, Framing(side=40))  # one size for every scan keeps the object's scale
    assert fixed.side == 40 and abs((fixed.top + 20) - (ys.min() + ys.max() + 1) / 2) <= 1
    edge = crop(scan, CropBox(-8, -8, 32))
    assert edge.rgb.shape == (32, 32, 3) and np.isnan(edge.depth[:8]).all()


def test_simulated_defects_change_exactly_the_masked_pixels() -> None:
    rng = np.random.default_rng(0)
    scan = make_scan(2)
    array = np.concatenate([scan.rgb.transpose(2, 0, 1) / 127.5 - 1, np.where(scan.valid, 0.5, -1.0)[None]]).astype(
        np.float32
    )
    for kind in KINDS:
        out, mask = simulate(array, rng, (kind,))
        change = np.maximum(np.abs(out[:3] - array[:3]).max(0), np.abs(out[3] - array[3]))
        assert mask.sum() >= 3, kind
        assert (change[~mask] <= 0.08).all() and (change[mask] > 0.08).all(), kind


def test_jitter_moves_the_object_but_keeps_it_whole_and_the_background_empty() -> None:
    scan = make_scan(3)
    array = np.concatenate([scan.rgb.transpose(2, 0, 1) / 127.5 - 1, np.where(scan.valid, 0.5, -1.0)[None]]).astype(
        np.float32
    )
    rng = np.random.default_rng(0)
    moved = [jitter(array, rng) for _ in range(8)]
    area = (array[3] > -0.9).sum()
    for out in moved:
        assert out.shape == array.shape and out.dtype == np.float32
        assert set(np.unique(out[3])) <= {-1.0, 0.5}  # depth is moved, never blended with the background
        assert abs((out[3] > -0.9).sum() - area) <= 0.25 * area  # scaled by at most 10% a side
        assert (out[:3][:, out[3] < -0.9] < -0.9).mean() > 0.95  # background colour stays black
    assert min(np.abs(out - array).mean() for out in moved) > 0.01  # every copy differs from the scan


def test_leave_one_kind_out_never_samples_the_held_out_kind(monkeypatch) -> None:
    drawn = []
    real_apply = simulate_module._apply

    def recording(array, obj, kind, rng, pool):
        drawn.append(kind)
        return real_apply(array, obj, kind, rng, pool)

    monkeypatch.setattr(simulate_module, "_apply", recording)
    assert "line" not in kinds_without("crack") and set(kinds_without(None)) == set(KINDS)
    with pytest.raises(ValueError):
        kinds_without("scratch")
    scan = make_scan(3)
    array = np.concatenate([scan.rgb.transpose(2, 0, 1) / 127.5 - 1, np.where(scan.valid, 0.5, -1.0)[None]]).astype(
        np.float32
    )
    config = tiny_config(Path("."), head_batch=64, head_kinds=kinds_without("crack"))
    defective_batch(np.stack([array] * 4), config.head_stage, np.random.default_rng(0))
    assert drawn and "line" not in drawn and set(drawn) == set(KINDS) - {"line"}


def test_a_briefly_trained_head_ranks_defects_above_good_scans_and_points_at_them(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """A head trained for a few steps on tiny synthetic scans: new scans with simulated defects
    (an unseen random stream) rank above good ones, and on the evaluation injector's defects its
    map is brighter inside the mask than on the rest of the object. Whether it generalises to
    unseen kinds is measured on real scans (benchmarks/heldout_kinds.py, detect_kinect.py)."""
    write_class(tmp_path / "data", count=120)
    config = tiny_config(tmp_path, head_steps=200, head_batch=16)
    detector = Detector(retrain_head(load_bundle(tiny_bundle), config), DetectOptions("fast"), torch.device("cpu"))
    good = [make_scan(500 + i) for i in range(16)]
    x, _ = detector.tensor(good)
    rng = np.random.default_rng(99)
    defective = torch.from_numpy(np.stack([simulate(a, rng)[0] for a in x.numpy()]))
    ids = [f"g{i}" for i in range(16)] + [f"d{i}" for i in range(16)]
    head = detector.scorer.score(torch.cat([x, defective]), "fast", ids).values["head"]
    assert roc_auc_score(np.r_[np.zeros(16), np.ones(16)], head) > 0.65  # chance: 0.5
    rng = np.random.default_rng(1)
    bad = [inject(make_scan(600 + i), ("stain", "missing", "foreign")[i % 3], rng) for i in range(12)]
    scored = detector.score(bad)
    inside = [scored.scan_maps(i, s.shape)[0][s.gt].mean() for i, s in enumerate(bad)]
    outside = [scored.scan_maps(i, s.shape)[0][s.valid & ~s.gt].mean() for i, s in enumerate(bad)]
    assert np.mean(inside) > 2 * np.mean(outside)


def test_format_2_bundles_stop_with_one_line_saying_to_retrain(tiny_bundle: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(tiny_bundle, old)
    meta = json.loads((old / "model.json").read_text())
    meta["format_version"] = 2
    (old / "model.json").write_text(json.dumps(meta))
    says = "version 2; .*reads 'anomaly-gan-bundle' versions 3 .calibrate it again: anomaly-gan retrain-head .* --cal"
    with pytest.raises(BundleError, match=says) as e:
        load_bundle(old)
    assert "\n" not in str(e.value)


def test_recalibrating_an_unchanged_bundle_reproduces_its_calibration(tiny_bundle: Path) -> None:
    """recalibrate (retrain-head --calibration-only) finds the bundle's own held-out scans
    and simulated defects again, so the same networks give the same calibration."""
    bundle = load_bundle(tiny_bundle)
    again = recalibrate(bundle, tiny_config(tiny_bundle.parent.parent)).meta.calibration["fast"]
    stored = bundle.meta.calibration["fast"]
    np.testing.assert_allclose(again.good_scores, stored.good_scores, rtol=1e-3, atol=1e-3)
    for name, finding in stored.findings.items():
        weights = again.findings[name].weights
        assert weights.keys() == finding.weights.keys()
        np.testing.assert_allclose(list(weights.values()), list(finding.weights.values()), atol=0.02)
    assert again.threshold == pytest.approx(stored.threshold, rel=1e-3, abs=1e-3)
