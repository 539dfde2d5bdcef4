"""Evaluation metrics (edge cases), evaluate/report/view end to end on a tiny bundle."""

import json
from pathlib import Path

import numpy as np
import open3d as o3d
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from anomaly_gan.cli import app
from anomaly_gan.data.defects import inject
from anomaly_gan.data.writers import write_scan
from anomaly_gan.report.metrics import au_pro, auroc_by_label, image_metrics, pixel_auroc
from tests.conftest import make_scan, saved_records

runner = CliRunner()


def test_image_metrics_all_normal_and_all_anomalous_are_undefined_not_invented() -> None:
    for labels in (np.zeros(5), np.ones(5)):
        m = image_metrics(labels, np.arange(5.0), threshold=2.0)
        assert m["auroc"] is None and m["average_precision"] is None and m["f1_max"] is None
        assert m["at_threshold"]["accuracy"] == pytest.approx((labels == (np.arange(5) >= 2)).mean())
    assert image_metrics(np.zeros(5), np.arange(5.0), 2.0)["at_threshold"]["tpr"] is None
    assert image_metrics(np.ones(5), np.arange(5.0), 2.0)["at_threshold"]["far"] is None


def test_image_metrics_ties_and_one_scan() -> None:
    m = image_metrics(np.array([0, 1, 0, 1]), np.array([1.0, 1.0, 1.0, 1.0]), threshold=1.0)
    assert m["auroc"] == pytest.approx(0.5)  # ties count half
    assert m["at_threshold"]["confusion"] == {"tn": 0, "fp": 2, "fn": 0, "tp": 2}
    one = image_metrics(np.array([1]), np.array([3.0]), threshold=1.0)
    assert one["auroc"] is None and one["at_threshold"]["tpr"] == 1.0


def test_image_metrics_thresholds_and_rates() -> None:
    labels = np.array([0, 0, 0, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.6, 0.5, 0.8, 0.9])
    m = image_metrics(labels, scores, threshold=0.55)
    assert m["auroc"] == pytest.approx(roc_auc_score(labels, scores))
    assert m["at_threshold"]["tpr"] == pytest.approx(2 / 3) and m["at_threshold"]["far"] == pytest.approx(1 / 3)
    assert m["f1_max"] == pytest.approx(6 / 7)  # threshold 0.5: tp 3, fp 1
    assert auroc_by_label(["good", "good", "good", "dent", "stain", "stain"], scores) == {
        "dent": pytest.approx(2 / 3),
        "stain": 1.0,
    }


def test_pixel_metrics() -> None:
    masks = np.zeros((2, 8, 8), bool)
    masks[1, 2:4, 2:4] = True
    perfect = masks.astype(float)
    assert pixel_auroc(masks, perfect) == 1.0 and au_pro(masks, perfect) == pytest.approx(1.0, abs=0.01)
    assert au_pro(masks, 1.0 - perfect) < 0.05
    assert pixel_auroc(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 4))) is None
    assert au_pro(np.zeros((1, 4, 4), bool), np.zeros((1, 4, 4))) is None


def exhaustive_au_pro(masks, maps, fpr_limit: float = 0.3) -> float:
    """AU-PRO at every distinct map value: slow, exact, the reference for the fast one."""
    from scipy import ndimage

    regions = []
    for mask, amap in zip(masks, maps, strict=True):
        labelled, count = ndimage.label(mask)
        regions += [amap[labelled == k] for k in range(1, count + 1)]
    normal = np.concatenate([amap[~m] for m, amap in zip(masks, maps, strict=True)])
    thresholds = np.r_[np.inf, np.unique(np.concatenate([amap.ravel() for amap in maps]))[::-1]]
    fprs = np.array([(normal >= t).mean() for t in thresholds])
    pros = np.array([np.mean([(r >= t).mean() for r in regions]) for t in thresholds])
    x = np.r_[fprs[fprs <= fpr_limit], fpr_limit]
    y = np.r_[pros[fprs <= fpr_limit], np.interp(fpr_limit, fprs, pros)]
    return float(np.trapezoid(y, x) / fpr_limit)


def test_pixel_metrics_match_the_exhaustive_definitions_with_ties() -> None:
    rng = np.random.default_rng(0)
    masks = np.zeros((6, 24, 24), bool)
    for i in range(1, 6):
        y, x = rng.integers(2, 18, 2)
        masks[i, y : y + rng.integers(2, 6), x : x + rng.integers(2, 6)] = True
    maps = np.round(rng.random(masks.shape) + 0.6 * masks, 1).astype(np.float32)  # rounded: many ties
    assert pixel_auroc(masks, maps) == pytest.approx(roc_auc_score(masks.ravel(), maps.ravel()), abs=1e-12)
    inside = np.zeros_like(masks)
    inside[:, 4:20, 4:20] = True
    inside |= masks
    assert pixel_auroc(masks, maps, inside) == pytest.approx(roc_auc_score(masks[inside], maps[inside]), abs=1e-12)
    assert au_pro(masks, maps) == pytest.approx(exhaustive_au_pro(masks, maps), abs=0.005)


