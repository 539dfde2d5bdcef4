"""The HTML report answers which, where and why: labels, component bars, the empty-filter message,
the score distribution, the undertrained flag; evaluate warns about its own training scans."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.cli import app
from anomaly_gan.data.defects import inject
from anomaly_gan.data.writers import write_scan
from tests.conftest import make_scan, saved_records

runner = CliRunner()


def detect(tiny_bundle: Path, tmp_path: Path, *extra: str) -> tuple[Path, str]:
    folder = tmp_path / "scans"
    for i in range(4):
        write_scan(make_scan(200 + i), folder / "test" / "good", "seed")
    write_scan(inject(make_scan(210), "stain", np.random.default_rng(0)), folder / "test" / "stain", "seed")
    out = tmp_path / "out"
    result = runner.invoke(
        app, ["detect", str(folder), "--model", str(tiny_bundle), "--out", str(out), "--mode", "fast", *extra]
    )
    assert result.exit_code == 0, result.output
    return out, (out / "report.html").read_text()


def test_rows_show_label_and_the_components_that_raised_the_score(tiny_bundle: Path, tmp_path: Path) -> None:
    out, html = detect(tiny_bundle, tmp_path)
    records = saved_records(out)
    assert {r["label"] for r in records} == {"good", "stain"}
    assert "<td>stain</td>" in html and "<td>good</td>" in html
    top = max(records, key=lambda r: r["score"])
    contributions = top["contributions"]
    assert abs(max(top["findings"].values()) - top["score"]) < 0.01  # the score is the larger finding
    for leading in top["leading"].values():  # each finding's leading components raised it most
        assert [contributions[k] for k in leading] == sorted((contributions[k] for k in leading), reverse=True)
        assert all(contributions[k] > 0 for k in leading)
    assert top["leading"]["part"] or top["leading"]["defect"]
    raised = max(contributions, key=contributions.get)
    assert f'<div class="why"><span>{raised}</span>' in html


def test_empty_filter_says_so_and_names_the_closest_scan(tiny_bundle: Path, tmp_path: Path) -> None:
    out, html = detect(tiny_bundle, tmp_path, "--threshold", "1e9")
    records = saved_records(out)
    closest = max(records, key=lambda r: r["score"])
    message = re.search(r'<p id="nothing"[^>]*>(.*?)</p>', html).group(1)
    assert message.startswith("No scan above the threshold (1000000000.000)")
    assert closest["scan"] in message and f"{closest['score']:.3f}" in message


def test_header_shows_the_score_distribution_and_flags_an_undertrained_bundle(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    meta = load_bundle(tiny_bundle).meta
    assert "12 GAN steps, under half the default 1500" in meta.undertrained()
    folder = tmp_path / "one"
    write_scan(make_scan(600), folder, "seed")
    said = runner.invoke(app, ["detect", str(folder), "--model", str(tiny_bundle), "--out", str(tmp_path / "o1")])
    assert "warning: model sphere-gan looks undertrained (12 GAN steps" in " ".join(said.output.split())
    _, html = detect(tiny_bundle, tmp_path)
    assert '<div class="dist"><svg' in html and "held-out good scans (calibration) (" in html
    assert "looks undertrained: 12 GAN steps, under half the default 1500" in html


def test_evaluate_warns_when_normal_scans_are_training_scans(tiny_bundle: Path, tmp_path: Path) -> None:
    meta = load_bundle(tiny_bundle).meta
    training = Path(meta.training.data)
    defects = tmp_path / "defects"
    write_scan(inject(make_scan(300), "stain", np.random.default_rng(1)), defects, "seed")
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(tiny_bundle),
            "--normal",
            str(training),
            "--anomalous",
            str(defects),
            "--out",
            str(tmp_path / "e"),
            "--mode",
            "fast",
        ],
    )
    assert result.exit_code == 0, result.output
    assert f"warning: {len(meta.training.train_ids)} of the normal scans are this bundle's own training" in (
        " ".join(result.output.split())
    )
    fresh = tmp_path / "fresh"
    for i in range(3):
        write_scan(make_scan(400 + i), fresh, "seed")
    result = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            str(tiny_bundle),
            "--normal",
            str(fresh),
            "--anomalous",
            str(defects),
            "--out",
            str(tmp_path / "f"),
            "--mode",
            "fast",
        ],
    )
    assert result.exit_code == 0 and "training scans" not in result.output


def test_a_plain_folder_labels_its_scans_with_its_name(tiny_bundle: Path, tmp_path: Path) -> None:
    for i in range(2):
        write_scan(make_scan(500 + i, shape="cylinder"), tmp_path / "cylinder", "seed")
    result = runner.invoke(
        app,
        [
            "detect",
            str(tmp_path / "cylinder"),
            "--model",
            str(tiny_bundle),
            "--out",
            str(tmp_path / "o"),
            "--mode",
            "fast",
        ],
    )
    assert result.exit_code == 0, result.output
    records = saved_records(tmp_path / "o")
    assert {r["label"] for r in records} == {"cylinder"}


FAIL_FAST = """
import sys
from typer.testing import CliRunner
from anomaly_gan.cli import app
missing = sys.argv[1]
for args in (["detect", missing], ["detect", sys.argv[2], "--model", missing], ["info", missing],
             ["evaluate", "--model", missing, "--normal", sys.argv[2], "--anomalous", sys.argv[2]],
             ["train", "--shape", "x", "--data", missing]):
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and missing in result.output, (args, result.output)
assert "torch" not in sys.modules, "torch was loaded before the missing path was reported"
"""


def test_missing_paths_and_bundles_are_said_before_torch_loads(tmp_path: Path) -> None:
    import subprocess
    import sys

    scans = tmp_path / "scans"
    write_scan(make_scan(0), scans, "seed")
    subprocess.run(
        [sys.executable, "-c", FAIL_FAST, str(tmp_path / "missing"), str(scans)],
        check=True,
        cwd=Path(__file__).resolve().parents[1],
    )
