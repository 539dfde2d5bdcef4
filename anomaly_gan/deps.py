"""Optional native pieces, checked in the main process so a missing system library is one line.

open3d (synthetic rendering, point clouds, `view`) links against libusb-1.0 on Linux; without it
the import fails deep inside a worker process with an ImportError traceback.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

INSTALL_LIBUSB = "sudo apt-get install -y libusb-1.0-0"


class MissingDependency(RuntimeError):
    """A library the command needs cannot be loaded; the message says what to install."""


def open3d() -> ModuleType:
    """The open3d module, or MissingDependency naming what is missing and how to install it."""
    try:
        return importlib.import_module("open3d")
    except (ImportError, OSError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "libusb" in reason:
            raise MissingDependency(
                f"open3d needs the system library libusb-1.0, which is missing; install it with: {INSTALL_LIBUSB}"
            ) from None
        raise MissingDependency(
            f"open3d cannot be loaded ({reason}); reinstall it with: pip install --force-reinstall open3d"
        ) from None


_SINKS = threading.local()


def _sink():
    """This thread's capture file, emptied: one per thread, not one per call (opening a temporary
    file cost a third of decoding a Kinect scan)."""
    sink = getattr(_SINKS, "file", None)
    if sink is None:
        sink = _SINKS.file = tempfile.TemporaryFile()
    sink.seek(0)
    sink.truncate()
    return sink


@contextmanager
def native_output() -> Iterator[list[str]]:
    """Capture what C/C++ libraries print on file descriptors 1 and 2 within the block (open3d
    prints 'Read PLY failed' there); the lines are in the yielded list afterwards, without colour
    codes, so the caller can say them again with the file's name instead of leaving them bare."""
    lines: list[str] = []
    sys.stdout.flush()
    sys.stderr.flush()
    sink = _sink()
    saved = [os.dup(1), os.dup(2)]
    os.dup2(sink.fileno(), 1)
    os.dup2(sink.fileno(), 2)
    try:
        yield lines
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)
        sink.seek(0)
        text = re.sub(r"\x1b\[[0-9;]*m", "", sink.read().decode("utf-8", "replace"))
        lines += [line.strip() for line in text.splitlines() if line.strip()]
