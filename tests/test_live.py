"""The live page of `watch --serve`: its state, its routes, and the page in headless Chromium."""

from __future__ import annotations

import datetime
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from anomaly_gan.report.live import LiveState, PortInUse, live_app, serve
from anomaly_gan.report.records import ModelUsed, Record


def _record(name: str, anomalous: bool, panel: str | None = None) -> Record:
    return Record(
        scan=f"/line/RGB_Final/{name}.png",
        id=name,
        label="good",
        class_="sphere",
        model="models/sphere-gan",
        mode="fast",
        score=3.5 if anomalous else 0.2,
        threshold=2.9,
        anomalous=anomalous,
        components={"colour": 0.1},
        map=panel,
        fired=["defect"] if anomalous else [],
        defect_at=[10, 12] if anomalous else None,
    )


def _state(tmp_path: Path) -> LiveState:
    model = ModelUsed("models/sphere-gan", "sphere", "gan", 2.9, "calibrated for a 1.0% false-alarm rate", [], "", "x")
    state = LiveState(tmp_path, "/line (file events)", [model])
    (tmp_path / "2026-12-06" / "maps").mkdir(parents=True)
    (tmp_path / "2026-12-06" / "maps" / "0002.jpg").write_bytes(b"\xff\xd8 jpeg")
    now = datetime.datetime(2026, 12, 6, 10, 30)
    state.add("2026-12-06", [_record("0001", False), _record("0002", True, "maps/0002.jpg")], ["/line/x.png: bad"], now)
    return state


def test_state_lists_latest_scans_counts_per_hour_and_problems(tmp_path: Path) -> None:
    client = TestClient(live_app(_state(tmp_path)))
    state = client.get("/state").json()
    assert [r["scan"] for r in state["latest"]] == ["/line/RGB_Final/0002.png", "/line/RGB_Final/0001.png"]
    assert state["latest"][0]["verdict"].startswith("defect at (10, 12)")
    assert state["hours"] == [{"hour": "2026-12-06 10", "scans": 2, "anomalous": 1}]
    assert state["models"][0]["threshold"] == 2.9 and "bad" in state["problems"][0]
    assert client.get(state["latest"][0]["panel"]).content == b"\xff\xd8 jpeg"


def test_page_needs_nothing_remote_and_panels_stay_in_their_folder(tmp_path: Path) -> None:
    client = TestClient(live_app(_state(tmp_path)))
    page = client.get("/").text
    assert "http://" not in page and "https://" not in page and 'fetch("state"' in page
    (tmp_path / "secret.jpg").write_bytes(b"secret")
    assert client.get("/panels/2026-12-06/maps/..%2F..%2Fsecret.jpg").status_code == 404
    assert client.get("/panels/2026-12-06/maps/missing.jpg").status_code == 404


def test_a_port_in_use_is_said_in_one_line(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(PortInUse, match=f"--serve 127.0.0.1:{port}: cannot listen there"):
            serve(_state(tmp_path), "127.0.0.1", port)


@pytest.mark.skipif(shutil.which("chromium") is None, reason="headless Chromium not installed")
def test_the_page_renders_the_scans_in_headless_chromium(tmp_path: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    serve(_state(tmp_path), "127.0.0.1", port)
    time.sleep(1.0)
    done = subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--virtual-time-budget=3000",
            "--dump-dom",
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "/line/RGB_Final/0002.png" in done.stdout  # the script fetched /state and drew the table
    assert "defect at (10, 12)" in done.stdout
