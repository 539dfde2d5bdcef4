"""Ctrl-C and SIGTERM during training stop at a step boundary, so a checkpoint never holds a
half-updated step and `--resume` continues exactly as the uninterrupted run would have."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopNow(KeyboardInterrupt):
    """A second Ctrl-C/SIGTERM while a stop was pending: stop at once, without saving."""


@contextmanager
def stop_at_step_boundary() -> Iterator[Callable[..., None]]:
    """Within the block the first signal is only noted; call the yielded `check()` between steps
    and it raises KeyboardInterrupt there. A second signal raises StopNow mid-step. Outside the
    main thread (signals cannot be caught there) `check()` does nothing."""
    pending: list[int] = []

    def note(signum: int, frame) -> None:
        if pending:
            raise StopNow(signal.Signals(signum).name)
        pending.append(signum)

    def check(agree: Callable[[bool], bool] = lambda asked: asked) -> None:
        """`agree` turns this process's answer into all processes' (torchrun ranks stop together)."""
        if agree(bool(pending)):
            raise KeyboardInterrupt(signal.Signals(pending[0]).name if pending else "another rank")

    if threading.current_thread() is not threading.main_thread():
        yield check
        return
    # A signal the caller ignores stays ignored (nohup and background jobs ignore SIGINT).
    previous = {s: signal.signal(s, note) for s in SIGNALS if signal.getsignal(s) is not signal.SIG_IGN}
    try:
        yield check
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
