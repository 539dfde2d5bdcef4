"""model.json is checked against its schema on load: a damaged or hand-edited field is one line
naming the file and the field (exit 2), never a traceback and never silently scored with."""

from __future__ import annotations

import copy
import json
import math
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from anomaly_gan.bundle.meta import BundleError, BundleMeta, read_meta
from anomaly_gan.cli import app
from tests.test_faults import assert_one_line_failure, good_folder

runner = CliRunner()


def _set(path: str, value):
    """A change to model.json: the field at dotted `path` set to `value` (a missing key: deleted)."""

    def change(meta: dict) -> None:
        *parents, last = path.split(".")
        for key in parents:
            meta = meta[key]
        if value is KeyError:
            del meta[last]
        else:
            meta[last] = value

    return change


# name -> (change, words the one-line message must hold)
CASES = {
    "network a list": (_set("network", [1, 2]), "network"),
    "calibration a list": (_set("calibration", []), "calibration"),
    "threshold a string": (_set("calibration.fast.threshold", "high"), "calibration.fast.threshold"),
    "threshold null": (_set("calibration.refine.threshold", None), "calibration.refine.threshold"),
    "threshold NaN": (_set("calibration.fast.threshold", math.nan), "finite number"),
    "threshold huge": (_set("calibration.fast.threshold", 1e300), "calibration.fast.threshold"),
    "weights a string": (
        _set("calibration.fast.findings.defect.weights", "1"),
        "calibration.fast.findings.defect.weights",
    ),
    "no findings": (_set("calibration.fast.findings", {}), "calibration.fast.findings"),
    "a finding's spread zero": (_set("calibration.fast.findings.part.std", 0.0), "calibration.fast.findings.part.std"),
    "mean missing": (_set("calibration.fast.mean", KeyError), "calibration.fast.mean"),
    "good scores a string": (_set("calibration.fast.good_scores", "0.1"), "calibration.fast.good_scores"),
    "zero spread": (_set("calibration.fast.std.colour", 0.0), "calibration.fast.std.colour"),
    "image size a string": (_set("network.image_size", "64"), "network.image_size"),
    "image size huge": (_set("network.image_size", 100000), "network.image_size"),
    "latent negative": (_set("network.latent", -3), "network.latent"),
    "equal depth bounds": (_set("normalisation.depth.far", None), "normalisation.depth.far"),
    "reversed depth bounds": (lambda m: m["normalisation"]["depth"].update(near=5.0, far=1.0), "near < far"),
    "unknown depth unit": (_set("normalisation.depth.unit", "furlongs"), "normalisation.depth.unit"),
    "bogus framing": (_set("framing.kind", "circle"), "framing.kind"),
    "negative margin": (_set("framing.margin", -5), "framing.margin"),
    "name with a slash": (_set("name", "../../evil"), "name"),
    "unknown objective": (_set("objective", "dcgan"), "objective"),
    "default mode without calibration": (lambda m: m["calibration"].pop("refine"), "default_mode"),
    "segmenter channels differ": (_set("segmenter.channels", 1), "segmenter"),
}


def _tampered(tiny_bundle: Path, folder: Path, change) -> Path:
    shutil.copytree(tiny_bundle, folder)
    meta = json.loads((folder / "model.json").read_text())
    change(meta)
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_field_is_one_line_naming_it(case: str, tiny_bundle: Path, tmp_path: Path) -> None:
    change, words = CASES[case]
    bundle = _tampered(tiny_bundle, tmp_path / "bundle", change)
    result = runner.invoke(
        app, ["detect", str(good_folder(tmp_path / "scans")), "--model", str(bundle), "--out", str(tmp_path / "o")]
    )
    assert_one_line_failure(result, 2, "model.json", words)
    assert not (tmp_path / "o").exists()


def test_a_nan_bundle_among_several_is_skipped_not_trusted(tiny_bundle: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_bundle, tmp_path / "models" / "good")
    _tampered(tiny_bundle, tmp_path / "models" / "nan", _set("calibration.refine.threshold", math.nan))
    result = runner.invoke(
        app,
        [
            "detect",
            str(good_folder(tmp_path / "scans")),
            "--models",
            str(tmp_path / "models"),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert result.exit_code == 0 and "finite number" in result.output, result.output
    records = [json.loads(line) for line in (tmp_path / "o" / "results.jsonl").read_text().splitlines()]
    assert {r["class"] for r in records} == {"sphere"} and all(math.isfinite(r["threshold"]) for r in records)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(10**6), 10**6) | st.floats() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _leaves(node, path=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _leaves(value, (*path, key))
    elif isinstance(node, list) and node:
        yield from _leaves(node[0], (*path, 0))
    yield path


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_field_replaced_by_any_json_loads_or_is_one_bundle_error(
    tiny_bundle: Path, tmp_path: Path, data: st.DataObject
) -> None:
    meta = json.loads((tiny_bundle / "model.json").read_text())
    paths = [p for p in _leaves(meta) if p]
    path = data.draw(st.sampled_from(paths))
    changed = copy.deepcopy(meta)
    node = changed
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = data.draw(JSON)
    folder = tmp_path / "fuzz"
    folder.mkdir(exist_ok=True)
    (folder / "model.json").write_text(json.dumps(changed))
    try:
        assert isinstance(read_meta(folder), BundleMeta)
    except BundleError as e:
        assert "\n" not in str(e) and "model.json" in str(e)


@pytest.mark.parametrize(
    "swap", [("critic.pt", "generator.pt"), ("encoder.pt", "critic.pt"), ("segmenter.pt", "encoder.pt")]
)
def test_a_network_file_in_anothers_place_is_named(swap: tuple[str, str], tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    shutil.copy(bundle / swap[1], bundle / swap[0])
    result = runner.invoke(
        app, ["detect", str(good_folder(tmp_path / "scans")), "--model", str(bundle), "--out", str(tmp_path / "o")]
    )
    assert_one_line_failure(result, 2, swap[0], "does not work as this bundle's")


def test_a_tampered_torchscript_zip_names_its_reason(tiny_bundle: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    shutil.copytree(tiny_bundle, bundle)
    data = (bundle / "encoder.pt").read_bytes()
    (bundle / "encoder.pt").write_bytes(data[:100] + b"\x00" * 64 + data[-100:])  # the zip's directory kept
    result = runner.invoke(
        app, ["detect", str(good_folder(tmp_path / "scans")), "--model", str(bundle), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "encoder.pt" in result.output and "()" not in result.output, result.output
