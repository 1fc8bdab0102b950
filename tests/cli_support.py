"""Helpers shared by the CLI tests: run the command in-process, check one-line errors."""

from __future__ import annotations

from skelrobust.cli import main


def run(capsys, *argv):
    """``(exit code, stdout, stderr)`` of ``skelrobust ARGV``."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, needle=""):
    """Exit 2 with one line on stderr (no traceback) that contains ``needle``."""
    assert code == 2, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert needle in err, err
