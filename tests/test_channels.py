"""Colour-only and depth-only models, plain image folders, the digits writer, 32- and 128-pixel
networks: trained for a few steps on synthetic scans, then detect and evaluate end to end."""

import json
import shutil
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from anomaly_gan.bundle.store import load_bundle
from anomaly_gan.cli import app
from anomaly_gan.data.defects import inject
from anomaly_gan.data.digits import write_digits
from anomaly_gan.data.layouts import find_scans, load_scan
from anomaly_gan.data.synth_sets import synthesise
from anomaly_gan.data.writers import write_scan
from anomaly_gan.detect.detector import Detector
from anomaly_gan.detect.judge import DetectOptions
from anomaly_gan.models.config import NetConfig
from anomaly_gan.models.dcgan import Critic, Encoder, Generator
from anomaly_gan.train.run import train
from tests.conftest import make_scan, saved_records, tiny_config, write_class

runner = CliRunner()
PARTNER = {"rgb": "Depth_Final", "depth": "RGB_Final"}  # removed from a seed folder to leave one kind


def keep_only(root: Path, channels: str) -> Path:
    """Turn every seed-layout folder under root into colour-only images or depth-only scans."""
    if channels in PARTNER:
        for folder in list(root.rglob(PARTNER[channels])):
            shutil.rmtree(folder)
    return root


def write_tree(root: Path, channels: str) -> Path:
    """test/good and test/dent, four scans each, in the seed layout, then reduced to `channels`."""
    rng = np.random.default_rng(0)
    for i in range(4):
        write_scan(make_scan(200 + i), root / "test" / "good", "seed")
        write_scan(
            inject(make_scan(300 + i), "dent" if channels == "depth" else "stain", rng),
            root / "test" / "defect",
            "seed",
        )
    return keep_only(root, channels)


@pytest.mark.parametrize("channels", ["rgbd", "rgb", "depth"])
def test_each_channel_mode_trains_detects_and_evaluates(channels: str, tmp_path: Path) -> None:
    keep_only(write_class(tmp_path / "data", count=40), channels)
    bundle = train(tiny_config(tmp_path), lambda *a: None)  # channels: what the scans hold
    meta = json.loads((bundle.path / "model.json").read_text())
    assert meta["network"]["inputs"] == channels
    assert meta["channels"] == {"rgbd": ["R", "G", "B", "D"], "rgb": ["R", "G", "B"], "depth": ["D"]}[channels]
    assert meta["network"]["channels"] == len(meta["channels"]) == meta["segmenter"]["channels"]
    with warnings.catch_warnings():  # torch's TorchScript deprecation: loaded as a user would, without our code
        warnings.simplefilter("ignore", FutureWarning)
        generator = torch.jit.load(bundle.path / "generator.pt")
    assert generator(torch.zeros(1, 8)).shape == (1, len(meta["channels"]), 64, 64)

    tree = write_tree(tmp_path / "tree", channels)
    out = tmp_path / "detect"
    said = runner.invoke(
        app,
        [
            "detect",
            str(tree),
            "--model",
            str(bundle.path),
            "--mode",
            "fast",
            "--save-maps",
            "--panels",
            "all",
            "--out",
            str(out),
        ],
    )
    assert said.exit_code == 0, said.output
    records = saved_records(out)
    assert len(records) == 8 and all((out / r["map"]).is_file() for r in records)
    maps = np.load(out / records[0]["map_npy"])
    assert maps.shape == (3, 64, 64)
    unseen = {"rgb": 2, "depth": 1}.get(channels)  # (combined, colour, depth): what the model cannot see is 0
    if unseen:
        assert not maps[unseen].any() and maps[3 - unseen].any()
        seen, hidden = ("colour", "depth") if unseen == 2 else ("depth", "colour")
        assert seen in records[0] and hidden not in records[0]  # components are record fields
    panel = cv2.imread(str(out / records[0]["map"]))
    assert panel.shape[1] == 192 * {"rgbd": 7, "rgb": 4, "depth": 4}[channels]  # tiles shown: what exists

    said = runner.invoke(
        app, ["evaluate", "--model", str(bundle.path), str(tree), "--mode", "fast", "--out", str(tmp_path / "eval")]
    )
    assert said.exit_code == 0, said.output
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert 0 <= metrics["auroc"] <= 1 and metrics["normal"] == 4 and metrics["anomalous"] == 4
    (tmp_path / "eval" / "report.html").unlink()
    assert runner.invoke(app, ["report", str(tmp_path / "eval")]).exit_code == 0
    page = (tmp_path / "eval" / "report.html").read_text()
    assert all(Path(r["scan"]).name in page for r in saved_records(tmp_path / "eval"))


