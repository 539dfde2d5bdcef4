"""The bad-input and fault matrix, run against the CLI: every case ends with a known exit code, no
traceback, a message naming the file, the good scans of the same batch scored, and no code run from
a crafted file (the sentinel the malicious pickle would create never exists)."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.cli import app
from anomaly_gan.data.writers import write_scan
from anomaly_gan.detect.detector import Detector
from anomaly_gan.train.run import TrainingInterrupted, train
from anomaly_gan.train.stopping import StopNow, stop_at_step_boundary
from tests.conftest import cli_train, make_scan, mm_scan, saved_records, tiny_config, write_class

runner = CliRunner()
GOOD = 3  # good scans beside each bad file


class Payload:
    """Unpickling this runs a shell command that creates the sentinel file."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return os.system, (f"touch {self.sentinel}",)


def malicious_pickle(path: Path, sentinel: Path) -> None:
    path.write_bytes(pickle.dumps({"models": Payload(sentinel)}))


def good_folder(root: Path, layout: str = "seed") -> Path:
    for i in range(GOOD):
        write_scan(make_scan(i), root, layout)
    return root


def _colour(folder: Path) -> Path:
    return folder / "RGB_Final" / "00001.png"


def _depth(folder: Path) -> Path:
    return folder / "Depth_Final" / "00001.png"


def _npy(folder: Path, array: np.ndarray) -> Path:
    np.save(folder / "bad.npy", array)
    return folder / "bad.npy"


def _array(depth: float | None = None) -> np.ndarray:
    """An HxWx4 scan array; `depth` overwrites one depth pixel (None: every depth pixel NaN)."""
    array = np.dstack([np.full((64, 64, 3), 100, np.float32), np.full((64, 64), 900, np.float32)])
    if depth is None:
        array[..., 3] = np.nan
    else:
        array[5, 5, 3] = depth
    return array


# name -> (layout of the good scans, damage(folder) -> the bad file, words the message must hold)
IMAGE_CASES: dict[str, tuple[str, Callable[[Path], Path], str]] = {
    "truncated png": ("seed", lambda f: _cut(_colour(f), 200), "truncated PNG"),
    "zero-byte depth": ("seed", lambda f: _write(_depth(f), b""), "empty file"),
    "16-bit colour": ("seed", lambda f: _imwrite(_colour(f), np.full((64, 64, 3), 999, np.uint16)), "expected 8-bit"),
    "grayscale colour": ("seed", lambda f: _imwrite(_colour(f), np.full((64, 64), 99, np.uint8)), "1 channel"),
    "size mismatch": ("seed", lambda f: _imwrite(_depth(f), np.full((32, 32), 99, np.uint8)), "is 32x32"),
    "orphan colour": ("seed", lambda f: _unlink(_depth(f), _colour(f)), "without depth partner"),
    "inf depth": ("npy", lambda f: _npy(f, _array(np.inf)), "infinite"),
    "all-NaN depth": ("npy", lambda f: _npy(f, _array(None)), "no valid pixel"),
    "wrong array shape": ("npy", lambda f: _npy(f, np.zeros((64, 64, 3), np.float32)), "expected HxWx4"),
    "pickled array": ("npy", lambda f: _npy(f, np.array([Payload(f / "SENTINEL")], dtype=object)), "bad.npy"),
    "FIFO for a depth file": ("seed", lambda f: _fifo(_depth(f)), "a FIFO, not a regular file"),
    "empty array": ("npy", lambda f: _npy(f, np.zeros((0, 0, 4), np.float32)), "expected HxWx4"),
    "array of strings": ("npy", lambda f: _npy(f, np.full((8, 8, 4), "a")), "expected real numbers"),
    "complex array": ("npy", lambda f: _npy(f, np.zeros((8, 8, 4), complex)), "complex128 values"),
    "garbage point cloud": (
        "ply",
        lambda f: _write(f / "bad.ply", b"ply\nformat nonsense\n"),
        "not a readable point cloud (RPly: Invalid file format",
    ),
}


def _cut(path: Path, keep: int) -> Path:
    return _write(path, path.read_bytes()[:keep])


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def _imwrite(path: Path, image: np.ndarray) -> Path:
    cv2.imwrite(str(path), image)
    return path


