"""Find the scans under a path, whatever layout they are stored in, without loading them.

Discovery only lists files and pairs them (cheap, so a folder of 10,000 scans costs a directory
listing); `load_scan` decodes one scan when it is needed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from anomaly_gan.data.readers import (
    read_array,
    read_cloud,
    read_colour,
    read_depth,
    read_image,
    read_mask,
    read_xyz,
)
from anomaly_gan.data.scan import Scan, ScanError

# Leaf layouts: (name, colour folder, depth folder), checked in this order.
PAIRED_LAYOUTS = (("seed", "RGB_Final", "Depth_Final"), ("mvtec", "rgb", "xyz"), ("paired", "rgb", "depth"))
# A colour or depth folder alone, without its partner: colour-only ("image") or depth-only scans.
LONE_FOLDERS = {"image": ("RGB_Final", "rgb"), "depth": ("Depth_Final", "depth")}
RGBD_LAYOUTS = {"seed", "mvtec", "paired", "array", "cloud"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp"}
FILE_SUFFIXES = {".npz": "array", ".npy": "array", ".ply": "cloud", ".pcd": "cloud"}
IGNORED_SUFFIXES = {".md", ".txt", ".json", ".csv", ".yaml", ".yml", ".html", ".log"}


@dataclass(frozen=True)
class ScanRef:
    """Where one scan's files are; `load_scan` turns it into a Scan."""

    id: str
    layout: str
    rgb: Path | None
    depth: Path | None = None
    gt: Path | None = None
    label: str = "good"

    @property
    def source(self) -> Path:
        return self.rgb or self.depth  # type: ignore[return-value]

    @property
    def channels(self) -> str:
        """What its files hold: rgbd, rgb (a lone image) or depth (a lone depth image)."""
        return {"image": "rgb", "depth": "depth"}.get(self.layout, "rgbd")


@dataclass
class Discovery:
    refs: list[ScanRef] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # one line per unusable file: "path: why"
    layouts: set[str] = field(default_factory=set)

    def extend(self, other: Discovery) -> None:
        self.refs += other.refs
        self.skipped += other.skipped
        self.layouts |= other.layouts


