"""Which scans under a station's folder have arrived: complete files, paired colour with depth.

A file counts once the writer closed it or moved it in (file events through watchdog), or, for
what events missed (network shares, files there before the start), once its size and time stayed
unchanged for `settle_s` over a rescan. A colour or depth image whose partner has not come after
`partner_s` is reported alone. Used by `detect.watch`; no torch.
"""

from __future__ import annotations

import os
import queue
import time
from dataclasses import dataclass
from pathlib import Path

from anomaly_gan.data.layouts import FILE_SUFFIXES, IMAGE_SUFFIXES, LONE_FOLDERS, PAIRED_LAYOUTS, ScanRef, natural_key


@dataclass(frozen=True)
class WatchSettings:
    settle_s: float = 1.0  # unchanged this long over a rescan: complete (files no event announced)
    partner_s: float = 30.0  # a half of a colour/depth pair waits this long for the other
    rescan_s: float = 2.0  # a full look at the folder this often, besides file events
    batch: int = 64  # scans scored together at most


@dataclass
class _Seen:
    size: int
    mtime: float
    since: float  # when it was first seen with this size and time


def _pair_role(path: Path) -> tuple[str, str, Path] | None:
    """(layout, "rgb" | "depth", the other half's folder) for a file in a paired layout's folder."""
    for layout, colour, depth in PAIRED_LAYOUTS:
        for role, mine, other in (("rgb", colour, depth), ("depth", depth, colour)):
            if path.parent.name == mine and (path.parent.parent / other).is_dir():
                return layout, role, path.parent.parent / other
    return None


def _lone_ref(path: Path) -> ScanRef | None:
    """A scan made of one file (arrays, clouds, a lone colour or depth image); None for files that
    are not scans."""
    suffix = path.suffix.lower()
    if suffix in FILE_SUFFIXES:
        kind = FILE_SUFFIXES[suffix]
        return ScanRef(path.stem, kind, None if kind == "cloud" else path, path)
    if suffix not in IMAGE_SUFFIXES:
        return None
    if path.parent.name in LONE_FOLDERS["depth"]:
        return ScanRef(path.stem, "depth", None, path)
    return ScanRef(path.stem, "image", path)


