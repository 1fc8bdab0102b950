"""A restricted unpickler for third-party dataset files (label and annotation pickles).

Pickle runs code: any global the stream names (``os.system``,
``subprocess.Popen``...) is imported and may be called. Dataset pickles
(the ST-GCN/2s-AGCN ``(sample_names, labels)`` label files, pyskl annotation
files) only ever hold plain containers, numbers, strings, bytes and numpy
arrays, so :class:`SafeUnpickler` admits exactly the globals those need
(numpy's array/dtype/scalar reconstructors and a few harmless builtins) and
refuses everything else *before* it is imported, with a
:class:`~skelrobust.errors.DatasetFormatError` naming the file and the
refused global. Nothing is executed for a refused stream.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any, BinaryIO

from skelrobust.errors import DatasetFormatError, DatasetNotFoundError

__all__ = ["ALLOWED_GLOBALS", "SafeUnpickler", "safe_load", "safe_loads"]

#: ``(module, name)`` pairs a dataset pickle may reference. numpy moved its
#: core to ``numpy._core`` in 2.0; pickles from either version name one of both.
ALLOWED_GLOBALS: frozenset[tuple[str, str]] = frozenset(
    [(core + ".multiarray", fn) for core in ("numpy.core", "numpy._core")
     for fn in ("_reconstruct", "scalar")]
    + [(core + ".numeric", "_frombuffer") for core in ("numpy.core", "numpy._core")]
    + [("numpy", "ndarray"), ("numpy", "dtype")]
    + [(mod, n) for mod in ("builtins", "__builtin__")  # protocol < 3 spells it __builtin__
       for n in ("set", "frozenset", "complex", "bytearray", "slice", "range")]
    + [("collections", "OrderedDict"),
       ("_codecs", "encode")]  # protocol-2 pickles spell ``bytes`` as _codecs.encode(str, 'latin1')
)


class SafeUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only :data:`ALLOWED_GLOBALS`."""

    def __init__(self, file: BinaryIO, source: str = "<pickle>") -> None:
        super().__init__(file, encoding="latin1")  # py2 numpy pickles store bytes as str
        self.source = source

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in ALLOWED_GLOBALS:
            raise DatasetFormatError(
                f"{self.source}: refused to unpickle global {module}.{name} (dataset pickles may "
                "only hold plain containers, numbers, strings, bytes and numpy arrays)")
        return super().find_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        raise DatasetFormatError(f"{self.source}: refused a persistent id in the pickle stream")


def safe_loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with :class:`SafeUnpickler`; ``source`` names it in errors."""
    try:
        return SafeUnpickler(io.BytesIO(data), source).load()
    except DatasetFormatError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, ImportError, UnicodeDecodeError, OverflowError,
            MemoryError, RecursionError) as err:
        raise DatasetFormatError(f"{source}: not a readable pickle ({type(err).__name__}: "
                                 f"{err})") from None


def safe_load(path: str | os.PathLike[str]) -> Any:
    """Read and unpickle the file at ``path`` with :class:`SafeUnpickler`."""
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except FileNotFoundError:
        raise DatasetNotFoundError(f"{os.fspath(path)}: no such file") from None
    except OSError as err:
        raise DatasetFormatError(f"{os.fspath(path)}: cannot read ({err})") from None
    return safe_loads(data, os.fspath(path))
