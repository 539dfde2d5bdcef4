"""Detection: inversion equivalences, score ordering, calibration, bundle parity, CLI contract."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from anomaly_gan.bundle.calibration import DEFECT, PART, Calibration, conformal_threshold, far_warning
from anomaly_gan.bundle.meta import InvertSettings
from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.cli import app
from anomaly_gan.data.layouts import find_scans, iter_scans
from anomaly_gan.data.writers import write_scan
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.invert import invert_refine, invert_seed, invert_seed_unbatched
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.detect.scorer import Networks, Scorer
from anomaly_gan.models.config import NetConfig
from anomaly_gan.models.dcgan import Critic, Encoder, Generator
from anomaly_gan.models.segmenter import Segmenter
from tests.conftest import make_scan, saved_records

runner = CliRunner()


@pytest.fixture
def nets():
    torch.manual_seed(0)
    config = NetConfig(width=4, latent=8)
    return Generator(config).eval(), Critic(config).eval(), Encoder(config).eval()


def test_batched_seed_search_equals_one_at_a_time(nets) -> None:
    g, _, _ = nets
    x = torch.rand(3, 4, 64, 64) * 2 - 1
    starts = torch.randn(3, 3, 8)
    settings = InvertSettings(seed_steps=5, seed_lr_g=1e-3)  # a large lr so per-scan weights matter
    batched = invert_seed(g, x, settings, starts)
    single = invert_seed_unbatched(g, x, settings, starts)
    torch.testing.assert_close(batched.loss, single.loss, rtol=1e-3, atol=1e-5)
    torch.testing.assert_close(batched.z, single.z, rtol=1e-3, atol=1e-4)


def test_seed_scores_do_not_depend_on_scans_per_pass(nets, monkeypatch) -> None:
    g, d, e = nets
    scorer = Scorer(Networks(g, d, e, lambda: g, 8), InvertSettings(seed_steps=3), torch.device("cpu"))
    x = torch.rand(5, 4, 64, 64) * 2 - 1
    scores = []
    for per_pass in (1, 5):
        monkeypatch.setattr("anomaly_gan.detect.scorer.SEED_SCANS_PER_CPU_PASS", per_pass)
        scores.append(scorer.score(x, "seed", [str(i) for i in range(5)]).values["search"])
    np.testing.assert_allclose(scores[0], scores[1], rtol=1e-4, atol=1e-6)


def test_batched_refine_equals_per_scan_refine(nets) -> None:
    g, d, e = nets
    x = torch.rand(4, 4, 64, 64) * 2 - 1
    starts = torch.randn(4, 2, 8)
    settings = InvertSettings(restarts=2, steps=5)
    together = invert_refine(g, d, e, x, settings, starts)
    for i in range(4):
        alone = invert_refine(g, d, e, x[i : i + 1], settings, starts[i : i + 1])
        torch.testing.assert_close(alone.loss, together.loss[i : i + 1], rtol=1e-4, atol=1e-6)


def test_conformal_threshold_keeps_its_promise_and_says_what_n_supports() -> None:
    scores = np.arange(99, dtype=float)  # n = 99: k = ceil(100 * 0.95) = 95, so 4 good scans lie above it
    assert 94 < conformal_threshold(scores, 0.05) <= 95
    assert (scores >= conformal_threshold(scores, 0.05)).sum() == 4
    assert conformal_threshold(scores, 0.01) > 98  # 1 / (n + 1) = 1%: the highest good scan
    assert conformal_threshold(np.full(10, 3.0), 0.1) > 3.0  # ties: none flagged rather than all
    assert conformal_threshold(np.array([1.0]), 0.01) > 1.0
    with pytest.raises(ValueError):
        conformal_threshold(np.array([]), 0.01)
    with pytest.raises(ValueError):
        conformal_threshold(scores, 0.0)


def test_conformal_threshold_holds_its_rate_on_new_good_scores() -> None:
    """Exchangeable good scores: the rate of new ones flagged stays at or under the promise."""
    rng = np.random.default_rng(0)
    rates = []
    for _ in range(400):
        calibration, new = rng.standard_t(3, 75), rng.standard_t(3, 2000)
        rates.append((new >= conformal_threshold(calibration, 0.05)).mean())
    assert 0.035 < np.mean(rates) <= 0.05 + 0.003  # promise 5%; the old max-of-k/n rule gave about 5.2%


def test_two_findings_standardise_on_good_scans_and_the_score_is_the_larger() -> None:
    good = {
        "critic": np.array([1.0, 2.0, 3.0, 2.0]),
        "size": np.array([1.0, 1.2, 0.8, 1.0]),
        "head": np.array([0.1, 0.2, 0.1, 0.2]),
    }
    weights = {PART: ({"critic": 1.0, "size": 1.0}, "equal"), DEFECT: ({"head": 1.0}, "fitted")}
    calibration = Calibration.fit(good, weights, far=0.2)
    findings = calibration.finding_scores(good)
    for v in findings.values():  # each finding in good-scan spreads
        assert abs(v.mean()) < 1e-9 and abs(v.std() - 1) < 1e-6
    np.testing.assert_allclose(calibration.combine(good), np.maximum(findings[PART], findings[DEFECT]))
    small = calibration.finding_scores({"critic": np.array([2.0]), "size": np.array([0.2]), "head": np.array([0.15])})
    big = calibration.finding_scores({"critic": np.array([2.0]), "size": np.array([1.8]), "head": np.array([0.15])})
    assert small[PART][0] == pytest.approx(big[PART][0]) and small[PART][0] > 2  # off either way
    assert calibration.supported_far == 0.2 and calibration.with_far(0.5).threshold < calibration.threshold
    assert far_warning(calibration, 0.1) and far_warning(calibration, 0.2) is None


def test_bundle_calibration_comes_from_the_held_out_good_block(tiny_bundle: Path) -> None:
    meta = json.loads((tiny_bundle / "model.json").read_text())
    training = meta["training"]
    refs = find_scans(Path(training["data"])).refs
    held = [r.id for r in refs][16:24]  # val_block 8, val_every 4: block 2 (every 4th, from the middle)
    assert training["validation_ids"] == held
    assert len(meta["calibration"]["refine"]["good_scores"]) == training["validation_scans"] == 8
    bundle = load_bundle(tiny_bundle)
    detector = Detector(bundle, DetectOptions("fast"), torch.device("cpu"))
    scans = [s for r, s in iter_scans(refs) if r.id in held]
    scored = detector.score(scans)
    np.testing.assert_allclose(scored.scores, meta["calibration"]["fast"]["good_scores"], rtol=1e-4, atol=1e-4)


def test_torchscript_and_in_memory_models_score_alike(tiny_bundle: Path) -> None:
    bundle = load_bundle(tiny_bundle)
    net = bundle.meta.network
    eager = {}
    for name, cls in (("generator", Generator), ("critic", Critic), ("encoder", Encoder)):
        eager[name] = cls(net)
        eager[name].load_state_dict(getattr(bundle, name).state_dict())
        eager[name].eval()
    scans = [make_scan(i) for i in range(5)]
    for mode in ("fast", "refine", "seed"):
        detector = Detector(bundle, DetectOptions(mode), torch.device("cpu"))
        x, _ = detector.tensor(scans)
        ids = [s.id for s in scans]
        scripted = detector.scorer.score(x, mode, ids)
        head = Segmenter(bundle.meta.segmenter)
        head.load_state_dict(bundle.segmenter.state_dict())
        nets = Networks(
            eager["generator"], eager["critic"], eager["encoder"], lambda: eager["generator"], net.latent, head.eval()
        )
        in_memory = Scorer(nets, bundle.meta.invert, torch.device("cpu")).score(x, mode, ids)
        for key, value in scripted.values.items():
            np.testing.assert_allclose(value, in_memory.values[key], rtol=1e-4, atol=1e-5)


def test_planted_defect_scores_higher_and_lights_up_the_map(tiny_bundle: Path) -> None:
    detector = Detector(load_bundle(tiny_bundle), DetectOptions("fast"), torch.device("cpu"))
    clean = make_scan(3)
    planted = make_scan(3)
    ys, xs = np.nonzero(clean.valid)
    cy, cx = int(ys.mean()), int(xs.mean())
    region = np.zeros(clean.shape, bool)
    region[cy - 5 : cy + 5, cx - 5 : cx + 5] = True
    planted.rgb[region] = (255, 0, 255)
    planted.depth[region] = np.nanmin(clean.depth) - 40
    scored = detector.score([clean, planted])
    assert scored.scores[1] > scored.scores[0]
    residual = [scored.scan_maps(i, clean.shape)[1:].mean(0) for i in (0, 1)]  # colour and depth maps
    lift = residual[1] - residual[0]
    assert lift[region].mean() > 5 * np.abs(lift[~region]).mean()


def write_scans(folder: Path, count: int = 6) -> Path:
    for i in range(count):
        write_scan(make_scan(100 + i), folder, "seed")
    return folder


def test_cli_detect_writes_records_and_panels(tiny_bundle: Path, tmp_path: Path) -> None:
    scans = write_scans(tmp_path / "scans")
    (scans / "RGB_Final" / "00105.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    result = runner.invoke(
        app,
        [
            "detect",
            str(scans),
            "--model",
            str(tiny_bundle),
            "--out",
            str(out),
            "--mode",
            "fast",
            "--json",
            "--save-maps",
        ],
    )
    assert result.exit_code == 2, result.output  # one unreadable scan: reported, the rest scored
    assert "00105.png: truncated PNG" in result.output
    records = saved_records(out)
    assert len(records) == 5
    for r in records:
        assert {
            "scan",
            "score",
            "threshold",
            "anomalous",
            "colour",
            "depth",
            "feature",
            "critic",
            "head",
            "size",
            "verdict",
            "findings",
            "fired",
            "leading",
            "map",
        } <= set(r)
        assert set(r["findings"]) == {"part", "defect"} and r["anomalous"] == bool(r["fired"])
        assert r["score"] == pytest.approx(max(r["findings"].values()), abs=1e-3)
        assert (r["defect_at"] is not None) == ("defect" in r["fired"])
        maps = np.load(out / r["map_npy"])  # combined, colour, depth in the scan's own frame
        assert (out / r["map"]).exists() and maps.shape == (3, 64, 64) and maps.dtype == np.float32
    csv_lines = (out / "results.csv").read_text().splitlines()
    assert csv_lines[0].startswith("scan,id,label,class,model,mode,score,threshold,anomalous") and len(csv_lines) == 6
    assert "anomalous,verdict,part,defect," in csv_lines[0] and ",size,aspect,distance,map,map_npy" in csv_lines[0]
    page = (out / "report.html").read_text()
    assert "at most 11.1% false alarms, the least 8 scans can promise (1.0% asked)" in page
    assert all(page.count(r["scan"]) >= 1 for r in records) and page.count('class="scan"') == 5
    assert "00105.png: truncated PNG" in page
    again = runner.invoke(app, ["detect", str(scans), "--model", str(tiny_bundle), "--out", str(out)])
    assert again.exit_code == 2 and "--force" in again.output


def test_cli_detect_threshold_options_and_fail_on_anomaly(tiny_bundle: Path, tmp_path: Path) -> None:
    scans = write_scans(tmp_path / "scans", 3)
    args = ["detect", str(scans), "--model", str(tiny_bundle), "--mode", "fast", "--force"]
    low = runner.invoke(app, [*args, "--out", str(tmp_path / "a"), "--threshold", "-1e9", "--fail-on-anomaly"])
    assert low.exit_code == 1 and "set with --threshold" in low.output
    high = runner.invoke(app, [*args, "--out", str(tmp_path / "b"), "--threshold", "1e9", "--fail-on-anomaly"])
    assert high.exit_code == 0
    far = runner.invoke(app, [*args, "--out", str(tmp_path / "c"), "--far", "0.2"])
    assert far.exit_code == 0 and "20.0% false-alarm rate" in far.output


def test_cli_detect_multi_model_reports_class(tiny_bundle: Path, tmp_path: Path) -> None:
    models = tmp_path / "models"
    shutil.copytree(tiny_bundle, models / "sphere-gan")
    shutil.copytree(tiny_bundle, models / "cube-gan")
    meta = json.loads((models / "cube-gan" / "model.json").read_text())
    meta["name"] = "cube"
    meta["calibration"]["fast"]["threshold"] += 1e5  # everything sits far below cube's threshold
    (models / "cube-gan" / "model.json").write_text(json.dumps(meta))
    result = runner.invoke(
        app,
        [
            "detect",
            str(write_scans(tmp_path / "scans", 2)),
            "--models",
            str(models),
            "--mode",
            "fast",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0, result.output
    records = saved_records(tmp_path / "o")
    assert {r["class"] for r in records} == {"cube"} and set(records[0]["scores_by_class"]) == {"sphere", "cube"}


@pytest.mark.parametrize(
    "damage, message",
    [
        ("version", "version 99; this anomaly-gan reads"),
        ("channels", "network has 3 channels"),
        ("missing", "encoder.pt: missing from the bundle"),
        ("garbage", "critic.pt: not a loadable TorchScript file"),
    ],
)
def test_cli_detect_bad_bundles(tiny_bundle: Path, tmp_path: Path, damage: str, message: str) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    meta = json.loads((bundle / "model.json").read_text())
    if damage == "version":
        meta["format_version"] = 99
    elif damage == "channels":
        meta["network"]["channels"] = 3
    elif damage == "missing":
        (bundle / "encoder.pt").unlink()
    else:
        (bundle / "critic.pt").write_bytes(b"junk")
    (bundle / "model.json").write_text(json.dumps(meta))
    result = runner.invoke(app, ["detect", str(write_scans(tmp_path / "s", 1)), "--model", str(bundle)])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_cli_detect_without_any_bundle_says_how_to_train(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["detect", str(write_scans(tmp_path / "s", 1))])
    assert result.exit_code == 2 and "anomaly-gan train --shape" in result.output
