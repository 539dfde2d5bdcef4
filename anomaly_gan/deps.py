"""Optional native pieces, checked in the main process so a missing system library is one line.

open3d (synthetic rendering, point clouds, `view`) links against libusb-1.0 on Linux; without it
the import fails deep inside a worker process with an ImportError traceback.
"""

from __future__ import annotations

import importlib
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
            raise MissingDependency(f"open3d needs the system library libusb-1.0, which is missing; "
                                    f"install it with: {INSTALL_LIBUSB}") from None
        raise MissingDependency(f"open3d cannot be loaded ({reason}); reinstall it with: "
                                "pip install --force-reinstall open3d") from None
