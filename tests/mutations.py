"""Shared hypothesis strategy for the parser fuzz tests: corrupted copies of real files.

Every text parser must either return a result or raise ``DatasetFormatError``
naming the file; nothing else may escape (issue 3, "Bad input").
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import strategies as st

from skelrobust.errors import DatasetFormatError

GARBAGE = ["--5", "+-1", "nan", "inf", "-inf", "1e999", "x", "--1", "", "1.2.3", "9" * 400, "²",
           "{", "}", "[", "]", ",", "0x1F", "٣", "\x00", "-0", "End", "JOINT", ":DEGREES",
           "begin", "end", "1e308"]
_NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


@st.composite
def mutations(draw: Callable[..., Any], data: bytes) -> bytes:
    """1-4 corruptions: truncate, flip a byte, delete/duplicate a line, garble a number."""
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        kind = draw(st.sampled_from(["truncate", "flip", "delete", "duplicate", "garbage"]))
        if kind == "truncate":
            data = data[: draw(st.integers(0, len(data) - 1))]
        elif kind == "flip":
            i = draw(st.integers(0, len(data) - 1))
            data = data[:i] + bytes([data[i] ^ draw(st.integers(1, 255))]) + data[i + 1:]
        elif kind in ("delete", "duplicate"):
            lines = data.splitlines(keepends=True)
            i = draw(st.integers(0, len(lines) - 1))
            lines[i:i + 1] = [] if kind == "delete" else [lines[i], lines[i]]
            data = b"".join(lines)
        else:
            spans = [m.span() for m in _NUMBER.finditer(data)]
            if spans:
                a, b = spans[draw(st.integers(0, len(spans) - 1))]
                data = data[:a] + draw(st.sampled_from(GARBAGE)).encode() + data[b:]
    return data


def check_mutations(data: Any, source: Path, relative: str, reader: Callable[[Path], Any]) -> None:
    """Write a mutated copy of ``source`` at ``relative`` and read it back with ``reader``.

    Passes when ``reader`` returns or raises a ``DatasetFormatError`` that names the file.
    """
    text = data.draw(mutations(source.read_bytes()))
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(text)
        try:
            reader(target)
        except DatasetFormatError as err:
            assert target.name in str(err)
