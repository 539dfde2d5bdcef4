"""The fault matrix: every verb given wrong numbers, names, paths and files as a careless or hostile
user would. Each case asserts the exit code, one line naming what is wrong, no traceback, and that
nothing given as input changed. The cases that need scans scored or a model trained live beside
this module (test_faults, test_nothing_lost, test_bad_input, test_schema); this one holds the
cases that are refused before any work, and property-based fuzzing of the results files that
`report` reads back."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from anomaly_gan.cli import app
from anomaly_gan.fsutil import atomic_write_json
from anomaly_gan.report.records import RECORDS, RUN, ModelUsed, Record, Results
from tests.conftest import write_class
from tests.test_faults import good_folder

runner = CliRunner()


def fingerprint(root: Path) -> dict[str, str]:
    """Every file under `root` and a digest of its bytes: what 'nothing changed' means."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def results_folder(folder: Path, records: list[dict] | None = None, run: dict | None = None) -> Path:
    """A results folder as detect writes it, without scoring anything."""
    folder.mkdir(parents=True, exist_ok=True)
    model = ModelUsed(
        "models/sphere-gan", "sphere", "gan", 2.0, "calibrated: 1% of held-out good scans", [0.1, 0.5, 1.9]
    )
    good = Record(
        "scans/a.png",
        "a",
        "good",
        "sphere",
        "sphere-gan",
        "fast",
        0.7,
        2.0,
        False,
        {"colour": 0.2, "head": 0.1},
        None,
        None,
        None,
        {"head": 0.4},
    )
    bad = Record(
        "scans/b.png",
        "b",
        "dent",
        "sphere",
        "sphere-gan",
        "fast",
        3.1,
        2.0,
        True,
        {"colour": 0.9, "head": 0.8},
        None,
        None,
        None,
        {"head": 2.5},
    )
    records = records if records is not None else [good.to_dict(), bad.to_dict()]
    run = run if run is not None else Results([model], "fast", scans=len(records), anomalous=1, partial=False).to_dict()
    atomic_write_json(folder / RUN, run)
    (folder / RECORDS).write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return folder


# name -> (argv(tmp) -> the command line, the exit code, words the message holds)
Case = tuple[Callable[[Path], list[str]], int, str]


def _scans(tmp: Path) -> str:
    return str(good_folder(tmp / "scans"))


def _empty(tmp: Path) -> str:
    (tmp / "empty").mkdir(exist_ok=True)
    return str(tmp / "empty")


def _file(tmp: Path, name: str = "a-file.txt") -> str:
    (tmp / name).write_text("not a folder")
    return str(tmp / name)


def _bundle_dir(tmp: Path, meta: object) -> str:
    folder = tmp / "models" / "sphere-gan"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.json").write_text(meta if isinstance(meta, str) else json.dumps(meta))
    return str(folder)


