"""`anomaly-gan watch`: complete files only, pairs waited for, every scan scored once across a
kill -9 and restart, bad files said in one line, a clean stop on SIGTERM, the --on-anomaly hook."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from anomaly_gan.detect.arrivals import Arrivals, WatchSettings
from tests.conftest import write_class

SETTINGS = WatchSettings(settle_s=0.5, partner_s=2.0, rescan_s=0.0)


def _pair(src: Path, dst: Path, stem: str) -> None:
    """Copy one synthetic scan's colour and depth images into a watched seed-layout folder."""
    for sub in ("RGB_Final", "Depth_Final"):
        shutil.copy(src / sub / f"{stem}.png", dst / sub / f"{stem}.png")


def test_a_pair_waits_for_its_partner_and_a_growing_file_for_its_end(tmp_path: Path) -> None:
    src = write_class(tmp_path / "src", count=2) / "sphere"
    line = tmp_path / "line"
    (line / "RGB_Final").mkdir(parents=True)
    (line / "Depth_Final").mkdir()
    arrivals = Arrivals(line, SETTINGS, set())
    shutil.copy(src / "RGB_Final" / "00000.png", line / "RGB_Final")
    assert arrivals.ready(0.0) == ([], [])  # just seen
    assert arrivals.ready(1.0) == ([], [])  # complete, but its depth has not come
    shutil.copy(src / "Depth_Final" / "00000.png", line / "Depth_Final")
    arrivals.ready(1.5)
    refs, problems = arrivals.ready(2.5)
    assert [(r.rgb.name, r.depth.name) for r in refs] == [("00000.png", "00000.png")] and problems == []
    growing = line / "RGB_Final" / "00001.png"
    growing.write_bytes(b"\x89PNG")
    arrivals.ready(3.0)
    with growing.open("ab") as f:
        f.write(b"more")
    assert arrivals.ready(3.6) == ([], [])  # its size changed: seen afresh
    refs, problems = arrivals.ready(6.0)
    assert refs == [] and problems == []
    refs, problems = arrivals.ready(8.2)  # its partner never came
    assert refs == [] and problems == [f"{growing}: colour image whose partner has not come to Depth_Final/ in 2 s"]
    assert arrivals.ready(9.0) == ([], [])  # said once


