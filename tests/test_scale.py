"""At scale: streamed records, panels for the top N only, resume, shards, merge and torchrun ranks
give the same records as one plain run; 2-process training keeps its replicas equal and survives
the death of a rank."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.cli import app
from anomaly_gan.data.writers import write_scan
from anomaly_gan.detect.detector import Detector
from tests.conftest import make_scan, saved_records, write_class

runner = CliRunner()
SCANS = 10


@pytest.fixture(scope="module")
def scans(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("scans") / "line"
    for i in range(SCANS):
        write_scan(make_scan(i, seed=3), folder, "seed")
    return folder


def detect(scans: Path, bundle: Path, out: Path, *more: str):
    return runner.invoke(
        app,
        ["detect", str(scans), "--model", str(bundle), "--mode", "fast", "--batch-size", "4", "--out", str(out), *more],
    )


def scores(folder: Path) -> dict[str, float]:
    return {Path(r["scan"]).name: r["score"] for r in saved_records(folder)}


def same_as(folder: Path):
    """Equal scores, up to float rounding: a scan batched with other scans goes through other
    matrix-multiply blockings (differences of about 1e-6)."""
    return pytest.approx(scores(folder), abs=1e-5)


@pytest.fixture(scope="module")
def single(scans: Path, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One plain run, all panels: the reference the other ways of running must equal."""
    out = tmp_path_factory.mktemp("single") / "o"
    result = detect(scans, tiny_bundle, out, "--panels", "all")
    assert result.exit_code == 0, result.output
    return out


def test_records_are_streamed_and_a_torn_last_line_is_ignored(single: Path, tmp_path: Path) -> None:
    run = json.loads((single / "run.json").read_text())
    assert run["scans"] == SCANS and not run["partial"]
    assert len(saved_records(single)) == SCANS
    assert len((single / "results.csv").read_text().splitlines()) == SCANS + 1
    copy = tmp_path / "copy"
    shutil.copytree(single, copy)
    with (copy / "results.jsonl").open("a") as f:
        f.write('{"scan": "half a reco')  # what kill -9 mid-write leaves
    result = runner.invoke(app, ["report", str(copy)])
    assert result.exit_code == 0, result.output
    assert (copy / "report.html").read_text().count("data:image/jpeg") == SCANS


def test_panels_for_the_top_n_and_flagged_only(scans: Path, tiny_bundle: Path, single: Path, tmp_path: Path) -> None:
    result = detect(scans, tiny_bundle, tmp_path / "top", "--report-top", "3", "--threshold", "1e9")
    assert result.exit_code == 0, result.output
    records = saved_records(tmp_path / "top")
    drawn = {r["id"] for r in records if r["map"]}
    best = {r["id"] for r in sorted(records, key=lambda r: r["score"], reverse=True)[:3]}
    assert best <= drawn < {r["id"] for r in records}  # the top 3 have panels, not every scan
    assert {f"maps/{p.name}" for p in (tmp_path / "top" / "maps").glob("*.jpg")} == {
        r["map"] for r in records if r["map"]
    }
    page = (tmp_path / "top" / "report.html").read_text()
    assert page.count("data:image/jpeg") == 3 and page.count('"line/') == 0
    assert page.count("[") >= SCANS  # every scan is a row of the table's data
    assert detect(scans, tiny_bundle, tmp_path / "none", "--no-panels").exit_code == 0
    assert not (tmp_path / "none" / "maps").exists()
    assert all(r["map"] is None for r in saved_records(tmp_path / "none"))
    assert scores(tmp_path / "none") == same_as(single)


def test_an_interrupted_run_resumes_to_the_same_records(
    scans: Path, tiny_bundle: Path, single: Path, tmp_path: Path, monkeypatch
) -> None:
    real, calls = Detector.score, []

    def score(self, batch):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(self, batch)

    monkeypatch.setattr(Detector, "score", score)
    result = detect(scans, tiny_bundle, tmp_path / "o")
    assert result.exit_code == 130 and "--resume" in result.output
    assert len(saved_records(tmp_path / "o")) == 4
    monkeypatch.setattr(Detector, "score", real)
    result = detect(scans, tiny_bundle, tmp_path / "o", "--resume")
    assert result.exit_code == 0, result.output
    assert scores(tmp_path / "o") == same_as(single)
    assert len(saved_records(tmp_path / "o")) == SCANS  # nothing scored twice
    assert len((tmp_path / "o" / "results.csv").read_text().splitlines()) == SCANS + 1
    assert not json.loads((tmp_path / "o" / "run.json").read_text())["partial"]
    again = detect(scans, tiny_bundle, tmp_path / "o", "--resume")
    assert again.exit_code == 2 and "nothing to resume" in again.output