def test_several_colour_only_bundles_pick_a_class_per_scan(tmp_path: Path) -> None:
    paths = list(write_digits(tmp_path / "all", size=16))
    for digit in ("0", "1"):
        (tmp_path / "data" / digit).mkdir(parents=True)
        for p in [p for p in paths if p.parent.name == digit][:40]:
            shutil.copy(p, tmp_path / "data" / digit / p.name)
        train(tiny_config(tmp_path, name=digit, image_size=32), lambda *a: None)
    said = runner.invoke(
        app,
        [
            "detect",
            str(tmp_path / "all" / "0"),
            str(tmp_path / "all" / "1"),
            "--models",
            str(tmp_path / "models"),
            "--mode",
            "fast",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert said.exit_code == 0, said.output
    records = saved_records(tmp_path / "o")
    assert len(records) == len([p for p in paths if p.parent.name in ("0", "1")])
    assert all(r["class"] in ("0", "1") and set(r["scores_by_class"]) == {"0", "1"} for r in records)


def test_rgb_on_rgbd_scans_ignores_their_depth(tmp_path: Path) -> None:
    write_class(tmp_path / "data", count=40)
    bundle = load_bundle(train(tiny_config(tmp_path, channels="rgb"), lambda *a: None).path)
    assert bundle.meta.network.inputs == "rgb" and bundle.meta.depth.unit != "none"  # depth still frames
    detector = Detector(bundle, DetectOptions("fast"), torch.device("cpu"))
    scan = make_scan(500)
    moved = make_scan(500)
    moved.depth = moved.depth + 3.0  # same object outline, other depth values
    a, b = detector.score([scan]), detector.score([moved])
    assert a.scores[0] == b.scores[0] and not a.scored.maps[0, 2].any()


def test_a_folder_of_lone_images_is_colour_only(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "imgs" / f"{i}.png"), np.full((20, 30), 40 * i, np.uint8))
    cv2.imwrite(
        str(tmp_path / "imgs" / "colour.jpg"),
        np.dstack([np.zeros((20, 30), np.uint8)] * 2 + [np.full((20, 30), 200, np.uint8)]),
    )
    found = find_scans(tmp_path / "imgs")
    assert found.layouts == {"image"} and len(found.refs) == 4
    scans = {r.id: load_scan(r) for r in found.refs}
    assert scans["1"].rgb.shape == (20, 30, 3) and scans["1"].grayscale and not scans["1"].has_depth
    assert (scans["colour"].rgb[..., 0] == 200).all() and not scans["colour"].grayscale  # BGR file, RGB scan


def test_mixed_folders_and_wrong_channels_are_refused_in_one_line(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    write_scan(make_scan(1), mixed / "pairs", "seed")
    cv2.imwrite(str(mixed / "lone.png"), np.zeros((8, 8), np.uint8))
    said = runner.invoke(app, ["detect", str(mixed), "--model", "nowhere"])
    assert said.exit_code == 2 and "mixes RGB-D scans (seed) with lone images (first:" in " ".join(said.output.split())

    keep_only(write_class(tmp_path / "data", count=40), "depth")
    depth_bundle = train(tiny_config(tmp_path), lambda *a: None).path
    colour_only = keep_only(write_tree(tmp_path / "colour", "rgb"), "rgb")
    said = runner.invoke(app, ["detect", str(colour_only), "--model", str(depth_bundle), "--out", str(tmp_path / "o")])
    assert said.exit_code == 2 and not (tmp_path / "o").exists()
    assert "has no depth, but model sphere-gan learned depth scans (and so has every scan given)" in " ".join(
        said.output.split()
    )

    said = runner.invoke(
        app,
        [
            "train",
            "--shape",
            "sphere",
            "--data",
            str(tmp_path / "data"),
            "--channels",
            "rgbd",
            "--out",
            str(tmp_path / "m"),
        ],
    )
    assert said.exit_code == 2 and "--channels rgbd, but these scans are depth only; train with --channels depth" in (
        " ".join(said.output.split())
    )


def test_a_grayscale_bundle_refuses_colour_scans_and_scores_the_rest(tmp_path: Path) -> None:
    data = tmp_path / "data" / "digit"
    paths = list(write_digits(tmp_path / "all", size=16))
    data.mkdir(parents=True)
    for p in paths[:40]:
        shutil.copy(p, data / f"{p.parent.name}_{p.name}")
    bundle = train(tiny_config(tmp_path, name="digit", image_size=32), lambda *a: None)
    assert bundle.meta.training.grayscale and bundle.meta.network.image_size == 32
    given = tmp_path / "given"
    given.mkdir()
    shutil.copy(paths[100], given / "grey.png")
    cv2.imwrite(
        str(given / "colour.png"),
        np.dstack([cv2.imread(str(paths[101]), cv2.IMREAD_GRAYSCALE)] * 3) * np.array([1, 0, 1], np.uint8),
    )
    said = runner.invoke(
        app, ["detect", str(given), "--model", str(bundle.path), "--mode", "fast", "--out", str(tmp_path / "o")]
    )
    assert said.exit_code == 2
    said = " ".join(said.output.split())
    assert "colour.png: is a colour image, but model digit-gan learned grayscale images" in said
    assert [Path(r["scan"]).name for r in saved_records(tmp_path / "o")] == ["grey.png"]


def test_the_digits_writer_writes_every_digit_as_a_grey_image_folder(tmp_path: Path) -> None:
    from sklearn.datasets import load_digits

    paths = list(write_digits(tmp_path, size=24))
    targets = load_digits().target
    assert len(paths) == len(targets) == 1797
    assert sorted(p.name for p in tmp_path.iterdir()) == [str(d) for d in range(10)]
    for d in range(10):
        assert len(list((tmp_path / str(d)).glob("*.png"))) == (targets == d).sum()
    image = cv2.imread(str(paths[0]), cv2.IMREAD_UNCHANGED)
    assert image.shape == (24, 24) and image.dtype == np.uint8 and image.max() > 200


@pytest.mark.parametrize("size", [32, 128])
def test_networks_follow_the_image_size(size: int) -> None:
    net = NetConfig(latent=8, width=4, image_size=size, channels=3, inputs="rgb")
    fake = Generator(net)(torch.randn(2, 8))
    assert fake.shape == (2, 3, size, size)
    score, _ = Critic(net)(fake)
    assert score.shape == (2,) and Encoder(net)(fake).shape == (2, 8)


def test_a_128_bundle_trains_on_128_scans_and_detects(tmp_path: Path) -> None:
    list(synthesise(tmp_path / "data" / "sphere", "sphere", 40, workers=1, size=128))
    assert load_scan(find_scans(tmp_path / "data" / "sphere").refs[0]).shape == (128, 128)
    bundle = train(tiny_config(tmp_path, image_size=128, steps=4, encoder_steps=2, head_steps=4), lambda *a: None)
    assert bundle.meta.network.image_size == 128
    said = runner.invoke(
        app,
        [
            "detect",
            str(tmp_path / "data" / "sphere" / "RGB_Final" / "00003.png"),
            "--model",
            str(bundle.path),
            "--mode",
            "fast",
            "--save-maps",
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert said.exit_code == 0, said.output
    (record,) = saved_records(tmp_path / "o")
    assert np.load(tmp_path / "o" / record["map_npy"]).shape == (3, 128, 128)