def natural_key(path: Path) -> list:
    """Sort 'frame 9' before 'frame 10', so consecutive frames stay consecutive."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", str(path))]


def leaf_layout(folder: Path) -> str | None:
    """The layout of a folder holding one set of scans: a paired layout, or "image" / "depth" for
    a colour or depth folder without its partner."""
    for name, colour, depth in PAIRED_LAYOUTS:
        if (folder / colour).is_dir() and (folder / depth).is_dir():
            return name
    for name, lone in LONE_FOLDERS.items():
        if any((folder / d).is_dir() for d in lone):
            return name
    return None


def find_scans(path: Path, label: str = "good") -> Discovery:
    """All scans under `path` (a file, a layout folder, a class root or an MVTec-style tree).

    Folders below a `test/` folder give their name as label (`test/good`, `test/dent`).
    Raises ScanError when nothing usable is found.
    """
    path = Path(path)
    if not path.exists():
        raise ScanError(f"{path}: no such file or folder")
    found = _walk(path, label)
    if not found.refs:
        why = "; ".join(found.skipped[:3]) or "it is empty"
        raise ScanError(f"{path}: no scans found in a known layout ({why})")
    if "image" in found.layouts and found.layouts & RGBD_LAYOUTS:
        lone = next(r.source for r in found.refs if r.layout == "image")
        raise ScanError(
            f"{path}: mixes RGB-D scans ({', '.join(sorted(found.layouts & RGBD_LAYOUTS))}) with lone "
            f"images (first: {lone}); keep colour-only images in a folder of their own"
        )
    found.refs.sort(key=lambda r: natural_key(r.source))
    return found


def find_classes(root: Path) -> dict[str, Path]:
    """Class folders of a class root (`<root>/<class>/...`), or {root.name: root} for one class."""
    root = Path(root)
    if root.is_file():
        return {root.stem: root}
    if leaf_layout(root) or (root / "test").is_dir() or (root / "train").is_dir():
        return {root.name: root}
    classes = {d.name: d for d in sorted(root.iterdir()) if d.is_dir() and not d.name.startswith(".")}
    return classes or {root.name: root}  # loose single files, or an empty folder find_scans reports


def _walk(path: Path, label: str) -> Discovery:
    if path.is_file():
        layout = leaf_layout(path.parent.parent)
        if layout and path.suffix.lower() in IMAGE_SUFFIXES:  # one file of a pair: find its partner
            found = _pair_folder(path.parent.parent, layout, label)
            found.refs = [r for r in found.refs if path in (r.rgb, r.depth)]
            found.skipped = [line for line in found.skipped if line.startswith(f"{path}:")]
            return found
        return _single_files([path], label)
    layout = leaf_layout(path)
    if layout:
        return _pair_folder(path, layout, label)
    try:
        entries = sorted(p for p in path.iterdir() if not p.name.startswith("."))
    except PermissionError:
        return Discovery(skipped=[f"{path}: permission denied"])
    found = _single_files([p for p in entries if p.is_file()], label)
    for sub in (p for p in entries if p.is_dir()):
        found.extend(_walk(sub, sub.name if path.name == "test" else label))
    return found


def _single_files(files: list[Path], label: str) -> Discovery:
    """Single-file scans, and lone images: colour-only scans (the plain image-folder layout)."""
    found = Discovery()
    for f in files:
        suffix = f.suffix.lower()
        kind = FILE_SUFFIXES.get(suffix) or ("image" if suffix in IMAGE_SUFFIXES else None)
        if kind:
            found.refs.append(
                ScanRef(f.stem, kind, None if kind == "cloud" else f, None if kind == "image" else f, label=label)
            )
            found.layouts.add(kind)
        elif suffix not in IGNORED_SUFFIXES:
            found.skipped.append(f"{f}: not a scan file (no depth partner or known layout)")
    return found


def _images(folder: Path, found: Discovery) -> dict[str, Path]:
    images = {}
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or f.is_dir():
            continue
        if f.suffix.lower() in IMAGE_SUFFIXES:
            images[f.stem] = f
        else:
            found.skipped.append(f"{f}: not an image file")
    return images


def _pair_folder(folder: Path, layout: str, label: str) -> Discovery:
    found = Discovery(layouts={layout})
    masks = _images(folder / "gt", Discovery()) if (folder / "gt").is_dir() else {}
    if layout in LONE_FOLDERS:
        lone = next(d for d in LONE_FOLDERS[layout] if (folder / d).is_dir())
        found.refs = [
            ScanRef(
                stem, layout, f if layout == "image" else None, None if layout == "image" else f, masks.get(stem), label
            )
            for stem, f in _images(folder / lone, found).items()
        ]
        return found
    _, colour_dir, depth_dir = next(entry for entry in PAIRED_LAYOUTS if entry[0] == layout)
    colours = _images(folder / colour_dir, found)
    depths = _images(folder / depth_dir, found)
    for stem, rgb in colours.items():
        if stem in depths:
            found.refs.append(ScanRef(stem, layout, rgb, depths[stem], masks.get(stem), label))
        else:
            found.skipped.append(f"{rgb}: colour without depth partner in {depth_dir}/")
    for stem in depths.keys() - colours.keys():
        found.skipped.append(f"{depths[stem]}: depth without colour partner in {colour_dir}/")
    return found


def load_scan(ref: ScanRef) -> Scan:
    """Decode one scan. Raises ScanError naming the file for anything unusable."""
    unit, has_colour = "mm", ref.layout != "depth"
    if ref.layout == "array":
        rgb, depth = read_array(ref.source)
    elif ref.layout == "image":
        rgb = read_image(ref.source)
        depth, unit = np.full(rgb.shape[:2], np.nan, np.float32), "none"
    elif ref.layout == "depth":
        depth, unit = read_depth(ref.source)
        rgb = np.zeros((*depth.shape, 3), np.uint8)
    elif ref.layout == "cloud":
        rgb, depth = read_cloud(ref.source, None)
    else:
        rgb = read_colour(ref.rgb)  # type: ignore[arg-type]
        if ref.layout == "mvtec":
            depth = read_xyz(ref.depth)  # type: ignore[arg-type]
        else:
            depth, unit = read_depth(ref.depth)  # type: ignore[arg-type]
        if rgb.shape[:2] != depth.shape:
            raise ScanError(
                f"{ref.rgb}: colour is {rgb.shape[1]}x{rgb.shape[0]} but depth "
                f"{ref.depth.name} is {depth.shape[1]}x{depth.shape[0]}"  # type: ignore[union-attr]
            )
    gt = read_mask(ref.gt) if ref.gt else None
    if gt is not None and gt.shape != depth.shape:
        raise ScanError(f"{ref.gt}: mask size {gt.shape} differs from scan size {depth.shape}")
    return Scan(ref.id, rgb, depth, unit, gt, ref.label, ref.rgb, ref.depth, has_colour)


def iter_scans(refs: list[ScanRef]) -> Iterator[tuple[ScanRef, Scan | ScanError]]:
    """Load lazily, one at a time; a bad scan is yielded as its error so the batch goes on."""
    for ref in refs:
        try:
            yield ref, load_scan(ref)
        except ScanError as e:
            yield ref, e