def _train(*extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["train", "--shape", "sphere", "--data", _scans(tmp), "--out", str(tmp / "out"), *extra]


def _detect(*extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["detect", _scans(tmp), "--model", _bundle_dir(tmp, "{}"), "--out", str(tmp / "o"), *extra]


def _preprocess(*extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["preprocess", _scans(tmp), str(tmp / "pre"), *extra]


def _synth(*extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["synth", str(tmp / "syn"), "--count", "2", *extra]


CASES: dict[str, Case] = {
    # train: numbers, names, choices and paths
    "train --far nan": (_train("--far", "nan"), 2, "--far"),
    "train --far inf": (_train("--far", "inf"), 2, "--far"),
    "train --far 0.9": (_train("--far", "0.9"), 2, "--far"),
    "train --far -0.1": (_train("--far", "-0.1"), 2, "--far"),
    "train --steps 0": (_train("--steps", "0"), 2, "--steps"),
    "train --steps -5": (_train("--steps", "-5"), 2, "--steps"),
    "train --steps text": (_train("--steps", "many"), 2, "--steps"),
    "train --encoder-steps 0": (_train("--encoder-steps", "0"), 2, "--encoder-steps"),
    "train --head-steps 0": (_train("--head-steps", "0"), 2, "--head-steps"),
    "train --batch-size 1": (_train("--batch-size", "1"), 2, "--batch-size"),
    "train --width 2": (_train("--width", "2"), 2, "--width"),
    "train --ema 1": (_train("--ema", "1"), 2, "--ema"),
    "train --lr-g -1": (_train("--lr-g", "-1"), 2, "--lr-g"),
    "train --n-critic 0": (_train("--n-critic", "0"), 2, "--n-critic"),
    "train --image-size 48": (_train("--image-size", "48"), 2, "--image-size 48: choose one of"),
    "train --image-size 100000": (_train("--image-size", "100000"), 2, "--image-size 100000"),
    "train --channels rgbx": (_train("--channels", "rgbx"), 2, "--channels rgbx: choose one of"),
    "train --precision fp16": (_train("--precision", "fp16"), 2, "--precision fp16: choose one of"),
    "train --objective best": (_train("--objective", "best"), 2, "best"),
    "train --shape ../../evil": (lambda t: ["train", "--shape", "../../evil", "--data", _scans(t)], 2, "plain name"),
    "train --shape a/b": (lambda t: ["train", "--shape", "a/b", "--data", _scans(t)], 2, "plain name"),
    "train --shape ..": (lambda t: ["train", "--shape", "..", "--data", _scans(t)], 2, "plain name"),
    "train --shape empty": (lambda t: ["train", "--shape", "", "--data", _scans(t)], 2, "plain name"),
    "train --shape -x": (lambda t: ["train", "--shape", "-x", "--data", _scans(t)], 2, "plain name"),
    "train --data missing": (
        lambda t: ["train", "--shape", "sphere", "--data", str(t / "nope")],
        2,
        "no such file or folder",
    ),
    "train --resume and no checkpoint": (_train("--resume"), 2, "checkpoint"),
    "train --resume --force": (_train("--resume", "--force"), 2, "no checkpoint to resume from"),
    # detect: numbers, choices, slices, paths and bundles
    "detect --threshold nan": (_detect("--threshold", "nan"), 2, "not a finite number"),
    "detect --threshold inf": (_detect("--threshold", "inf"), 2, "not a finite number"),
    "detect --threshold -inf": (_detect("--threshold", "-inf"), 2, "not a finite number"),
    "detect --far nan": (_detect("--far", "nan"), 2, "--far"),
    "detect --far 0.7": (_detect("--far", "0.7"), 2, "--far"),
    "detect --threshold and --far": (_detect("--threshold", "1", "--far", "0.1"), 2, "not both"),
    "detect --panels some": (_detect("--panels", "some"), 2, "--panels some: choose one of"),
    "detect --mode slow": (_detect("--mode", "slow"), 2, "--mode slow: choose one of"),
    "detect --batch-size 0": (_detect("--batch-size", "0"), 2, "--batch-size"),
    "detect --report-top -1": (_detect("--report-top", "-1"), 2, "--report-top"),
    "detect --shard 3/2": (_detect("--shard", "3/2"), 2, "I must be 0 to N-1"),
    "detect --shard 0/0": (_detect("--shard", "0/0"), 2, "I must be 0 to N-1"),
    "detect --shard x": (_detect("--shard", "x"), 2, "expected I/N"),
    "detect --shard -1/2": (_detect("--shard", "-1/2"), 2, "I must be 0 to N-1"),
    "detect --resume without --out": (lambda t: ["detect", _scans(t), "--resume"], 2, "give --out"),
    "detect --resume --force": (_detect("--resume", "--force"), 2, "not --force"),
    "detect a missing folder": (lambda t: ["detect", str(t / "nope"), "--model", _bundle_dir(t, "{}")], 2, "nope"),
    "detect an empty folder": (lambda t: ["detect", _empty(t), "--model", _bundle_dir(t, "{}")], 2, "empty"),
    "detect a text file": (lambda t: ["detect", _file(t), "--model", _bundle_dir(t, "{}")], 2, "a-file.txt"),
    "detect --model missing": (lambda t: ["detect", _scans(t), "--model", str(t / "nope")], 2, "not a model bundle"),
    "detect --model a file": (lambda t: ["detect", _scans(t), "--model", _file(t)], 2, "a-file.txt"),
    "detect --models empty": (lambda t: ["detect", _scans(t), "--models", _empty(t)], 2, "no trained model bundle"),
    "detect model.json not JSON": (
        lambda t: ["detect", _scans(t), "--model", _bundle_dir(t, "{oops")],
        2,
        "model.json",
    ),
    "detect model.json a list": (lambda t: ["detect", _scans(t), "--model", _bundle_dir(t, [1, 2])], 2, "model.json"),
    "detect model.json empty": (lambda t: ["detect", _scans(t), "--model", _bundle_dir(t, "")], 2, "model.json"),
    "detect model.json binary": (
        lambda t: ["detect", _scans(t), "--model", _bundle_dir(t, "\x80\x04\x95")],
        2,
        "model.json",
    ),
    "detect model.json of another tool": (
        lambda t: ["detect", _scans(t), "--model", _bundle_dir(t, {"format": "other"})],
        2,
        "model.json",
    ),
    # preprocess: numbers and paths (refused before open3d loads)
    "preprocess --size 0": (_preprocess("--size", "0"), 2, "--size 0: choose 8 to 1024"),
    "preprocess --size -3": (_preprocess("--size", "-3"), 2, "--size -3: choose 8 to 1024"),
    "preprocess --size 100000": (_preprocess("--size", "100000"), 2, "--size 100000: choose 8 to 1024"),
    "preprocess --margin nan": (_preprocess("--margin", "nan"), 2, "not a finite number"),
    "preprocess --margin -5": (_preprocess("--margin", "-5"), 2, "--margin -5: choose 0 to 4"),
    "preprocess --margin 9": (_preprocess("--margin", "9"), 2, "--margin 9: choose 0 to 4"),
    "preprocess --near nan": (_preprocess("--near", "nan"), 2, "not a finite number"),
    "preprocess --far inf": (_preprocess("--far", "inf"), 2, "not a finite number"),
    "preprocess --near = --far": (_preprocess("--near", "500", "--far", "500"), 2, "need 0 <= near < far"),
    "preprocess --near > --far": (_preprocess("--near", "900", "--far", "500"), 2, "need 0 <= near < far"),
    "preprocess --near -1": (_preprocess("--near", "-1"), 2, "need 0 <= near < far"),
    "preprocess --intrinsics 1,2": (_preprocess("--intrinsics", "1,2"), 2, "--intrinsics"),
    "preprocess --intrinsics text": (_preprocess("--intrinsics", "a,b,c,d,e,f"), 2, "--intrinsics"),
    "preprocess a missing folder": (lambda t: ["preprocess", str(t / "nope"), str(t / "pre")], 2, "nope"),
    "preprocess OUT = RAW": (lambda t: ["preprocess", _scans(t), str(t / "scans"), "--force"], 2, "input"),
    "preprocess OUT holding RAW": (lambda t: ["preprocess", _scans(t), str(t), "--force"], 2, "holds the input"),
    # synth
    "synth --count 0": (_synth("--count", "0"), 2, "--count"),
    "synth --size 4": (_synth("--size", "4"), 2, "--size"),
    "synth --size 5000": (_synth("--size", "5000"), 2, "--size"),
    "synth --shape cube": (_synth("--shape", "cube"), 2, "unknown shape 'cube'"),
    "synth --defects paint": (_synth("--defects", "paint"), 2, "--defects paint: choose from"),
    "synth --defect-rate 2": (_synth("--defect-rate", "2"), 2, "--defect-rate"),
    "synth --defect-rate nan": (_synth("--defect-rate", "nan"), 2, "--defect-rate"),
    "synth --from missing": (lambda t: ["synth", str(t / "syn"), "--from", str(t / "nope")], 2, "nope"),
    "synth --from OUT": (lambda t: ["synth", str(t / "scans"), "--from", _scans(t), "--force"], 2, "input"),
    "synth over a file": (lambda t: ["synth", _file(t), "--count", "2"], 2, "a-file.txt"),
    # info, view, report, merge, evaluate, retrain-head
    "info a missing folder": (lambda t: ["info", str(t / "nope")], 2, "nope"),
    "info an empty folder": (lambda t: ["info", _empty(t)], 2, "empty"),
    "view a missing scan": (lambda t: ["view", str(t / "nope.png"), "--out", str(t / "x.ply")], 2, "nope.png"),
    "view to .obj": (lambda t: ["view", _scans(t) + "/RGB_Final/00000.png", "--out", str(t / "x.obj")], 2, ".obj"),
    "view --model missing": (
        lambda t: ["view", _scans(t) + "/RGB_Final/00000.png", "--out", str(t / "x.ply"), "--model", str(t / "nope")],
        2,
        "not a model bundle",
    ),
    "report a missing folder": (lambda t: ["report", str(t / "nope")], 2, "nope"),
    "report a folder without run.json": (lambda t: ["report", _empty(t)], 2, "no run.json"),
    "report --report-top -1": (
        lambda t: ["report", str(results_folder(t / "r")), "--report-top", "-1"],
        2,
        "--report-top",
    ),
    "merge one missing shard": (
        lambda t: ["merge", str(t / "m"), str(results_folder(t / "s0")), str(t / "s1")],
        2,
        "s1",
    ),
    "merge a folder that is no shard": (
        lambda t: ["merge", str(t / "m"), str(results_folder(t / "s0")), str(results_folder(t / "s1"))],
        2,
        "shard",
    ),
    "merge into one of its shards": (
        lambda t: ["merge", str(results_folder(t / "s0")), str(t / "s0"), "--force"],
        2,
        "s0",
    ),
    "evaluate without scans": (lambda t: ["evaluate", "--model", _bundle_dir(t, "{}")], 2, "give ROOT"),
    "evaluate --normal only": (
        lambda t: ["evaluate", "--model", _bundle_dir(t, "{}"), "--normal", _scans(t)],
        2,
        "give ROOT",
    ),
    "evaluate no anomalous scans": (
        lambda t: ["evaluate", "--model", _bundle_dir(t, "{}"), _scans(t)],
        2,
        "no anomalous scans",
    ),
    "evaluate --normal-class unknown": (
        lambda t: ["evaluate", "--model", _bundle_dir(t, "{}"), str(t), "--normal-class", "cube"],
        2,
        "no class 'cube'",
    ),
    "evaluate --model missing": (
        lambda t: ["evaluate", "--model", str(t / "nope"), "--normal", _scans(t), "--anomalous", _scans(t)],
        2,
        "not a model bundle",
    ),
    "evaluate --far nan": (
        lambda t: ["evaluate", "--model", _bundle_dir(t, "{}"), _scans(t), "--far", "nan"],
        2,
        "--far",
    ),
    "retrain-head a missing bundle": (lambda t: ["retrain-head", str(t / "nope"), "--force"], 2, "not a model bundle"),
    "retrain-head a broken bundle": (lambda t: ["retrain-head", _bundle_dir(t, "{}"), "--force"], 2, "model.json"),
    "retrain-head --head-steps 0": (
        lambda t: ["retrain-head", _bundle_dir(t, "{}"), "--head-steps", "0"],
        2,
        "--head-steps",
    ),
    "unknown verb": (lambda t: ["inspect", _scans(t)], 2, "inspect"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_refused_in_one_line_and_nothing_changed(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # anything a case would write by default lands here, not in the project
    argv_of, code, words = CASES[case]
    argv = argv_of(tmp_path)
    before = fingerprint(tmp_path)
    result = runner.invoke(app, argv)
    assert result.exit_code == code, f"{case}: exit {result.exit_code}\n{result.output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{case}: {result.exception!r}"
    assert "Traceback" not in result.output
    assert words in " ".join(result.output.split()), f"{case}: {result.output}"
    after = fingerprint(tmp_path)
    assert {k: v for k, v in after.items() if k in before} == before, f"{case}: an input changed"


def test_the_matrix_is_large() -> None:
    assert len(CASES) >= 100


# report on results files changed one field at a time: exit 0 or 2, never a traceback
FIELD_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=3), st.floats(), max_size=2),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_report_on_a_tampered_record_or_run_says_so_or_renders(data: st.DataObject, tmp_path_factory) -> None:
    folder = results_folder(tmp_path_factory.mktemp("results"))
    target = data.draw(st.sampled_from([RUN, RECORDS]))
    if target == RUN:
        run = json.loads((folder / RUN).read_text())
        key = data.draw(st.sampled_from(sorted(run)))
        run[key] = data.draw(FIELD_VALUES)
        (folder / RUN).write_text(json.dumps(run))
    else:
        record = json.loads((folder / RECORDS).read_text().splitlines()[1])
        key = data.draw(st.sampled_from(sorted(record)))
        record[key] = data.draw(FIELD_VALUES)
        (folder / RECORDS).write_text(json.dumps(record) + "\n")
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code in (0, 2), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    if result.exit_code == 2:
        assert target in result.output


def test_a_results_folder_written_by_hand_renders(tmp_path: Path) -> None:
    """The matrix's own results folder is one `report` accepts, so the refusals above mean something."""
    folder = results_folder(tmp_path / "r")
    result = runner.invoke(app, ["report", str(folder)])
    assert result.exit_code == 0, result.output
    assert (folder / "report.html").exists() and os.path.getsize(folder / "report.html") > 1000


@pytest.mark.parametrize(
    "field, value", [("score", "high"), ("threshold", None), ("anomalous", "yes"), ("colour", [1, 2])]
)
def test_merge_of_a_tampered_shard_writes_nothing(field: str, value: object, tmp_path: Path) -> None:
    """Every shard's records are read and checked before OUT is made, so a tampered value stops the
    merge with one line naming the file and line, and no half-written OUT is left."""
    shards = []
    for index in range(2):
        folder = results_folder(tmp_path / f"s{index}")
        run = json.loads((folder / RUN).read_text())
        run["shard"] = {"index": index, "count": 2, "discovered": 4, "inputs": "abc"}
        (folder / RUN).write_text(json.dumps(run))
        records = [json.loads(line) for line in (folder / RECORDS).read_text().splitlines()]
        for record in records:
            record["scan"] = f"s{index}/{record['scan']}"
        (folder / RECORDS).write_text("".join(json.dumps(r) + "\n" for r in records))
        shards.append(str(folder))
    assert runner.invoke(app, ["merge", str(tmp_path / "ok"), *shards]).exit_code == 0
    lines = (tmp_path / "s1" / RECORDS).read_text().splitlines()
    lines[1] = json.dumps(json.loads(lines[1]) | {field: value})
    (tmp_path / "s1" / RECORDS).write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["merge", str(tmp_path / "out"), *shards])
    assert result.exit_code == 2 and f"{RECORDS}:2" in result.output and field in result.output, result.output
    assert not (tmp_path / "out").exists()


def test_train_names_a_skipped_scan_and_exits_2_with_its_bundle_written(tmp_path: Path) -> None:
    data = write_class(tmp_path / "data")
    orphan = next((data / "sphere").rglob("RGB_Final")) / "99999.png"
    orphan.write_bytes(b"a colour image without its depth partner")
    result = runner.invoke(
        app,
        ["train", "--shape", "sphere", "--data", str(data), "--out", str(tmp_path / "models"), "--steps", "4",
         "--encoder-steps", "2", "--head-steps", "2", "--width", "4", "--batch-size", "8", "--device", "cpu"],
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "99999.png" in result.output and "1 input file(s) skipped" in " ".join(result.output.split())
    assert (tmp_path / "models" / "sphere-gan" / "model.json").exists()