def _fifo(path: Path) -> Path:
    """A named pipe where a file should be: opening it would wait for a writer forever."""
    path.unlink()
    os.mkfifo(path)
    return path


def _unlink(partner: Path, named: Path) -> Path:
    partner.unlink()
    return named


def detect(*args: str):
    return runner.invoke(app, ["detect", *args, "--mode", "fast"])


def assert_one_line_failure(result, code: int, *words: str) -> None:
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    for word in words:
        assert word in result.output, result.output


@pytest.mark.parametrize("case", list(IMAGE_CASES))
def test_bad_scan_is_named_and_the_rest_is_scored(case: str, tiny_bundle: Path, tmp_path: Path) -> None:
    layout, damage, words = IMAGE_CASES[case]
    folder = good_folder(tmp_path / "scans", layout)
    bad = damage(folder)
    result = detect(str(folder), "--model", str(tiny_bundle), "--out", str(tmp_path / "out"))
    assert_one_line_failure(result, 2, bad.name, words)
    records = saved_records(tmp_path / "out")
    assert len(records) == GOOD - (layout == "seed")  # a damaged pair takes a good scan's place
    assert not (folder / "SENTINEL").exists()


def test_unicode_paths_duplicate_ids_and_a_huge_image(tiny_bundle: Path, tmp_path: Path) -> None:
    a, b = good_folder(tmp_path / "prüfung ß 測試" / "a"), good_folder(tmp_path / "prüfung ß 測試" / "b")
    big = mm_scan("huge", size=64)
    rgb = cv2.resize(big.rgb, (4000, 3000), interpolation=cv2.INTER_NEAREST)
    depth = cv2.resize(big.depth, (4000, 3000), interpolation=cv2.INTER_NEAREST)
    write_scan(type(big)("huge", rgb, depth, "mm"), tmp_path / "big", "npz")
    out = tmp_path / "out ü"
    result = detect(str(a), str(b), str(tmp_path / "big"), "--model", str(tiny_bundle), "--out", str(out))
    assert result.exit_code == 0 and "Traceback" not in result.output, result.output
    said = " ".join(result.output.split())
    assert said.count("note: 4000x3000 scans") == 1 and "resized to 64x64: scale x" in said  # once, with the factor
    records = saved_records(out)
    assert len(records) == 2 * GOOD + 1
    assert len({r["map"] for r in records}) == len(records)  # the same id twice gets two panels
    assert all((out / r["map"]).is_file() for r in records)


@pytest.mark.parametrize("victim", ["generator.pt", "critic.pt", "encoder.pt", "segmenter.pt", "model.json"])
def test_malicious_pickle_in_a_bundle_runs_nothing(victim: str, tiny_bundle: Path, tmp_path: Path) -> None:
    bundle, sentinel = tmp_path / "bundle", tmp_path / "SENTINEL"
    shutil.copytree(tiny_bundle, bundle)
    malicious_pickle(bundle / victim, sentinel)
    result = detect(str(good_folder(tmp_path / "scans")), "--model", str(bundle), "--out", str(tmp_path / "o"))
    assert_one_line_failure(result, 2, victim)
    assert not sentinel.exists()


def test_a_broken_bundle_among_several_is_skipped(tiny_bundle: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_bundle, tmp_path / "models" / "good")
    shutil.copytree(tiny_bundle, tmp_path / "models" / "broken")
    (tmp_path / "models" / "broken" / "critic.pt").write_bytes(b"junk")
    result = detect(
        str(good_folder(tmp_path / "scans")), "--models", str(tmp_path / "models"), "--out", str(tmp_path / "o")
    )
    assert result.exit_code == 0 and "broken" in result.output and "critic.pt" in result.output
    assert len(saved_records(tmp_path / "o")) == GOOD


