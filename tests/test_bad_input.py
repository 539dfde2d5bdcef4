"""Every kind of bad input gives one clear line naming the file; the rest of the batch goes on."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from anomaly_gan.cli import app
from anomaly_gan.data.layouts import find_scans, iter_scans, load_scan
from anomaly_gan.data.scan import ScanError
from anomaly_gan.data.writers import write_scan
from tests.conftest import make_scan

runner = CliRunner()


def seed_folder(tmp_path: Path, count: int = 3) -> Path:
    for i in range(count):
        write_scan(make_scan(i), tmp_path, "seed")
    return tmp_path


def load_error(tmp_path: Path, stem: str) -> str:
    ref = next(r for r in find_scans(tmp_path).refs if r.id == stem)
    with pytest.raises(ScanError) as info:
        load_scan(ref)
    return str(info.value)


def test_truncated_png(tmp_path: Path) -> None:
    seed_folder(tmp_path)
    colour = tmp_path / "RGB_Final" / "00001.png"
    colour.write_bytes(colour.read_bytes()[:200])
    assert "00001.png: truncated PNG" in load_error(tmp_path, "00001")


def test_truncated_jpeg(tmp_path: Path) -> None:
    seed_folder(tmp_path)
    ok, buf = cv2.imencode(".jpg", np.full((64, 64, 3), 128, np.uint8))
    (tmp_path / "RGB_Final" / "00001.png").unlink()
    (tmp_path / "RGB_Final" / "00001.jpg").write_bytes(buf.tobytes()[:-300])
    assert "00001.jpg: truncated JPEG" in load_error(tmp_path, "00001")


def test_corrupt_bytes(tmp_path: Path) -> None:
    seed_folder(tmp_path)
    (tmp_path / "Depth_Final" / "00002.png").write_bytes(b"\x89PNG garbage IEND")
    assert "00002.png: not a readable image" in load_error(tmp_path, "00002")


def test_missing_partners_both_ways(tmp_path: Path) -> None:
    seed_folder(tmp_path)
    (tmp_path / "Depth_Final" / "00000.png").unlink()
    (tmp_path / "RGB_Final" / "00002.png").unlink()
    found = find_scans(tmp_path)
    assert [r.id for r in found.refs] == ["00001"]
    assert any("00000.png: colour without depth partner" in s for s in found.skipped)
    assert any("00002.png: depth without colour partner" in s for s in found.skipped)


def test_size_mismatch(tmp_path: Path) -> None:
    seed_folder(tmp_path)
    cv2.imwrite(str(tmp_path / "Depth_Final" / "00001.png"), np.full((32, 32), 100, np.uint8))
    assert "colour is 64x64 but depth 00001.png is 32x32" in load_error(tmp_path, "00001")


@pytest.mark.parametrize("channels", [1, 4])
def test_colour_with_wrong_channel_count(tmp_path: Path, channels: int) -> None:
    seed_folder(tmp_path)
    image = np.full((64, 64, channels), 100, np.uint8).squeeze()
    cv2.imwrite(str(tmp_path / "RGB_Final" / "00001.png"), image)
    assert f"has {channels} channel(s), expected 3" in load_error(tmp_path, "00001")


def test_all_zero_depth(tmp_path: Path) -> None:
    seed_folder(tmp_path)
    cv2.imwrite(str(tmp_path / "Depth_Final" / "00001.png"), np.zeros((64, 64), np.uint8))
    assert "no valid pixel" in load_error(tmp_path, "00001")


def test_nan_depth_is_missing_but_inf_is_an_error(tmp_path: Path) -> None:
    array = np.zeros((8, 8, 4), np.float32)
    array[..., 3] = 900.0
    array[0, 0, 3] = np.nan
    np.save(tmp_path / "partly_nan.npy", array)
    array[..., 3] = np.nan
    np.save(tmp_path / "all_nan.npy", array)
    array[..., 3] = 900.0
    array[1, 1, 3] = np.inf
    np.save(tmp_path / "inf.npy", array)
    scans = {r.id: s for r, s in iter_scans(find_scans(tmp_path).refs)}
    assert not scans["partly_nan"].valid[0, 0] and scans["partly_nan"].valid.sum() == 63
    assert "all_nan.npy: depth has no valid pixel" in str(scans["all_nan"])
    assert "inf.npy: depth has 1 infinite or negative values" in str(scans["inf"])


def test_empty_and_unknown_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ScanError, match="empty: no scans found.*empty"):
        find_scans(tmp_path / "empty")
    (tmp_path / "odd").mkdir()
    (tmp_path / "odd" / "a.dat").write_bytes(b"x")
    with pytest.raises(ScanError, match="a.dat: not a scan file"):
        find_scans(tmp_path / "odd")
    (tmp_path / "odd" / "b.png").write_bytes(b"x")  # a lone image is a colour-only scan, read when scored
    (ref,) = find_scans(tmp_path / "odd").refs
    with pytest.raises(ScanError, match="b.png: truncated PNG"):
        load_scan(ref)


def test_unreadable_permissions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seed_folder(tmp_path)
    blocked = tmp_path / "RGB_Final" / "00001.png"
    real = Path.read_bytes

    def read_bytes(self: Path) -> bytes:  # root ignores chmod, so refuse the read directly
        if self == blocked:
            raise PermissionError(13, "Permission denied")
        return real(self)

    monkeypatch.setattr(Path, "read_bytes", read_bytes)
    assert "00001.png: permission denied" in load_error(tmp_path, "00001")


def test_non_image_files_are_listed_not_fatal(tmp_path: Path) -> None:
    seed_folder(tmp_path)
    (tmp_path / "RGB_Final" / "notes.doc").write_text("hello")
    found = find_scans(tmp_path)
    assert len(found.refs) == 3
    assert found.skipped == [f"{tmp_path / 'RGB_Final' / 'notes.doc'}: not an image file"]


def test_info_reports_problems_and_goes_on(tmp_path: Path) -> None:
    seed_folder(tmp_path / "sphere", 4)
    (tmp_path / "sphere" / "RGB_Final" / "00003.png").write_bytes(b"broken")
    (tmp_path / "sphere" / "Depth_Final" / "00000.png").unlink()
    result = runner.invoke(app, ["info", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "colour without depth partner" in result.output
    assert "00003.png: truncated PNG" in result.output
    assert "│ sphere │ seed   │     2 │" in result.output


def test_cli_empty_folder_exits_2(tmp_path: Path) -> None:
    (tmp_path / "nothing").mkdir()
    result = runner.invoke(app, ["info", str(tmp_path / "nothing")])
    assert result.exit_code == 2
    assert "no scans found" in result.output
    assert "Traceback" not in result.output