def write_test_tree(root: Path) -> Path:
    rng = np.random.default_rng(0)
    for i in range(4):
        write_scan(make_scan(200 + i), root / "test" / "good", "seed")
        write_scan(
            inject(make_scan(300 + i), ("dent", "stain")[i % 2], rng), root / "test" / ("dent", "stain")[i % 2], "seed"
        )
    return root


def test_cli_evaluate_agrees_with_an_independent_computation(tiny_bundle: Path, tmp_path: Path) -> None:
    root = write_test_tree(tmp_path / "sphere")
    for i in range(5):  # an MVTec-style class root's training scans are not test scans
        write_scan(make_scan(500 + i), root / "train" / "good", "seed")
    out = tmp_path / "eval"
    result = runner.invoke(
        app, ["evaluate", "--model", str(tiny_bundle), str(root), "--mode", "fast", "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    records = saved_records(out)
    assert len(records) == 8 and all("/test/" in r["scan"] for r in records)
    metrics = json.loads((out / "metrics.json").read_text())
    labels = [r["label"] != "good" for r in records]
    assert metrics["auroc"] == pytest.approx(roc_auc_score(labels, [r["score"] for r in records]))
    assert set(metrics["auroc_by_label"]) == {"dent", "stain"} and metrics["pixel_auroc"] is not None
    for name in ("roc.png", "pr.png", "histogram.png", "threshold_sweep.png", "report.html"):
        assert (out / name).exists()
    html = (out / "report.html").read_text()
    assert "http" not in html.replace("http-equiv", "") and html.count("data:image/png;base64") >= 4  # figures
    assert html.count("data:image/jpeg;base64") == len(records)  # a picture per scan (fewer than --report-top)
    (out / "report.html").unlink()
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0 and (out / "report.html").exists()


def test_cli_evaluate_cross_class_and_usage_errors(tiny_bundle: Path, tmp_path: Path) -> None:
    for shape in ("sphere", "cylinder"):
        for i in range(3):
            write_scan(make_scan(400 + i, shape), tmp_path / "classes" / shape, "seed")
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(tiny_bundle),
            str(tmp_path / "classes"),
            "--normal-class",
            "sphere",
            "--mode",
            "fast",
            "--out",
            str(tmp_path / "e"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "AUROC cylinder" in result.output and "part finding: AUROC" in result.output
    metrics = json.loads((tmp_path / "e" / "metrics.json").read_text())
    assert set(metrics["findings"]) == {"part", "defect"} and metrics["promised_far"] == pytest.approx(1 / 9)
    for i in range(2):  # scans with ids the bundle held out for calibration (its block 16-23)
        write_scan(make_scan(16 + i, "sphere"), tmp_path / "classes" / "sphere", "seed")
    args = ["evaluate", "--model", str(tiny_bundle), str(tmp_path / "classes"), "--normal-class", "sphere"]
    unseen = runner.invoke(app, [*args, "--mode", "fast", "--out", str(tmp_path / "u"), "--unseen"])
    assert unseen.exit_code == 0 and "left out 2 normal scans the bundle trained or calibrated on" in unseen.output
    assert json.loads((tmp_path / "u" / "metrics.json").read_text())["normal"] == 3
    no_defects = runner.invoke(app, ["evaluate", "--model", str(tiny_bundle), str(tmp_path / "classes" / "sphere")])
    assert no_defects.exit_code == 2 and "no anomalous scans" in no_defects.output


def test_cli_view_writes_a_heat_coloured_cloud(tiny_bundle: Path, tmp_path: Path) -> None:
    colour = write_scan(make_scan(5), tmp_path / "scan", "seed")
    out = tmp_path / "scan.ply"
    result = runner.invoke(app, ["view", str(colour), "--out", str(out), "--model", str(tiny_bundle), "--mode", "fast"])
    assert result.exit_code == 0, result.output
    cloud = o3d.io.read_point_cloud(str(out))
    assert len(cloud.points) == make_scan(5).valid.sum()
    assert runner.invoke(app, ["view", str(colour), "--out", str(out)]).exit_code == 2  # exists, no --force