def test_output_that_exists_or_is_not_a_folder(tiny_bundle: Path, tmp_path: Path) -> None:
    scans = str(good_folder(tmp_path / "scans"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    assert_one_line_failure(
        detect(scans, "--model", str(tiny_bundle), "--out", str(tmp_path / "full")), 2, "use --force"
    )
    assert (tmp_path / "full" / "keep.txt").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    assert_one_line_failure(
        detect(scans, "--model", str(tiny_bundle), "--out", str(tmp_path / "file" / "run")), 2, str(tmp_path / "file")
    )


@pytest.fixture
def tmpfs(tmp_path: Path):
    """Mount a small tmpfs (needs root in a container that allows it); yields mount(options)."""
    mounted: list[Path] = []

    def mount(options: str) -> Path:
        point = tmp_path / f"mnt{len(mounted)}"
        point.mkdir()
        if (
            subprocess.run(["mount", "-t", "tmpfs", "-o", options, "none", str(point)], capture_output=True).returncode
            != 0
        ):
            pytest.skip("cannot mount a tmpfs here (not root or no CAP_SYS_ADMIN)")
        mounted.append(point)
        return point

    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], capture_output=True)


def test_read_only_output_is_found_before_scoring(tiny_bundle: Path, tmp_path: Path, tmpfs, monkeypatch) -> None:
    scored = []
    monkeypatch.setattr(Detector, "score", lambda self, scans: scored.append(scans) or pytest.fail("scored"))
    read_only = tmpfs("ro,size=1m")
    result = detect(str(good_folder(tmp_path / "scans")), "--model", str(tiny_bundle), "--out", str(read_only))
    assert_one_line_failure(result, 2, str(read_only), "read-only file system")
    assert not scored


def test_disk_full_mid_run_keeps_valid_results(tiny_bundle: Path, tmp_path: Path, tmpfs) -> None:
    small = tmpfs("size=1m")  # panels are about 100 kB each: room for 2-3 batches of 4
    folder = good_folder(tmp_path / "scans")
    for i in range(GOOD, 40):
        write_scan(make_scan(i), folder, "seed")
    result = detect(str(folder), "--model", str(tiny_bundle), "--out", str(small / "run"), "--batch-size", "4")
    assert_one_line_failure(result, 2, "no space left on the device")
    kept = json.loads((small / "run" / "run.json").read_text())  # complete JSON, earlier batches
    assert 0 < kept["scans"] < 40


@pytest.mark.parametrize("stop_on_call, kept", [(1, 0), (2, 4)])
def test_interrupted_detection_keeps_what_was_scored(
    tiny_bundle: Path, tmp_path: Path, monkeypatch, stop_on_call: int, kept: int
) -> None:
    real, calls = Detector.score, []

    def score(self, scans):
        calls.append(1)
        if len(calls) == stop_on_call:
            raise KeyboardInterrupt
        return real(self, scans)

    monkeypatch.setattr(Detector, "score", score)
    folder = good_folder(tmp_path / "scans")
    for i in range(GOOD, 8):
        write_scan(make_scan(i), folder, "seed")
    result = detect(str(folder), "--model", str(tiny_bundle), "--out", str(tmp_path / "o"), "--batch-size", "4")
    assert result.exit_code == 130 and "partial" in result.output and "Traceback" not in result.output
    saved = json.loads((tmp_path / "o" / "run.json").read_text())
    assert saved["partial"] and saved["scans"] == kept
    assert "Partial run" in (tmp_path / "o" / "report.html").read_text()


def test_view_refuses_an_extension_it_cannot_write(tmp_path: Path) -> None:
    scan = write_scan(make_scan(0), tmp_path, "npz")
    assert_one_line_failure(
        runner.invoke(app, ["view", str(scan), "--out", str(tmp_path / "x.txt")]), 2, "x.txt", ".ply or .pcd"
    )


def test_missing_libusb_is_one_line(tmp_path: Path, monkeypatch) -> None:
    def no_libusb(name: str):
        raise ImportError("libusb-1.0.so.0: cannot open shared object file: No such file or directory")

    monkeypatch.setattr("anomaly_gan.deps.importlib.import_module", no_libusb)
    result = runner.invoke(app, ["synth", str(tmp_path / "s"), "--count", "20"])
    assert_one_line_failure(result, 2, "libusb-1.0", "apt-get install -y libusb-1.0-0")
    result = runner.invoke(
        app, ["view", str(write_scan(make_scan(0), tmp_path, "npz")), "--out", str(tmp_path / "c.ply")]
    )
    assert_one_line_failure(result, 2, "libusb-1.0")