def _watch(line: Path, model: Path, out: Path, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "anomaly_gan", "watch", str(line), "--model", str(model), "--out", str(out)]
    cmd += ["--settle", "0.3", "--partner-timeout", "1", "--device", "cpu", *extra]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _records(out: Path) -> list[dict]:
    lines = []
    for path in sorted(out.glob("*/results.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]
    return lines


def _wait_for(out: Path, count: int, process: subprocess.Popen, limit_s: float = 90) -> None:
    deadline = time.monotonic() + limit_s
    while len(_records(out)) < count:
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{len(_records(out))} of {count} records after {limit_s} s"
        time.sleep(0.2)


def test_every_scan_is_scored_once_across_a_kill_and_restart(tiny_bundle: Path, tmp_path: Path) -> None:
    src = write_class(tmp_path / "src", count=12, seed=4) / "sphere"
    line, out = tmp_path / "line", tmp_path / "out"
    (line / "RGB_Final").mkdir(parents=True)
    (line / "Depth_Final").mkdir()
    first = _watch(line, tiny_bundle, out)
    for i in range(6):
        _pair(src, line, f"{i:05d}")
    _wait_for(out, 6, first)
    first.send_signal(signal.SIGKILL)
    first.wait()
    for i in range(6, 12):  # arrive while nothing watches
        _pair(src, line, f"{i:05d}")
    (line / "RGB_Final" / "broken.png").write_bytes(b"not a png")
    (line / "Depth_Final" / "broken.png").write_bytes(b"not a png")
    second = _watch(line, tiny_bundle, out)
    _wait_for(out, 12, second)
    time.sleep(1.0)
    second.send_signal(signal.SIGTERM)
    stdout, stderr = second.communicate(timeout=60)
    assert second.returncode == 0, stderr
    scans = [r["scan"] for r in _records(out)]
    assert len(scans) == 12 and len(set(scans)) == 12
    assert "Traceback" not in stderr and "broken.png" in stderr
    assert len([line for line in stderr.splitlines() if "broken.png" in line]) == 1
    day = next(out.glob("*/run.json")).parent
    run = json.loads((day / "run.json").read_text())
    assert run["partial"] is False and run["scans"] == 12 and any("broken.png" in u for u in run["unreadable"])
    assert (day / "report.html").is_file() and "stopped (SIGTERM)" in stdout


def test_on_anomaly_gets_each_record_and_its_failure_does_not_stop_the_watch(tiny_bundle: Path, tmp_path: Path) -> None:
    src = write_class(tmp_path / "src", count=3, seed=6) / "sphere"
    line, out, hooked = tmp_path / "line", tmp_path / "out", tmp_path / "hooked.jsonl"
    (line / "RGB_Final").mkdir(parents=True)
    (line / "Depth_Final").mkdir()
    hook = f"cat >> {hooked}; echo >> {hooked}; echo 'no pager here' >&2; exit 3"
    watch = _watch(line, tiny_bundle, out, "--threshold", "-1000", "--on-anomaly", hook)
    for i in range(3):
        _pair(src, line, f"{i:05d}")
    _wait_for(out, 3, watch)
    deadline = time.monotonic() + 30
    while (not hooked.exists() or len(hooked.read_text().splitlines()) < 3) and time.monotonic() < deadline:
        time.sleep(0.2)
    watch.send_signal(signal.SIGINT)
    _, stderr = watch.communicate(timeout=60)
    assert watch.returncode == 0
    got = [json.loads(line) for line in hooked.read_text().splitlines() if line.strip()]
    assert sorted(r["id"] for r in got) == ["00000", "00001", "00002"] and all(r["anomalous"] for r in got)
    assert stderr.count("--on-anomaly exited 3") == 3 and "no pager here" in stderr


def test_watch_refuses_an_output_inside_the_watched_folder(tiny_bundle: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "anomaly_gan",
            "watch",
            str(tmp_path),
            "--model",
            str(tiny_bundle),
            "--out",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert done.returncode == 2 and "must lie outside the watched folder" in done.stderr


def test_a_vanished_folder_is_said_once_and_watched_again_when_it_comes_back(tmp_path: Path) -> None:
    src = write_class(tmp_path / "src", count=1) / "sphere"
    line = tmp_path / "line"
    line.mkdir()
    arrivals = Arrivals(line, SETTINGS, set())
    arrivals.start()
    try:
        line.rmdir()
        assert arrivals.ready(0.0) == ([], [f"{line}: the watched folder is gone; waiting for it to come back"])
        assert arrivals.ready(1.0) == ([], [])
        shutil.copytree(src, line)
        refs, problems = arrivals.ready(2.0)
        assert refs == [] and problems[0].startswith(f"{line}: the watched folder is back; watching it with")
        arrivals.ready(3.0)
        refs, _ = arrivals.ready(4.0)
        assert [r.id for r in refs] == ["00000"]
    finally:
        arrivals.stop()


def test_a_full_disk_keeps_the_scans_waiting_and_loses_no_record(
    tiny_bundle: Path, tmp_path: Path, monkeypatch
) -> None:
    import errno
    import threading

    from anomaly_gan.bundle.store import load_bundle
    from anomaly_gan.cli import line_commands
    from anomaly_gan.data.layouts import find_scans
    from anomaly_gan.detect.detector import Detector
    from anomaly_gan.detect.judge import DetectOptions
    from anomaly_gan.detect.watch import Station, read_ahead
    from anomaly_gan.report.records import Output, ResultsWriter

    refs = find_scans(write_class(tmp_path / "src", count=3) / "sphere").refs
    detector = Detector(load_bundle(tiny_bundle), DetectOptions("fast"), __import__("torch").device("cpu"))
    station = Station([detector], tmp_path / "out", Output(panels="none"))
    real_add, failures = ResultsWriter.add, iter([True])

    def add(self, records):
        if next(failures, False):
            raise OSError(errno.ENOSPC, "No space left on device")
        real_add(self, records)

    monkeypatch.setattr(ResultsWriter, "add", add)
    monkeypatch.setattr(line_commands, "RETRY_S", 0.01)
    scans, _ = next(read_ahead(refs, 64))
    records, _ = line_commands._score_until_written(station, scans, [], threading.Event())
    station.close()
    assert len(records) == 3
    assert len(_records(tmp_path / "out")) == 3


def test_a_bundle_replaced_while_watching_is_loaded_again_or_kept_when_broken(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    import torch

    from anomaly_gan.bundle.store import load_bundle
    from anomaly_gan.detect.detector import Detector
    from anomaly_gan.detect.judge import DetectOptions
    from anomaly_gan.detect.watch import bundle_stamps, reload_if_replaced

    bundle = tmp_path / "sphere-gan"
    shutil.copytree(tiny_bundle, bundle)

    def load(paths: list[Path]) -> list[Detector]:
        return [Detector(load_bundle(p), DetectOptions("fast"), torch.device("cpu")) for p in paths]

    detectors = load([bundle])
    stamps = bundle_stamps(detectors)
    assert reload_if_replaced(detectors, stamps, load) == (None, stamps, None)
    meta = json.loads((bundle / "model.json").read_text())
    meta["calibration"]["fast"]["threshold"] = 123.0
    time.sleep(0.01)
    (bundle / "model.json").write_text(json.dumps(meta))
    fresh, stamps, said = reload_if_replaced(detectors, stamps, load)
    assert fresh[0].threshold == 123.0 and said == f"{bundle} changed: reloaded"
    (bundle / "model.json").write_text("{ half written")
    kept, stamps, said = reload_if_replaced(fresh, stamps, load)
    assert (
        kept is None
        and "changed but cannot be loaded" in said
        and "still scoring with the bundle loaded before" in said
    )
    assert "\n" not in said