@pytest.fixture(scope="module")
def shards(scans: Path, tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("shards")
    for i in range(3):
        result = detect(scans, tiny_bundle, root / f"s{i}", "--shard", f"{i}/3")
        assert result.exit_code == 0, result.output
    return [root / f"s{i}" for i in range(3)]


def test_shards_cover_the_scans_once_and_merge_to_the_single_run(
    shards: list[Path], single: Path, tmp_path: Path
) -> None:
    parts = [set(scores(s)) for s in shards]
    assert sum(map(len, parts)) == SCANS and set().union(*parts) == set(scores(single))
    result = runner.invoke(app, ["merge", str(tmp_path / "m"), *map(str, reversed(shards))])
    assert result.exit_code == 0, result.output
    assert scores(tmp_path / "m") == same_as(single)
    for r in saved_records(tmp_path / "m"):  # panels stay in the shard folders, linked from the merge
        assert (tmp_path / "m" / r["map"]).is_file()
    assert "merged from" in (tmp_path / "m" / "report.html").read_text()


def test_merge_refuses_what_is_not_one_run(
    shards: list[Path], scans: Path, tiny_bundle: Path, single: Path, tmp_path: Path
) -> None:
    def merge(*folders: Path) -> str:
        result = runner.invoke(app, ["merge", str(tmp_path / "m"), *map(str, folders)])
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        assert not (tmp_path / "m").exists()
        return " ".join(result.output.split())

    assert "shard 2 of 3 missing" in merge(shards[0], shards[1])
    assert "given twice" in merge(shards[0], shards[1], shards[1], shards[2])
    other = tmp_path / "other"
    shutil.copytree(tiny_bundle, other)
    meta = json.loads((other / "model.json").read_text())
    meta["name"] = "sphere-copy"
    (other / "model.json").write_text(json.dumps(meta))
    assert detect(scans, other, tmp_path / "x", "--shard", "2/3").exit_code == 0
    assert "other bundles" in merge(shards[0], shards[1], tmp_path / "x")
    assert "not a shard" in merge(shards[0], shards[1], single)
    assert "nowhere: no run.json" in merge(shards[0], shards[1], tmp_path / "nowhere")


def test_torchrun_ranks_score_their_slices_and_rank_0_merges(
    scans: Path, tiny_bundle: Path, single: Path, tmp_path: Path
) -> None:
    torchrun = Path(sys.executable).with_name("torchrun")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            str(torchrun),
            "--nproc-per-node",
            "2",
            "-m",
            "anomaly_gan",
            "detect",
            str(scans),
            "--model",
            str(tiny_bundle),
            "--mode",
            "fast",
            "--batch-size",
            "4",
            "--out",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert scores(tmp_path / "o") == same_as(single)
    assert sorted(p.name for p in (tmp_path / "o" / "shards").iterdir()) == ["0-of-2", "1-of-2"]


def torchrun_train(data: Path, out: Path, *more: str) -> subprocess.Popen:
    torchrun = Path(sys.executable).with_name("torchrun")
    return subprocess.Popen(
        [
            str(torchrun),
            "--nproc-per-node",
            "2",
            "-m",
            "anomaly_gan",
            "train",
            "--shape",
            "sphere",
            "--data",
            str(data),
            "--out",
            str(out),
            "--encoder-steps",
            "6",
            "--head-steps",
            "20",
            "--batch-size",
            "8",
            "--width",
            "4",
            *more,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_class(tmp_path_factory.mktemp("ddp") / "data")


def test_two_process_training_keeps_the_replicas_equal(data: Path, tmp_path: Path) -> None:
    run = torchrun_train(data, tmp_path / "models", "--steps", "12")
    output = run.communicate(timeout=300)[0]
    assert run.returncode == 0, output
    bundle = load_bundle(tmp_path / "models" / "sphere-gan")  # loads like any bundle
    training = bundle.meta.training
    assert training.world_size == 2 and training.steps == 12
    assert len(set(training.replica_digests)) == 1  # both ranks held the same weights at the end
    assert "x 2 processes" in output and "Traceback" not in output


def test_a_rank_that_dies_stops_the_run_without_a_bundle_and_resume_finishes_it(data: Path, tmp_path: Path) -> None:
    run = torchrun_train(data, tmp_path / "models", "--steps", "400")
    bundle = tmp_path / "models" / "sphere-gan"
    deadline = time.monotonic() + 120
    while not (bundle / "checkpoint.pt").exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    rank_1 = [p for p in Path("/proc").glob("[0-9]*") if _is_rank_1_of(p, run.pid)]
    assert len(rank_1) == 1
    os.kill(int(rank_1[0].name), signal.SIGKILL)
    output = run.communicate(timeout=120)[0]
    assert run.returncode != 0
    assert "rank 0: stopped: another rank failed" in " ".join(output.split())
    assert "rank      : 1" in output  # torchrun's summary names the rank that died
    assert not (bundle / "model.json").exists() and (bundle / "checkpoint.pt").exists()
    resumed = torchrun_train(data, tmp_path / "models", "--steps", "400", "--resume")
    assert resumed.wait(timeout=300) == 0
    assert load_bundle(bundle).meta.training.steps == 400


def _is_rank_1_of(proc: Path, parent: int) -> bool:
    try:
        status = (proc / "status").read_text()
        environ = (proc / "environ").read_bytes().split(b"\0")
    except OSError:
        return False
    return f"PPid:\t{parent}\n" in status and b"RANK=1" in environ