# Training: checkpoints, resume, interrupts.


def interrupted_run(tmp_path: Path) -> Path:
    """A training stopped at GAN step 4 with a checkpoint; returns the checkpoint."""
    write_class(tmp_path / "data")
    config = tiny_config(tmp_path)

    def stop_at_4(phase: str, total: int, row: dict) -> None:
        if phase == "gan" and row["step"] == 4:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        train(config, stop_at_4)
    return config.bundle_dir / "checkpoint.pt"


@pytest.mark.parametrize(
    "damage, words",
    [
        ("pickle", "refused (it would call posix.system)"),
        ("no key", "incomplete checkpoint (no 'ema')"),
        ("garbage", "refused (not a checkpoint file)"),
        ("zero bytes", "unreadable checkpoint"),
        ("step a string", "damaged checkpoint (step not as written: Input should be a valid integer)"),
        ("extra a list", "damaged checkpoint (extra not as written: Input should be a valid dictionary)"),
        ("models emptied", "does not fit this run's networks"),
    ],
)
def test_resume_refuses_a_bad_checkpoint_without_running_it(tmp_path: Path, damage: str, words: str) -> None:
    checkpoint = interrupted_run(tmp_path)
    sentinel = tmp_path / "SENTINEL"
    if damage == "pickle":
        torch.save({"models": Payload(sentinel)}, checkpoint)
    elif damage == "zero bytes":
        checkpoint.write_bytes(b"")
    elif damage != "garbage":
        payload = torch.load(checkpoint, weights_only=True)
        {
            "no key": lambda: payload.pop("ema"),
            "step a string": lambda: payload.update(step="7"),
            "extra a list": lambda: payload.update(extra=[1]),
            "models emptied": lambda: payload["models"].update(generator={}),
        }[damage]()
        torch.save(payload, checkpoint)
    else:
        checkpoint.write_bytes(b"\x00" * 100)
    result = runner.invoke(
        app,
        [
            "train",
            "--shape",
            "sphere",
            "--data",
            str(tmp_path / "data"),
            "--out",
            str(tmp_path / "models"),
            "--steps",
            "12",
            "--encoder-steps",
            "6",
            "--width",
            "4",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--resume",
        ],
    )
    assert_one_line_failure(result, 2, "checkpoint.pt", words)
    assert not sentinel.exists()


def test_resume_without_a_checkpoint(tmp_path: Path) -> None:
    write_class(tmp_path / "data")
    assert_one_line_failure(cli_train(tmp_path, "--resume"), 2, "no checkpoint to resume from")


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_bundle(folder).generator.state_dict()


def assert_same_bundle(a: Path, b: Path) -> None:
    def gan_rows(folder: Path) -> list:
        rows = [json.loads(line) for line in (folder / "train_log.jsonl").read_text().splitlines()]
        return [
            (r["phase"], r["step"], r.get("d_loss"), r.get("g_loss"), r.get("e_loss"))
            for r in rows
            if r["phase"] != "head"
        ]

    assert gan_rows(a) == gan_rows(b)
    for key, value in weights(a).items():
        torch.testing.assert_close(value, weights(b)[key], rtol=0, atol=0)


def test_signal_mid_step_stops_at_the_boundary_and_resumes_exactly(tmp_path: Path, monkeypatch) -> None:
    write_class(tmp_path / "data")
    straight = train(tiny_config(tmp_path, out=tmp_path / "a"), lambda *a: None).path
    import anomaly_gan.train.trainer as trainer

    real, calls = trainer.diff_augment, []

    def augment_then_signal(x):  # runs inside a GAN step: the signal lands mid-step
        calls.append(1)
        if len(calls) == 17:  # SIGTERM: background jobs (CI) ignore SIGINT, and so does the run then
            os.kill(os.getpid(), signal.SIGTERM)
        return real(x)

    monkeypatch.setattr(trainer, "diff_augment", augment_then_signal)
    config = tiny_config(tmp_path, out=tmp_path / "b")
    steps_seen = []
    with pytest.raises(TrainingInterrupted, match="checkpoint saved"):
        train(config, lambda phase, total, row: steps_seen.append(row.get("step")))
    assert 1 < steps_seen[-1] < config.total_steps  # stopped after finishing the step it was in
    monkeypatch.setattr(trainer, "diff_augment", real)
    resumed = train(config, lambda *a: None, resume=True).path
    assert_same_bundle(straight, resumed)


