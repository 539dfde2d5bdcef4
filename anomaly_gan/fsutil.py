"""Atomic writes and output-folder rules shared by every command.

Every file we produce is written to a temporary sibling and renamed into place, so an interrupt
never leaves a half-written image, record or checkpoint behind.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


class OutputExistsError(FileExistsError):
    """Raised when an output would overwrite existing results without --force."""


def atomic_write_bytes(path: Path, data: bytes) -> None:
    _atomic_write(path, lambda f: f.write(data))


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def atomic_write_chunks(path: Path, chunks: Iterable[str]) -> None:
    """Text produced piece by piece (a large report), never held whole in memory."""

    def write(f: BinaryIO) -> None:
        for chunk in chunks:
            f.write(chunk.encode("utf-8"))

    _atomic_write(path, write)


def atomic_imwrite(path: Path, image: np.ndarray, params: Sequence[int] = ()) -> None:
    """Encode with OpenCV (format from the suffix, `params` as cv2.imencode takes them) and write
    atomically."""
    ok, buf = cv2.imencode(path.suffix, image, list(params))
    if not ok:
        raise OSError(f"{path}: could not encode image")
    atomic_write_bytes(path, buf.tobytes())


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    _atomic_write(path, lambda f: np.save(f, array, allow_pickle=False))


def _atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write through a temporary sibling, then rename; a failure names `path`, not the sibling."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None:
            raise OSError(e.errno, e.strerror, str(path)) from None
        raise


def check_writable(folder: Path) -> None:
    """Raise the OSError a write into `folder` would meet, before any work is done."""
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".write-check.", suffix=".tmp")
    os.close(fd)
    os.unlink(tmp)


def describe_os_error(e: OSError) -> str:
    """One line: the path and the reason, lower-case, as the rest of our messages."""
    if e.errno == errno.ENOSPC:
        reason = "no space left on the device (files written before this one are complete)"
    else:
        reason = (e.strerror or str(e)).lower()
    return f"{e.filename}: {reason}" if e.filename else str(e)


def plain_name(name: str, what: str) -> str:
    """`name` if it is one ordinary path component (a class name, a scan id), else ValueError:
    a name with '/', '\\', '..' or NUL would write outside the folder meant for it."""
    if not name or name in (".", "..") or any(c in name for c in "/\\\0") or name.startswith("-"):
        raise ValueError(
            f"{what} {name!r}: use a plain name (letters, digits, '-', '_', '.'; no '/', '\\', '..' or NUL)"
        )
    return name


def refuse_over_inputs(path: Path, inputs: Iterable[Path]) -> None:
    """OutputExistsError when the output folder is, or holds, one of the inputs (scans, bundles,
    shards): --force would delete what the command is about to read."""
    out = path.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if source == out or source.is_relative_to(out):
            what = "is" if source == out else "holds"
            raise OutputExistsError(
                f"{path}: the output folder {what} the input {given}; choose another --out "
                "(with or without --force, an input is never deleted)"
            )


def prepare_output_dir(path: Path, force: bool, inputs: Iterable[Path] = ()) -> Path:
    """Create an empty output folder and check it can be written, before any work is done; refuse
    to touch a non-empty one unless forced, and one that is or holds an input always."""
    refuse_over_inputs(path, inputs)
    if path.exists() and any(path.iterdir()):
        if not force:
            raise OutputExistsError(f"{path}: already exists and is not empty (use --force)")
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    check_writable(path)
    return path


def _json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
