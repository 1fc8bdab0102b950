"""The ``skelrobust`` command line.

Every user error becomes one line on stderr and exit status 2, never a
traceback: bad flags (each checked by the rule of :mod:`skelrobust.validation`),
unknown names, corrupt or mismatched files. ``--json`` prints one JSON document
on stdout; logs and progress bars go to stderr and ``--quiet`` silences them.
A closed output pipe (``skelrobust ... | head``) ends the command quietly; an
unexpected failure prints one ``internal error`` line (``SKELROBUST_DEBUG=1``
shows its traceback) and exits 1.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Sequence

from skelrobust.cli.parser import UsageError, build_parser
from skelrobust.errors import SkelRobustError
from skelrobust.progress import set_progress

__all__ = ["main"]

log = logging.getLogger("skelrobust")


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (test capture swaps it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


class _Format(logging.Formatter):
    """Info lines as plain sentences; warnings and errors prefixed as the CLI's errors are."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno >= logging.WARNING and not text.startswith("skelrobust:"):
            text = f"skelrobust: {record.levelname.lower()}: {text}"
        return text


def _configure_logging(quiet: bool) -> None:
    log.handlers = [h for h in log.handlers if not isinstance(h, _StderrHandler)]
    handler = _StderrHandler()
    handler.setFormatter(_Format())
    log.addHandler(handler)
    log.propagate = False
    log.setLevel(logging.WARNING if quiet else logging.INFO)


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str,
                      lineno: int, line: str | None = None) -> str:
    return f"skelrobust: warning: {message}\n"


def _silence_stdout() -> None:
    """After a closed pipe, point stdout at /dev/null so the final flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (captured stdout)
        pass


def _run(argv: Sequence[str] | None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except UsageError as err:
        print(f"skelrobust: error: {err}", file=sys.stderr)
        return 2
    _configure_logging(args.quiet)
    set_progress(not args.quiet)
    warnings.formatwarning = _one_line_warning
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        args.func(args)
        sys.stdout.flush()
    except SkelRobustError as err:
        message = " ".join(str(err).split())  # one line, whatever the message held
        print(f"skelrobust: error: {message}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0, 1 internal error, 2 user error)."""
    try:
        return _run(argv)
    except SystemExit as done:  # --help and --version
        return done.code if isinstance(done.code, int) else 0
    except KeyboardInterrupt:
        print("skelrobust: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141  # as a shell reports a command ended by SIGPIPE
    except Exception as err:
        if os.environ.get("SKELROBUST_DEBUG"):
            raise
        message = " ".join(str(err).split())[:500]
        print(f"skelrobust: internal error: {type(err).__name__}: {message} (please report "
              "it; SKELROBUST_DEBUG=1 shows the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