class Arrivals:
    """The complete, not yet handled scans under `root`, as they come."""

    def __init__(self, root: Path, settings: WatchSettings, handled: set[str]) -> None:
        self.root, self.settings, self.handled = root, settings, handled
        self.events: queue.SimpleQueue[Path] = queue.SimpleQueue()
        self.seen: dict[Path, _Seen] = {}
        self.halves: dict[Path, float] = {}  # complete halves of a pair -> when they became complete
        self.complete: set[Path] = set()
        self.by_name: dict[tuple[Path, str], Path] = {}  # (folder, stem) -> complete file: partners found at once
        self.reported: set[Path] = set()  # halves said to wait in vain
        self.gone = False  # the watched folder itself vanished
        self.next_rescan = 0.0
        self.observer = None

    def start(self) -> str:
        """Listen for file events (watchdog); how arrivals are noticed, in words."""
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer

            events = self.events

            class _Handler(FileSystemEventHandler):
                def on_closed(self, event) -> None:
                    if not event.is_directory:
                        events.put(Path(event.src_path))

                def on_moved(self, event) -> None:
                    if not event.is_directory:
                        events.put(Path(event.dest_path))

            self.observer = Observer()
            self.observer.schedule(_Handler(), str(self.root), recursive=True)
            self.observer.start()
            return f"file events, and a look every {self.settings.rescan_s:g} s"
        except (OSError, ImportError) as e:  # no inotify watches left, or an exotic file system
            self.observer = None
            return f"a look every {self.settings.rescan_s:g} s (no file events: {e})"

    def stop(self) -> None:
        if self.observer is not None:
            self.observer.stop()
            self.observer.join(timeout=5)
            self.observer = None

    def ready(self, now: float) -> tuple[list[ScanRef], list[str]]:
        """Scans complete since the last call, and one line per half whose partner did not come
        (or saying that the watched folder went away, or came back)."""
        if self.root.is_dir() == self.gone:  # it vanished (unmounted, deleted) or came back
            self.gone = not self.gone
            if self.gone:
                self.stop()
                return [], [f"{self.root}: the watched folder is gone; waiting for it to come back"]
            return [], [f"{self.root}: the watched folder is back; watching it with {self.start()}"]
        if self.gone:
            return [], []
        while True:
            try:
                self._complete(self.events.get_nowait(), now)
            except queue.Empty:
                break
        if now >= self.next_rescan:
            self._rescan(now)
            self.next_rescan = now + self.settings.rescan_s
        refs, problems = [], []
        for path in sorted(self.complete, key=natural_key):
            ref, problem = self._scan_of(path, now)
            if ref is not None and str(ref.source) not in self.handled:
                refs.append(ref)
                self.handled.add(str(ref.source))
            if problem and path not in self.reported:
                problems.append(problem)
                self.reported.add(path)
        self.complete = {p for p in self.complete if p in self.halves and str(p) not in self.handled}
        self.by_name = {(p.parent, p.stem): p for p in self.complete}
        return refs, problems

    def _complete(self, path: Path, now: float) -> None:
        if _skipped(path, self.root) or str(path) in self.handled:
            return
        self.complete.add(path)
        self.by_name[(path.parent, path.stem)] = path
        self.seen.pop(path, None)

    def _rescan(self, now: float) -> None:
        """Files no event announced: complete once unchanged for settle_s."""
        for folder, dirs, files in os.walk(self.root):
            dirs[:] = [d for d in dirs if not d.startswith(".") and d != "gt"]
            for name in files:
                path = Path(folder) / name
                if path in self.complete or str(path) in self.handled or _skipped(path, self.root):
                    continue
                try:
                    stat = path.stat()
                except OSError:  # gone again (a writer's temporary file)
                    continue
                before = self.seen.get(path)
                if before is None or (before.size, before.mtime) != (stat.st_size, stat.st_mtime):
                    self.seen[path] = _Seen(stat.st_size, stat.st_mtime, now)
                elif now - before.since >= self.settings.settle_s:
                    self._complete(path, now)

    def _scan_of(self, path: Path, now: float) -> tuple[ScanRef | None, str | None]:
        """The scan this complete file makes (with its partner when it is one half of a pair), or
        None while the partner is awaited; a line when it waited longer than partner_s."""
        role = _pair_role(path)
        if role is None:
            return _lone_ref(path), None
        layout, mine, other_folder = role
        partner = self.by_name.get((other_folder, path.stem))
        if partner is None and mine == "depth" and self._colour_handled(other_folder, path.stem):
            self.handled.add(str(path))  # the pair was scored before a restart
            return None, None
        if partner is None:
            since = self.halves.setdefault(path, now)
            if now - since >= self.settings.partner_s:
                kind = "colour" if mine == "rgb" else "depth"
                return None, f"{path}: {kind} image whose partner has not come to {other_folder.name}/ in " + (
                    f"{self.settings.partner_s:g} s"
                )
            return None, None
        self.halves.pop(path, None)
        self.halves.pop(partner, None)
        rgb, depth = (path, partner) if mine == "rgb" else (partner, path)
        if str(rgb) in self.handled:
            return None, None
        self.handled.add(str(depth))  # not looked at again by the rescans
        return ScanRef(path.stem, layout, rgb, depth), None

    def _colour_handled(self, folder: Path, stem: str) -> bool:
        return any(str(folder / (stem + suffix)) in self.handled for suffix in _IMAGE_NAMES)


_IMAGE_NAMES = tuple(IMAGE_SUFFIXES) + tuple(s.upper() for s in IMAGE_SUFFIXES)


def _skipped(path: Path, root: Path) -> bool:
    """Files that are not scans or not finished: hidden or temporary names, masks, reports."""
    name = path.name
    return (
        name.startswith(".")
        or name.endswith((".tmp", ".part", "~"))
        or "gt" in path.relative_to(root).parts[:-1]
        or (path.suffix.lower() not in IMAGE_SUFFIXES and path.suffix.lower() not in FILE_SUFFIXES)
    )


def wait_for_work(arrivals: Arrivals, stop, poll_s: float = 0.02) -> tuple[list[ScanRef], list[str]]:
    """Block until scans are ready or `stop` (a threading.Event) is set."""
    while not stop.is_set():
        refs, problems = arrivals.ready(time.monotonic())
        if refs or problems:
            return refs, problems
        stop.wait(poll_s)
    return [], []
