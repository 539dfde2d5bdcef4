"""Nothing the user gave is destroyed, no name escapes its folder, and the report links only to
the run's own files: an --out that is or holds an input is refused with or without --force; class
names are plain path components; a scan id of any length gets a panel; a tampered record's panel
path becomes no link."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomaly_gan.cli import app
from anomaly_gan.data.writers import write_scan
from tests.conftest import make_scan, saved_records
from tests.test_faults import GOOD, assert_one_line_failure, detect, good_folder

runner = CliRunner()


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["the scans", "above the scans", "the bundle"])
def test_detect_never_deletes_its_inputs(where: str, tiny_bundle: Path, tmp_path: Path) -> None:
    scans = good_folder(tmp_path / "in" / "x")
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    before = _files(tmp_path)
    out = {"the scans": scans, "above the scans": tmp_path / "in", "the bundle": bundle}[where]
    result = detect(str(scans), "--model", str(bundle), "--out", str(out), "--force")
    assert_one_line_failure(result, 2, str(out), "never deleted")
    assert _files(tmp_path) == before


def test_merge_into_one_of_its_shards_is_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    scans = good_folder(tmp_path / "scans")
    shards = [tmp_path / "o" / f"s{i}" for i in range(2)]
    for i, shard in enumerate(shards):
        assert detect(str(scans), "--model", str(tiny_bundle), "--shard", f"{i}/2", "--out", str(shard)).exit_code == 0
    before = _files(tmp_path / "o")
    result = runner.invoke(app, ["merge", str(shards[0]), *map(str, shards), "--force"])
    assert_one_line_failure(result, 2, str(shards[0]), "the output folder is the input")
    assert _files(tmp_path / "o") == before


def test_evaluate_synth_and_preprocess_never_delete_their_inputs(tiny_bundle: Path, tmp_path: Path) -> None:
    scans = good_folder(tmp_path / "scans")
    before = _files(tmp_path)
    for args in (
        [
            "evaluate",
            "--model",
            str(tiny_bundle),
            "--normal",
            str(scans),
            "--anomalous",
            str(scans),
            "--out",
            str(scans),
        ],
        ["synth", str(scans), "--from", str(scans)],
        ["preprocess", str(scans), str(tmp_path)],
    ):
        result = runner.invoke(app, [*args, "--force"])
        assert result.exit_code == 2 and "never deleted" in result.output and "Traceback" not in result.output, (
            args,
            result.output,
        )
    assert _files(tmp_path) == before


def test_a_class_name_cannot_leave_the_output_folder(tmp_path: Path) -> None:
    for name in ("../../evil", "a/b", "..", "-rf"):
        result = runner.invoke(app, ["train", "--shape", name, "--out", str(tmp_path / "models")])
        assert result.exit_code == 2 and "use a plain name" in result.output, result.output
    assert not any(tmp_path.parent.glob("evil*")) and not (tmp_path / "models").exists()


def test_a_very_long_scan_id_gets_a_panel_and_a_finished_run(tiny_bundle: Path, tmp_path: Path) -> None:
    scans = good_folder(tmp_path / "scans", "npz")
    write_scan(make_scan(7), scans, "npz")
    (scans / "00007.npz").rename(scans / ("x" * 250 + ".npz"))
    result = detect(str(scans), "--model", str(tiny_bundle), "--out", str(tmp_path / "o"), "--panels", "all")
    assert result.exit_code == 0, result.output
    records = saved_records(tmp_path / "o")
    assert len(records) == GOOD + 1 and all((tmp_path / "o" / r["map"]).is_file() for r in records)
    assert max(len(Path(r["map"]).name) for r in records) < 120
    assert json.loads((tmp_path / "o" / "run.json").read_text())["partial"] is False


@pytest.mark.parametrize(
    "path",
    ["javascript:alert(1)", "/etc/passwd", "../../outside.jpg", "maps/missing.jpg", "JaVaScRiPt:alert(1)//maps/x.jpg"],
)
def test_the_report_links_only_to_the_runs_own_files(path: str, tiny_bundle: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    assert (
        detect(
            str(good_folder(tmp_path / "scans")), "--model", str(tiny_bundle), "--out", str(out), "--panels", "all"
        ).exit_code
        == 0
    )
    (tmp_path / "outside.jpg").write_bytes(b"not ours")
    lines = (out / "results.jsonl").read_text().splitlines()
    record = json.loads(lines[0])
    record["map"] = path
    (out / "results.jsonl").write_text("\n".join([json.dumps(record), *lines[1:]]) + "\n")
    assert runner.invoke(app, ["report", str(out)]).exit_code == 0
    page = (out / "report.html").read_text()
    assert path not in page and json.dumps(path) not in page
    assert page.count('"maps/') + page.count('data-full="maps/') >= GOOD - 1  # the untampered panels still link


def test_sigterm_stops_detect_like_ctrl_c(tiny_bundle: Path, tmp_path: Path) -> None:
    """A service manager's stop: exit 130, the scans scored so far kept, the report written."""
    scans = good_folder(tmp_path / "scans", "npz")
    for i in range(400):
        shutil.copy(scans / "00000.npz", scans / f"copy{i:03d}.npz")
    out = tmp_path / "o"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "anomaly_gan",
            "detect",
            str(scans),
            "--model",
            str(tiny_bundle),
            "--mode",
            "refine",
            "--batch-size",
            "1",
            "--out",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    deadline = time.monotonic() + 120
    while (
        child.poll() is None
        and time.monotonic() < deadline
        and not ((out / "results.jsonl").exists() and (out / "results.jsonl").stat().st_size)
    ):
        time.sleep(0.05)
    child.send_signal(signal.SIGTERM)
    output, _ = child.communicate(timeout=60)
    assert child.returncode == 130 and "Traceback" not in output and "interrupted" in output, output
    run = json.loads((out / "run.json").read_text())
    assert run["partial"] and 0 < run["scans"] < GOOD + 400
    assert len(saved_records(out)) == run["scans"] and (out / "report.html").is_file()
