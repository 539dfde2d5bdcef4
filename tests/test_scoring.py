"""Score components and maps, fitted weights, per-scan restart seeds, the typed bundle description."""

import json
from pathlib import Path

import numpy as np
import torch

from anomaly_gan.bundle.meta import BundleMeta
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.detect.calibrate import fit_weights
from anomaly_gan.detect.components import COMPONENTS, components, residual_maps
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.train.augment import diff_augment
from tests.conftest import make_scan


def test_anomaly_map_is_zero_for_a_perfect_reconstruction_and_local_for_a_local_miss() -> None:
    x = torch.rand(1, 4, 16, 16) * 2 - 1
    assert residual_maps(x, x).abs().max() == 0
    recon = x.clone()
    recon[0, :, 8, 8] += 1.0
    amap = residual_maps(x, recon)[0].mean(0)
    assert amap[8, 8] == amap.max() and amap[0:5, 0:5].abs().max() == 0  # 3x3 smoothing stays local


def test_components_measure_the_object_not_the_frame() -> None:
    x = -torch.ones(2, 4, 16, 16)  # background everywhere
    x[:, :, 6:10, 6:10] = 0.5  # a 4x4 object
    recon = x.clone()
    recon[1, :3, 6:10, 6:10] = 0.0  # scan 1: colour off by 0.5 on the whole object

    def critic(t):
        return t.flatten(1).mean(1), t.flatten(1)

    values, maps = components(x, recon, critic, torch.zeros(2))
    assert set(values) == set(COMPONENTS) and maps.shape == (2, 3, 16, 16)
    assert maps[1, 1].max() > 0 and maps[1, 2].abs().max() == 0  # the colour map lights up, the depth one not
    assert values["colour"][0] == 0 and torch.isclose(values["colour"][1], torch.tensor(0.5))
    assert values["depth"][1] == 0 and values["feature"][1] > values["feature"][0]


def test_fit_weights_picks_the_component_that_separates() -> None:
    rng = np.random.default_rng(0)
    good = {k: rng.normal(0, 1, 200) for k in COMPONENTS}
    defective = {k: rng.normal(0, 1, 200) for k in COMPONENTS}
    defective["depth"] = defective["depth"] + 3  # only depth tells them apart
    weights = fit_weights(good, defective)
    assert weights["depth"] == 1.0 and all(weights[k] < 0.3 for k in COMPONENTS if k != "depth")
    lower = {k: good[k] - 3 for k in COMPONENTS}  # every component would reward anomalies
    assert fit_weights(good, lower) == {k: 1.0 for k in COMPONENTS}


def test_diff_augment_shifts_colour_and_depth_together_and_fills_background() -> None:
    torch.manual_seed(0)
    x = -torch.ones(8, 4, 16, 16)
    x[:, :, 7, 7] = 1.0  # one bright, near pixel
    out = diff_augment(x, shift=2)
    assert out.shape == x.shape
    for scan in out:
        depth_peak = (scan[3] == 1.0).nonzero()
        assert len(depth_peak) == 1  # moved as one pixel, background filled with -1
        colour = scan[:3, depth_peak[0, 0], depth_peak[0, 1]]
        assert (colour - colour[0]).abs().max() < 1e-6 and colour[0] > 0.8  # brightness +-0.15


def test_diff_augment_is_each_scans_window_of_the_padded_lit_batch() -> None:
    """The one-gather shift against plain slicing, scan by scan, with the same random draws."""
    x = (torch.rand(5, 4, 12, 12) * 2 - 1).contiguous(memory_format=torch.channels_last)
    torch.manual_seed(3)
    out = diff_augment(x, shift=3)
    torch.manual_seed(3)
    brightness = (torch.rand(5, 1, 1, 1) - 0.5) * 0.3
    dx, dy = torch.randint(-3, 4, (2, 5))
    padded = torch.nn.functional.pad(torch.cat([x[:, :3] + brightness, x[:, 3:]], 1), (3, 3, 3, 3), value=-1.0)
    for i in range(5):
        assert torch.equal(out[i], padded[i, :, 3 + dy[i] : 15 + dy[i], 3 + dx[i] : 15 + dx[i]])
    assert out.is_contiguous(memory_format=torch.channels_last)


def test_a_scan_scores_the_same_in_any_batch(tiny_bundle: Path) -> None:
    scans = [make_scan(i) for i in range(6)]
    detector = Detector(load_bundle(tiny_bundle), DetectOptions("refine", batch_size=4), torch.device("cpu"))
    together = detector.score(scans).scores
    shuffled = detector.score(scans[::-1]).scores[::-1]
    alone = [detector.score([s]).scores[0] for s in scans[:2]]
    np.testing.assert_allclose(together, shuffled, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(together[:2], alone, rtol=1e-5, atol=1e-6)


def test_bundle_meta_reads_and_writes_the_same_json(tiny_bundle: Path) -> None:
    raw = json.loads((tiny_bundle / "model.json").read_text())
    meta = BundleMeta.from_dict(raw)
    assert json.loads(json.dumps(meta.to_dict())) == raw
    assert meta.default_mode == raw["default_mode"] and meta.calibration["fast"].findings["defect"].origin
    settings = raw["training"]["config"]["objective_settings"]
    assert settings["lr_g"] == 2e-4 and settings["smooth"] == 0.9  # the gan objective's settings travel


def test_detect_uses_the_bundles_default_mode(tiny_bundle: Path) -> None:
    detector = Detector(load_bundle(tiny_bundle), DetectOptions(), torch.device("cpu"))
    assert detector.mode == load_bundle(tiny_bundle).meta.default_mode == "refine"
