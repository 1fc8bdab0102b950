"""Progress bars on stderr for long work (parsing, training, attacks), one switch for all.

The library shows progress by default; the CLI's ``--quiet`` (or
:func:`set_progress` ``(False)``) silences every bar at once. Bars go to stderr
so that ``--json`` output on stdout stays machine-readable. On a terminal they
are ``tqdm`` bars; elsewhere (a log file, CI, a pipe) a bar becomes a plain
status line every ``interval`` seconds (:data:`LINE_INTERVAL_S`), so logs hold
readable lines instead of carriage-return redraws, and work shorter than that
prints nothing.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

__all__ = ["progress_bar", "progress_enabled", "set_progress"]

T = TypeVar("T")

_enabled = True
#: Seconds between status lines when stderr is not a terminal.
LINE_INTERVAL_S = 10.0
_interval = LINE_INTERVAL_S


def set_progress(enabled: bool, interval: float | None = None) -> None:
    """Turn every progress bar of skelrobust on or off (the CLI's ``--quiet`` turns them off).

    ``interval``: seconds between status lines off a terminal (default
    :data:`LINE_INTERVAL_S`).
    """
    global _enabled, _interval
    _enabled = bool(enabled)
    _interval = LINE_INTERVAL_S if interval is None else float(interval)


class _StatusLines:
    """A file for ``tqdm`` off a terminal: its latest status as a whole line, now and then."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.last = time.monotonic()  # the first line comes after one interval

    def write(self, text: str) -> None:
        status = text.replace("\r", "").strip()
        now = time.monotonic()
        if status and now - self.last >= self.interval:
            sys.stderr.write(status + "\n")
            self.last = now

    def flush(self) -> None:
        sys.stderr.flush()


def progress_enabled() -> bool:
    return _enabled


def progress_bar(iterable: Iterable[T] | None = None, desc: str = "", total: int | None = None,
                 unit: str = "it", enabled: bool = True, **kwargs: Any) -> Any:
    """A ``tqdm`` bar on stderr, disabled when ``enabled`` is False or progress is off globally.

    On a terminal the bar appears after ``delay`` seconds (default 0.5), so
    quick calls stay silent; off a terminal it writes status lines (module doc).
    """
    delay = kwargs.pop("delay", 0.5)
    terminal = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
    if terminal:
        return tqdm(iterable, desc=desc, total=total, unit=unit, file=sys.stderr, leave=False,
                    disable=not (enabled and _enabled), delay=delay, dynamic_ncols=True,
                    **kwargs)
    return tqdm(iterable, desc=desc, total=total, unit=unit, file=_StatusLines(_interval),
                leave=False, disable=not (enabled and _enabled), ncols=100,
                mininterval=min(_interval, 1.0), **kwargs)