def test_second_signal_stops_at_once() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with stop_at_step_boundary() as check:
        check()
        os.kill(os.getpid(), signal.SIGTERM)
        with pytest.raises(StopNow):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.1)
        with pytest.raises(KeyboardInterrupt):
            check()
    assert signal.getsignal(signal.SIGTERM) is before


def test_an_ignored_signal_stays_ignored() -> None:
    before = signal.signal(signal.SIGINT, signal.SIG_IGN)  # as under nohup
    try:
        with stop_at_step_boundary() as check:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
            check()  # nothing pending
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)


KILLED_RUN = """
import sys
from pathlib import Path
from tests.conftest import tiny_config
from anomaly_gan.train.run import train
tmp = Path(sys.argv[1])
train(tiny_config(tmp, out=tmp / "b", steps=150, checkpoint_every=5), lambda *a: None)
"""


def test_kill_9_mid_run_then_resume_to_the_end(tmp_path: Path) -> None:
    write_class(tmp_path / "data")
    config = tiny_config(tmp_path, out=tmp_path / "b", steps=150, checkpoint_every=5)
    child = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(tmp_path)], cwd=Path(__file__).resolve().parents[1])
    checkpoint, deadline = config.bundle_dir / "checkpoint.pt", time.monotonic() + 120
    while not checkpoint.exists() and child.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    child.kill()
    child.wait()
    assert checkpoint.exists() and not (config.bundle_dir / "model.json").exists(), "killed too late"
    resumed = train(config, lambda *a: None, resume=True).path
    straight = train(tiny_config(tmp_path, out=tmp_path / "a", steps=150, checkpoint_every=5), lambda *a: None).path
    assert_same_bundle(straight, resumed)


def test_interrupt_during_calibration_says_resume_continues(tmp_path: Path) -> None:
    write_class(tmp_path / "data")
    config = tiny_config(tmp_path)

    def stop_in_calibration(phase: str, total: int, row: dict) -> None:
        if phase == "calibrate":
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="saved in .*checkpoint.pt"):
        train(config, stop_in_calibration)
    assert train(config, lambda *a: None, resume=True).path == config.bundle_dir


@pytest.mark.parametrize(
    "name, content",
    [
        ("run.json", b'{"models": 3}'),
        ("run.json", b"\x80\x04junk"),
        ("results.jsonl", b'{"scan": 1}\n'),
        ("metrics.json", b"{not json"),
    ],
)
def test_report_from_a_damaged_results_folder(tiny_bundle: Path, tmp_path: Path, name: str, content: bytes) -> None:
    assert (
        detect(
            str(good_folder(tmp_path / "scans")), "--model", str(tiny_bundle), "--out", str(tmp_path / "o")
        ).exit_code
        == 0
    )
    (tmp_path / "o" / name).write_bytes(content)
    assert_one_line_failure(runner.invoke(app, ["report", str(tmp_path / "o")]), 2, name, "not a")


def test_a_jpeg_libjpeg_calls_corrupt_is_named_with_libjpegs_words(tmp_path: Path) -> None:
    ok, buf = cv2.imencode(".jpg", (np.random.default_rng(0).random((128, 128, 3)) * 255).astype(np.uint8))
    data = bytearray(buf.tobytes())
    data[1500:1900] = bytes([0xFF, 0xD0]) * 200  # restart markers in the middle of the picture data
    folder = good_folder(tmp_path)
    (folder / "RGB_Final" / "00001.png").unlink()
    (folder / "RGB_Final" / "00001.jpg").write_bytes(bytes(data))
    result = runner.invoke(app, ["info", str(folder)])
    assert "00001.jpg: damaged JPEG (libjpeg: Corrupt JPEG data" in " ".join(result.output.split())
    assert "Traceback" not in result.output
